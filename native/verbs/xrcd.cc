#include "verbs/xrcd.h"

#include <fcntl.h>

#include <cerrno>

#include "addon/args.h"
#include "verbs/context.h"
#include "verbs/qp.h"

namespace rdma {

Napi::Function Xrcd::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {InstanceMethod<&Xrcd::CreateQp>("createQp"), InstanceMethod<&Xrcd::OpenQp>("openQp"), CloseMethod(),
                      ClosedGetter()});
}

Xrcd::Xrcd(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Xrcd>(info), Resource(info.Env(), "XRC domain") {
  CheckConstructToken(info, "context.openXrcd()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object Xrcd::Open(const Napi::CallbackInfo& info, Napi::Object context_js, Context* context) {
  Napi::Env env = info.Env();
  int32_t fd = ToI32(info[0], "fd", -1, INT32_MAX);
  uint32_t oflags = ToU32(info[1], "oflags");
  if ((oflags & ~static_cast<uint32_t>(O_CREAT | O_EXCL)) != 0) ThrowRange(env, "oflags may only hold O_CREAT and O_EXCL");
  context->CheckOpen(env);
  ibv_xrcd_init_attr attr = {};
  attr.comp_mask = IBV_XRCD_INIT_ATTR_FD | IBV_XRCD_INIT_ATTR_OFLAGS;
  attr.fd = fd;
  attr.oflags = static_cast<int>(oflags);
  ibv_xrcd* xrcd = ibv_open_xrcd(context->handle(), &attr);
  if (xrcd == nullptr) ThrowVerb(env, "ibv_open_xrcd", errno);
  Napi::Object object = AddonData::Get(env).xrcd_class.New({ConstructToken(env)});
  Xrcd* self = Unwrap(object);
  self->xrcd_ = xrcd;
  self->context_ = context;
  self->DependOn(context_js, context);
  return object;
}

int Xrcd::Destroy(CloseMode) {
  if (xrcd_ == nullptr) return 0;
  int err = ibv_close_xrcd(xrcd_);
  if (err == 0) xrcd_ = nullptr;
  return err;
}

Napi::Value Xrcd::CreateQp(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Qp::CreateXrcTarget(info, Value(), this, false);
}

Napi::Value Xrcd::OpenQp(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Qp::CreateXrcTarget(info, Value(), this, true);
}

}  // namespace rdma
