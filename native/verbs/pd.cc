#include "verbs/pd.h"

#include <cerrno>

#include "verbs/ah.h"
#include "verbs/context.h"
#include "verbs/mr.h"
#include "verbs/mw.h"
#include "verbs/qp.h"
#include "verbs/srq.h"

namespace rdma {

Napi::Function Pd::Define(Napi::Env env) {
  return DefineClass(env, "ProtectionDomain",
                     {InstanceMethod<&Pd::RegisterMemory>("registerMemory"),
                      InstanceMethod<&Pd::CreateQp>("createQp"),
                      InstanceMethod<&Pd::CreateAh>("createAh"),
                      InstanceMethod<&Pd::CreateAhFromCompletion>("createAhFromCompletion"),
                      InstanceMethod<&Pd::CreateSrq>("createSrq"),
                      InstanceMethod<&Pd::AllocMw>("allocMw"),
                      CloseMethod(),
                      ClosedGetter()});
}

Pd::Pd(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Pd>(info), Resource(info.Env(), "protection domain") {
  CheckConstructToken(info, "context.allocPd()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object Pd::Create(Napi::Env env, Napi::Object context_js, Context* context) {
  ibv_pd* pd = ibv_alloc_pd(context->handle());
  if (pd == nullptr) ThrowVerb(env, "ibv_alloc_pd", errno);
  Napi::Object object = AddonData::Get(env).pd_class.New({ConstructToken(env)});
  Pd* self = Unwrap(object);
  self->pd_ = pd;
  self->context_ = context;
  self->DependOn(context_js, context);
  return object;
}

int Pd::Destroy(CloseMode) {
  if (pd_ == nullptr) return 0;
  int err = ibv_dealloc_pd(pd_);
  if (err == 0) pd_ = nullptr;
  return err;
}

// registerMemory(arrayBuffer, byteOffset, byteLength, access)
Napi::Value Pd::RegisterMemory(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Mr::Create(info.Env(), Value(), this, ToByteRange(info[0], info[1], info[2]), ToU32(info[3], "access"));
}

Napi::Value Pd::CreateQp(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Qp::Create(info, Value(), this);
}

Napi::Value Pd::CreateAh(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Ah::Create(info, Value(), this);
}

Napi::Value Pd::CreateAhFromCompletion(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Ah::CreateFromCompletion(info, Value(), this);
}

Napi::Value Pd::CreateSrq(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Srq::Create(info, Value(), this);
}

Napi::Value Pd::AllocMw(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Mw::Create(info, Value(), this);
}

}  // namespace rdma
