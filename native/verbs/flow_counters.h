// Flow counters (ibv_counters): packet and byte counts of the flows whose rules carry a count action
// pointing at them. Each counter index is defined (attach, before the flow exists) as what it counts;
// read() returns them all. A child of its context; flows using it hold it.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/resource.h"

namespace rdma {

class Context;

class FlowCounters : public Napi::ObjectWrap<FlowCounters>, public Resource, public Lifecycle<FlowCounters> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'000fULL, 0x636f'756e'7465'7273ULL};
  static constexpr const char* kName = "FlowCounters";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object context_js, Context* context);

  explicit FlowCounters(const Napi::CallbackInfo& info);
  ~FlowCounters() override { Close(CloseMode::kQuiet); }
  ibv_counters* handle() const { return counters_; }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);

  ibv_counters* counters_ = nullptr;
  uint32_t attached_ = 0;  // indexes defined so far: how many read() returns
};

}  // namespace rdma
