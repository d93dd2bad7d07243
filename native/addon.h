// Per-environment state of the addon (main thread and each worker get their own): the JS classes it
// builds objects from, the RdmaError class supplied by lib/, and every live verbs object, so that
// environment teardown can close what garbage collection has not.
#pragma once
#include <napi.h>

#include <infiniband/verbs.h>

#include <memory>
#include <unordered_map>
#include <unordered_set>

namespace rdma {

class Context;
class Resource;

// Every live verbs object of an environment. Shared with the objects themselves, because at teardown the
// finalizers of the objects and of AddonData run in no particular order.
using LiveSet = std::unordered_set<Resource*>;

struct AddonData {
  Napi::FunctionReference error_class;
  Napi::FunctionReference context_class, pd_class, mr_class, channel_class, cq_class, qp_class, ah_class, srq_class,
      mw_class, cm_channel_class, cm_id_class, prepared_class;
  std::shared_ptr<LiveSet> live = std::make_shared<LiveSet>();
  // Contexts of devices librdmacm opened (cmId.context), one wrapper per ibv_context.
  std::shared_ptr<std::unordered_map<ibv_context*, Context*>> borrowed_contexts =
      std::make_shared<std::unordered_map<ibv_context*, Context*>>();
  // One async context for every callback the addon makes from the event loop (pollers).
  Napi::AsyncContext async_context;

  explicit AddonData(Napi::Env env) : async_context(env, "rdma-node") {}
  static AddonData& Get(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

// Runs fn inside a callback scope (so promise reactions and nextTicks run afterwards), reporting a JS
// exception thrown by a callback as an uncaught exception instead of unwinding into libuv.
template <class Fn>
void CallFromLoop(Napi::Env env, Fn&& fn) {
  Napi::HandleScope handles(env);
  Napi::CallbackScope scope(env, AddonData::Get(env).async_context);
  try {
    fn();
  } catch (const Napi::Error& error) {
    napi_fatal_exception(env, error.Value());
  }
}

}  // namespace rdma
