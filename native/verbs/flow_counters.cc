#include "verbs/flow_counters.h"

#include <cerrno>
#include <vector>

#include "addon/args.h"
#include "addon/fields.h"
#include "verbs/context.h"

namespace rdma {

Napi::Function FlowCounters::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {InstanceMethod<&FlowCounters::Attach>("attach"), InstanceMethod<&FlowCounters::Read>("read"), CloseMethod(),
                      ClosedGetter()});
}

FlowCounters::FlowCounters(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FlowCounters>(info), Resource(info.Env(), "flow counters") {
  CheckConstructToken(info, "context.createFlowCounters()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object FlowCounters::Create(const Napi::CallbackInfo& info, Napi::Object context_js, Context* context) {
  Napi::Env env = info.Env();
  ibv_counters_init_attr attr = {};
  ibv_counters* counters = ibv_create_counters(context->handle(), &attr);
  // A provider without counters has no create_counters op: libibverbs fails with EOPNOTSUPP.
  if (counters == nullptr) ThrowVerb(env, "ibv_create_counters", errno != 0 ? errno : EOPNOTSUPP);
  Napi::Object object = AddonData::Get(env).flow_counters_class.New({ConstructToken(env)});
  FlowCounters* self = Unwrap(object);
  self->counters_ = counters;
  self->DependOn(context_js, context);
  return object;
}

int FlowCounters::Destroy(CloseMode) {
  if (counters_ == nullptr) return 0;
  int err = ibv_destroy_counters(counters_);
  if (err == 0) counters_ = nullptr;
  return err;
}

// attach(description: IBV_COUNTER_PACKETS | IBV_COUNTER_BYTES, index): defines counter `index` before a
// flow uses these counters (ibv_attach_counters_point_flow without a flow).
Napi::Value FlowCounters::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ibv_counter_attach_attr attr = {};
  attr.counter_desc = static_cast<ibv_counter_description>(ToU32(info[0], "description", IBV_COUNTER_BYTES));
  attr.index = ToU32(info[1], "index", UINT16_MAX);
  CheckOpen(env);
  int err = ibv_attach_counters_point_flow(counters_, &attr, nullptr);
  if (err != 0) ThrowVerb(env, "ibv_attach_counters_point_flow", err);
  if (attr.index >= attached_) attached_ = attr.index + 1;
  return env.Undefined();
}

// read(preferCached) → BigUint64Array of every defined counter (ibv_read_counters).
Napi::Value FlowCounters::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool cached = info[0].IsUndefined() ? false : ToBool(info[0], "preferCached");
  CheckOpen(env);
  std::vector<uint64_t> values(attached_);
  int err = ibv_read_counters(counters_, values.data(), attached_, cached ? IBV_READ_COUNTERS_ATTR_PREFER_CACHED : 0);
  if (err != 0) ThrowVerb(env, "ibv_read_counters", err);
  auto array = Napi::TypedArrayOf<uint64_t>::New(env, values.size(), napi_biguint64_array);
  for (size_t i = 0; i < values.size(); i++) array[i] = values[i];
  return array;
}

}  // namespace rdma
