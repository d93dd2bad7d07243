// Flow steering: rules that direct received packets to a QP by their headers (ibv_create_flow). A rule is
// an ibv_flow_attr followed by its specs, packed here from JS objects whose values and masks are in host
// order (converted to network order as the headers carry them). A flow is a child of its QP.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <cstddef>
#include <vector>

#include "addon/resource.h"

namespace rdma {

class Qp;

// A count action's counters: where their pointer goes in the packed rule, and the object named, resolved
// only once every argument has been read.
struct CountersUse {
  size_t offset;
  Napi::Value counters;
};

// {type, priority, port, flags, specs: [{type, inner, value, mask} | {type: 'tag', tagId} | {type: 'drop'} |
// {type: 'count', counters}]} → the bytes ibv_create_flow takes (8-byte aligned storage).
std::vector<uint64_t> PackFlowAttr(Napi::Value attributes, std::vector<CountersUse>* counters);

class Flow : public Napi::ObjectWrap<Flow>, public Resource, public Lifecycle<Flow> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'000dULL, 0x666c'6f77'7275'6c65ULL};
  static constexpr const char* kName = "Flow";
  static Napi::Function Define(Napi::Env env);
  // qp.createFlow(attributes)
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object qp_js, Qp* qp);

  explicit Flow(const Napi::CallbackInfo& info);
  ~Flow() override { Close(CloseMode::kQuiet); }

 private:
  int Destroy(CloseMode mode) override;

  ibv_flow* flow_ = nullptr;
};

// packFlow(attributes) → Buffer: the packed rule, for tests against a C compile of verbs.h.
Napi::Value PackFlow(const Napi::CallbackInfo& info);

}  // namespace rdma
