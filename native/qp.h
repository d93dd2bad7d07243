// A queue pair. Made by a PD with its send and receive CQs, which it holds alive. Posting takes a list of
// work requests and hands it to the provider in one call (post.cc).
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <unordered_map>

#include "resource.h"

namespace rdma {

class Pd;
class Mr;

class Qp : public Napi::ObjectWrap<Qp>, public Resource, public Lifecycle<Qp> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0006ULL, 0x7175'6575'6570'6169ULL};
  static constexpr const char* kName = "QueuePair";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd);

  explicit Qp(const Napi::CallbackInfo& info);
  ~Qp() override { Close(CloseMode::kQuiet); }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Modify(const Napi::CallbackInfo& info);
  Napi::Value Query(const Napi::CallbackInfo& info);
  Napi::Value PostSend(const Napi::CallbackInfo& info);
  Napi::Value PostRecv(const Napi::CallbackInfo& info);
  Napi::Value QpNum(const Napi::CallbackInfo& info);
  Napi::Value Caps(const Napi::CallbackInfo& info);

  // Resolves a scatter/gather entry given from JS; `cpu_reads` when the CPU (not the device) will read
  // the memory, as for inline data, where only memory this process owns is acceptable.
  ibv_sge ToSge(Napi::Value value, bool cpu_reads);
  // Work requests in flight name MRs by address only: the QP keeps every MR it has posted with alive
  // until the QP closes, so GC cannot deregister memory under an outstanding request.
  void HoldMr(Mr* mr, Napi::Object mr_js);

  ibv_qp* qp_ = nullptr;
  Pd* pd_ = nullptr;
  ibv_qp_cap cap_ = {};
  std::unordered_map<Mr*, Napi::ObjectReference> posted_mrs_;
};

}  // namespace rdma
