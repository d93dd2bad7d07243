#include "verbs/mw.h"

#include <cerrno>

#include "addon/args.h"
#include "verbs/context.h"
#include "verbs/pd.h"

namespace rdma {

Napi::Function Mw::Define(Napi::Env env) {
  return DefineClass(env, "MemoryWindow",
                     {InstanceAccessor<&Mw::Rkey>("rkey"), InstanceAccessor<&Mw::Type>("type"), CloseMethod(), ClosedGetter()});
}

Mw::Mw(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Mw>(info), Resource(info.Env(), "memory window") {
  CheckConstructToken(info, "pd.allocMw()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

// pd.allocMw(type: 1 | 2)
Napi::Object Mw::Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd) {
  Napi::Env env = info.Env();
  uint32_t type = ToU32(info[0], "type", IBV_MW_TYPE_2);
  if (type != IBV_MW_TYPE_1 && type != IBV_MW_TYPE_2) ThrowRange(env, "a memory window is of type 1 or 2");
  ibv_mw* mw = ibv_alloc_mw(pd->handle(), static_cast<ibv_mw_type>(type));
  if (mw == nullptr) ThrowVerb(env, "ibv_alloc_mw", errno);
  Napi::Object object = AddonData::Get(env).mw_class.New({ConstructToken(env)});
  Mw* self = Unwrap(object);
  self->mw_ = mw;
  self->rkey_ = mw->rkey;
  self->context_ = pd->context();
  self->context_->AddWindow(self);
  self->DependOn(pd_js, pd);
  return object;
}

uint64_t Mw::BindPosted(uint32_t rkey, Napi::Object mr_js, Resource* mr, Napi::Object qp_js, Resource* qp) {
  state_->generation++;
  state_->pending_qp = qp;
  rkey_ = rkey;
  if (mr != mr_) {
    if (mr_ != nullptr) StopDependingOn(mr_);
    DependOn(mr_js, mr);
    mr_ = mr;
  }
  if (mw_->type == IBV_MW_TYPE_2 && qp != qp_) {
    if (qp_ != nullptr) StopDependingOn(qp_);
    DependOn(qp_js, qp);
    qp_ = qp;
  }
  return state_->generation;
}

void Mw::Invalidated() {
  state_->generation++;
  state_->bound = false;
  state_->pending_qp = nullptr;
}

int Mw::Destroy(CloseMode) {
  if (mw_ == nullptr) return 0;
  // Out of the context's table whatever dealloc says: a failed close leaves the object closed too, and the
  // table must never name a window that can be freed.
  context_->RemoveWindow(mw_->rkey, this);
  int err = ibv_dealloc_mw(mw_);
  if (err != 0) return err;
  mw_ = nullptr;
  return 0;
}

Napi::Value Mw::Rkey(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), rkey_);
}

Napi::Value Mw::Type(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), mw_->type);
}

}  // namespace rdma
