#include "addon/resource.h"

#include <algorithm>

namespace rdma {

int kConstructToken = 0;

Napi::External<int> ConstructToken(Napi::Env env) {
  return Napi::External<int>::New(env, &kConstructToken);
}

void CheckConstructToken(const Napi::CallbackInfo& info, const char* how) {
  if (info.Length() < 1 || !info[0].IsExternal() || info[0].As<Napi::External<int>>().Data() != &kConstructToken) {
    ThrowType(info.Env(), std::string("cannot be constructed directly; use ") + how);
  }
}

Resource::Resource(Napi::Env env, const char* kind) : env_(env), kind_(kind), live_(AddonData::Get(env).live) {
  live_->insert(this);
}

// Derived destructors close; by now only the bookkeeping is left.
Resource::~Resource() { live_->erase(this); }

void Resource::DependOn(Napi::Object parent_js, Resource* parent) {
  parents_.emplace_back(parent, Napi::Persistent(parent_js));
  parent->dependents_.push_back(this);
}

void Resource::StopDependingOn(Resource* parent) {
  auto& siblings = parent->dependents_;
  siblings.erase(std::remove(siblings.begin(), siblings.end(), this), siblings.end());
  parents_.erase(std::remove_if(parents_.begin(), parents_.end(), [&](const auto& entry) { return entry.first == parent; }),
                 parents_.end());
}

void Resource::CheckOpen(Napi::Env env) const {
  if (closed_) ThrowType(env, std::string(kind_) + " is closed");
}

void Resource::Close(CloseMode mode) {
  if (closed_) return;
  // Newest first: later objects may use earlier siblings (a QP uses CQs made before it).
  while (!dependents_.empty()) dependents_.back()->Close(mode);
  int err = Destroy(mode);
  // Closed even when the destroy failed, as in pyverbs: its children are gone already and its handle may be
  // half torn down, so nothing may use it again (the kernel frees what is left when the device is closed).
  closed_ = true;
  for (auto& [parent, reference] : parents_) {
    auto& siblings = parent->dependents_;
    siblings.erase(std::remove(siblings.begin(), siblings.end(), this), siblings.end());
    reference.Reset();
  }
  parents_.clear();
  if (err != 0 && mode == CloseMode::kFromJs) {
    std::string verb = std::string("destroy ") + kind_;
    ThrowVerb(env_, verb.c_str(), err);
  }
}

}  // namespace rdma
