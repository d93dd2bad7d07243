// A shared receive queue: one pool of receive buffers for many QPs of a PD. Reaching its limit raises
// the SRQ_LIMIT_REACHED async event (once per arming through modify({srqLimit})).
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/resource.h"
#include "verbs/post.h"

namespace rdma {

class Cq;
class Pd;

class Srq : public Napi::ObjectWrap<Srq>, public Resource, public Lifecycle<Srq> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0008ULL, 0x7368'6172'6564'7271ULL};
  static constexpr const char* kName = "SharedReceiveQueue";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd);

  explicit Srq(const Napi::CallbackInfo& info);
  ~Srq() override { Close(CloseMode::kQuiet); }
  ibv_srq* handle() const { return srq_; }
  Pd* pd() const { return pd_; }
  // The receives posted here and what they use (a receive completion of one of its QPs lets go of one).
  InFlight& receives() { return receives_; }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value PostRecv(const Napi::CallbackInfo& info);
  Napi::Value Modify(const Napi::CallbackInfo& info);
  Napi::Value Query(const Napi::CallbackInfo& info);
  Napi::Value SrqNum(const Napi::CallbackInfo& info);

  ibv_srq* srq_ = nullptr;
  Pd* pd_ = nullptr;
  Cq* xrc_cq_ = nullptr;  // an XRC SRQ's CQ, which hands it its receive completions
  InFlight receives_;
  QueueLimits limits_;
};

}  // namespace rdma
