#include "verbs/ah.h"

#include <cerrno>
#include <cstring>

#include "addon/args.h"
#include "verbs/context.h"
#include "verbs/pd.h"
#include "verbs/qp_attr.h"

namespace rdma {

Napi::Function Ah::Define(Napi::Env env) {
  return DefineClass(env, "AddressHandle", {InstanceAccessor<&Ah::Attr>("attr"), CloseMethod(), ClosedGetter()});
}

Ah::Ah(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Ah>(info), Resource(info.Env(), "address handle") {
  CheckConstructToken(info, "pd.createAh()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object Ah::Wrap(Napi::Env env, Napi::Object pd_js, Pd* pd, ibv_ah* ah, const ibv_ah_attr& attr) {
  Napi::Object object = AddonData::Get(env).ah_class.New({ConstructToken(env)});
  Ah* self = Unwrap(object);
  self->ah_ = ah;
  self->attr_ = attr;
  self->DependOn(pd_js, pd);
  return object;
}

// pd.createAh({dlid, sl, portNum, grh: {dgid, sgidIndex, hopLimit, ...}})
Napi::Object Ah::Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd) {
  Napi::Env env = info.Env();
  ibv_ah_attr attr = {};
  AhAttrFromJs(ToObject(info[0], "address"), &attr);
  pd->CheckOpen(env);
  ibv_ah* ah = ibv_create_ah(pd->handle(), &attr);
  if (ah == nullptr) ThrowVerb(env, "ibv_create_ah", errno);
  return Wrap(env, pd_js, pd, ah, attr);
}

// pd.createAhFromCompletion(portNum, {srcQp, slid, sl, wcFlags, dlidPathBits, pkeyIndex}, grh: 40 bytes)
Napi::Object Ah::CreateFromCompletion(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd) {
  Napi::Env env = info.Env();
  uint32_t port = ToU32(info[0], "portNum", UINT8_MAX);
  Napi::Object js = ToObject(info[1], "completion");
  ibv_wc wc = {};
  wc.src_qp = PropU32(js, "srcQp", 0);
  wc.slid = static_cast<uint16_t>(PropU32(js, "slid", 0, UINT16_MAX));
  wc.sl = static_cast<uint8_t>(PropU32(js, "sl", 0, 15));
  wc.wc_flags = PropU32(js, "wcFlags", 0);
  wc.dlid_path_bits = static_cast<uint8_t>(PropU32(js, "dlidPathBits", 0, UINT8_MAX));
  wc.pkey_index = static_cast<uint16_t>(PropU32(js, "pkeyIndex", 0, UINT16_MAX));
  ibv_grh grh;
  memcpy(&grh, ToFixedBytes(info[2], sizeof grh, "grh"), sizeof grh);
  pd->CheckOpen(env);
  ibv_ah_attr attr = {};
  int err = ibv_init_ah_from_wc(pd->context()->handle(), static_cast<uint8_t>(port), &wc, &grh, &attr);
  if (err != 0) ThrowVerb(env, "ibv_init_ah_from_wc", err < 0 ? -err : err);
  ibv_ah* ah = ibv_create_ah(pd->handle(), &attr);
  if (ah == nullptr) ThrowVerb(env, "ibv_create_ah", errno);
  return Wrap(env, pd_js, pd, ah, attr);
}

int Ah::Destroy(CloseMode) {
  if (ah_ == nullptr) return 0;
  int err = ibv_destroy_ah(ah_);
  if (err == 0) ah_ = nullptr;
  return err;
}

Napi::Value Ah::Attr(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return AhAttrToJs(info.Env(), attr_);
}

}  // namespace rdma
