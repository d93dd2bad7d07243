// Per-environment state of the addon (main thread and each worker get their own): the JS classes it
// builds objects from, the RdmaError class supplied by lib/, and every live verbs object, so that
// environment teardown can close what garbage collection has not.
#pragma once
#include <napi.h>

#include <infiniband/verbs.h>

#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace rdma {

class Context;
class MappedBuffer;
class RegistrationCache;
class Resource;

// Every live verbs object of an environment. Shared with the objects themselves, because at teardown the
// finalizers of the objects and of AddonData run in no particular order.
using LiveSet = std::unordered_set<Resource*>;

// The memory this environment mapped (by start address) and its registration caches: registering a mapped
// buffer makes the registration its dependent, and memory about to go drops the cache entries over it
// first. Shared like LiveSet: the last ArrayBuffer over a mapping may be finalized at teardown, after AddonData.
struct MemoryRegistry {
  std::map<uintptr_t, MappedBuffer*> buffers;
  std::vector<RegistrationCache*> caches;
};

struct AddonData {
  Napi::FunctionReference error_class;
  Napi::FunctionReference context_class, pd_class, mr_class, completion_channel_class, cq_class, qp_class, ah_class, srq_class,
      mw_class, cm_channel_class, cm_id_class, prepared_class, flow_class, flow_counters_class, xrcd_class;
  std::shared_ptr<LiveSet> live = std::make_shared<LiveSet>();
  // Contexts of devices librdmacm opened (cmId.context), one wrapper per ibv_context.
  std::shared_ptr<std::unordered_map<ibv_context*, Context*>> borrowed_contexts =
      std::make_shared<std::unordered_map<ibv_context*, Context*>>();
  Napi::FunctionReference mapped_buffer_class, registration_cache_class, segment_class, segment_access_class, pmix_client_class,
      collective_engine_class;
  std::shared_ptr<MemoryRegistry> memory = std::make_shared<MemoryRegistry>();
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
