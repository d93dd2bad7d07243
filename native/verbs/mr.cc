#include "verbs/mr.h"

#include <cerrno>

#include "verbs/pd.h"

namespace rdma {

Napi::Function Mr::Define(Napi::Env env) {
  return DefineClass(env, "MemoryRegion",
                     {InstanceAccessor<&Mr::Lkey>("lkey"), InstanceAccessor<&Mr::Rkey>("rkey"),
                      InstanceAccessor<&Mr::Addr>("addr"), InstanceAccessor<&Mr::Length>("length"),
                      InstanceAccessor<&Mr::Cached>("cached"),
                      InstanceMethod<&Mr::Advise>("advise"), InstanceMethod<&Mr::Release>("release"),
                      CloseMethod(),
                      ClosedGetter()});
}

Mr::Mr(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Mr>(info), Resource(info.Env(), "memory region") {
  CheckConstructToken(info, "pd.registerMemory()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object Mr::Create(Napi::Env env, Napi::Object pd_js, Pd* pd, const ByteRange& range, uint32_t access) {
  ibv_mr* mr = ibv_reg_mr(pd->handle(), range.data, range.length, static_cast<int>(access));
  if (mr == nullptr) ThrowVerb(env, "ibv_reg_mr", errno);
  return Wrap(env, pd_js, pd, pd, range, mr);
}

Mr* Mr::New(Napi::Env env, Napi::Object* object) {
  *object = AddonData::Get(env).mr_class.New({ConstructToken(env)});
  return Unwrap(*object);
}

Napi::Object Mr::Wrap(Napi::Env env, Napi::Object owner_js, Resource* owner, Pd* pd, const ByteRange& range,
                      ibv_mr* registration) {
  Napi::Object object;
  Mr* self;
  try {
    self = New(env, &object);
  } catch (...) {
    ibv_dereg_mr(registration);
    throw;
  }
  self->owned_ = registration;
  self->view_ = *registration;
  self->view_.addr = range.data;
  self->view_.length = range.length;
  self->pd_ = pd;
  self->buffer_ = Napi::Persistent(range.buffer);
  self->DependOn(owner_js, owner);
  // Freeing a mapped buffer closes the registrations over it first.
  Napi::Object holder_js;
  if (Resource* holder = MemoryHolder(env, range.data, range.length, &holder_js)) self->DependOn(holder_js, holder);
  return object;
}

Napi::Object Mr::WrapEntry(Napi::Env env, Pd* pd, const ByteRange& range, ibv_mr* registration,
                           RegistrationLender* lender, RegEntry* entry) {
  Napi::Object object;
  Mr* self = New(env, &object);
  self->lender_ = lender;
  self->entry_ = entry;
  self->view_ = *registration;
  self->pd_ = pd;
  self->buffer_ = Napi::Weak(range.buffer);
  return object;
}

int Mr::Destroy(CloseMode) {
  if (entry_ != nullptr) {
    RegEntry* entry = entry_;
    entry_ = nullptr;
    lender_->RegionClosed(entry);
  } else if (owned_ != nullptr) {
    int err = ibv_dereg_mr(owned_);
    if (err != 0) return err;
    owned_ = nullptr;
  }
  buffer_.Reset();  // only now may the memory go
  return 0;
}

void Mr::CheckAttached(Napi::Env env) {
  CheckOpen(env);
  Napi::ArrayBuffer buffer = buffer_.Value();
  // An entry's region holds its buffer weakly: collected means its memory may be anything's now.
  if (buffer.IsEmpty()) ThrowType(env, "the registered buffer was collected; register the memory again");
  if (buffer.IsDetached()) ThrowType(env, "the registered buffer was detached (transferred); close this MR");
}

void Mr::Follow(Napi::ArrayBuffer buffer) {
  Napi::ArrayBuffer current = buffer_.Value();
  if (current.IsEmpty() || current.IsDetached()) buffer_ = Napi::Weak(buffer);
}

void Mr::Revoke() {
  entry_ = nullptr;
  lender_ = nullptr;
  Close(CloseMode::kQuiet);
}

Napi::Value Mr::Release(const Napi::CallbackInfo& info) {
  if (!closed() && entry_ != nullptr) lender_->Release(entry_);
  return info.Env().Undefined();
}

Napi::Value Mr::Lkey(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), view_.lkey);
}

Napi::Value Mr::Rkey(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), view_.rkey);
}

Napi::Value Mr::Addr(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return FromU64(info.Env(), reinterpret_cast<uintptr_t>(view_.addr));
}

Napi::Value Mr::Length(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), static_cast<double>(view_.length));
}

Napi::Value Mr::Cached(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Boolean::New(info.Env(), entry_ != nullptr);
}

// advise(advice, flags, offset, length): ibv_advise_mr on a part of the region (prefetching ODP pages).
// ibv_advise_mr is an inline dispatch to the provider: where the provider has no advise_mr (rxe before
// rdma-core 59) libibverbs answers EOPNOTSUPP itself, which is the feature detection.
Napi::Value Mr::Advise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t advice = ToU32(info[0], "advice", IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT);
  uint32_t flags = ToU32(info[1], "flags");
  uint64_t offset = ToU64(info[2], "offset"), length = ToU64(info[3], "length");
  CheckAttached(env);
  if (offset > view_.length || length > view_.length - offset || length > UINT32_MAX) {
    ThrowRange(env, "the range exceeds the memory region");
  }
  ibv_sge sge = {reinterpret_cast<uintptr_t>(view_.addr) + offset, static_cast<uint32_t>(length), view_.lkey};
  int err = ibv_advise_mr(pd_->handle(), static_cast<ibv_advise_mr_advice>(advice), flags, &sge, 1);
  if (err != 0) ThrowVerb(env, "ibv_advise_mr", err);
  return env.Undefined();
}

}  // namespace rdma
