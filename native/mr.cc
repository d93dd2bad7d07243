#include "mr.h"

#include <cerrno>

#include "pd.h"

namespace rdma {

Napi::Function Mr::Define(Napi::Env env) {
  return DefineClass(env, "MemoryRegion",
                     {InstanceAccessor<&Mr::Lkey>("lkey"), InstanceAccessor<&Mr::Rkey>("rkey"),
                      InstanceAccessor<&Mr::Addr>("addr"), InstanceAccessor<&Mr::Length>("length"),
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
  Napi::Object object = AddonData::Get(env).mr_class.New({ConstructToken(env)});
  Mr* self = Unwrap(object);
  self->mr_ = mr;
  self->pd_ = pd;
  self->buffer_ = Napi::Persistent(range.buffer);
  self->DependOn(pd_js, pd);
  return object;
}

int Mr::Destroy(CloseMode) {
  if (mr_ == nullptr) return 0;
  int err = ibv_dereg_mr(mr_);
  if (err != 0) return err;
  mr_ = nullptr;
  buffer_.Reset();  // only now may the memory go
  return 0;
}

void Mr::CheckAttached(Napi::Env env) {
  CheckOpen(env);
  if (buffer_.Value().IsDetached()) ThrowType(env, "the registered buffer was detached (transferred); close this MR");
}

Napi::Value Mr::Lkey(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), mr_->lkey);
}

Napi::Value Mr::Rkey(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), mr_->rkey);
}

Napi::Value Mr::Addr(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return FromU64(info.Env(), reinterpret_cast<uintptr_t>(mr_->addr));
}

Napi::Value Mr::Length(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), static_cast<double>(mr_->length));
}

}  // namespace rdma
