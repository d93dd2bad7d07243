// A queue pair. Made by a PD (or on an rdma_cm ID) with its send and receive CQs (and SRQ), which it
// holds alive. Posting takes a list of work requests and hands it to the provider in one call (post.cc).
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>
#include <rdma/rdma_cma.h>

#include "addon/resource.h"
#include "verbs/post.h"

namespace rdma {

class Cq;
class Pd;
class PreparedWorkRequests;
class Srq;
class Xrcd;
class Context;

class Qp : public Napi::ObjectWrap<Qp>, public Resource, public Lifecycle<Qp> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0006ULL, 0x7175'6575'6570'6169ULL};
  static constexpr const char* kName = "QueuePair";
  static Napi::Function Define(Napi::Env env);
  // pd.createQp(sendCq, recvCq, attributes)
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd);
  // cmId.createQp(pd, sendCq, recvCq, attributes): the QP belongs to the CM ID, which moves it through
  // its states as the connection progresses.
  // xrcd.createQp() / xrcd.openQp(qpNum): an XRC target QP (IBV_QPT_XRC_RECV), made or opened by number.
  static Napi::Object CreateXrcTarget(const Napi::CallbackInfo& info, Napi::Object xrcd_js, Xrcd* xrcd, bool open);
  // cmId.createXrcTargetQp(xrcd): an XRC target QP owned by the CM ID.
  static Napi::Object CreateXrcTargetOnCmId(const Napi::CallbackInfo& info, Napi::Object cm_id_js, Resource* cm_id_owner,
                                            rdma_cm_id* cm_id);
  static Napi::Object CreateOnCmId(const Napi::CallbackInfo& info, Napi::Object cm_id_js, Resource* cm_id_owner,
                                   rdma_cm_id* cm_id);

  explicit Qp(const Napi::CallbackInfo& info);
  ~Qp() override { Close(CloseMode::kQuiet); }
  ibv_qp* handle() const { return qp_; }
  // Set when sends go through the extended post API (ibv_wr_*).
  ibv_qp_ex* extended_handle() const { return qpx_; }
  bool signal_all() const { return signal_all_; }
  const QueueLimits& send_limits() const { return send_limits_; }
  const QueueLimits& recv_limits() const { return recv_limits_; }
  // The outstanding requests and what they use; a CQ tells the QP of each completion it polls for it.
  InFlight& sends() { return sends_; }
  InFlight& receives();  // the SRQ's when the QP receives through one
  void Completed(const ibv_wc& wc, Cq* cq);
  // The receive ring that owns the receive queue (qp.createReceiveRing), if any: while it exists, nothing
  // else posts receives, so its receives complete in the order it posted them.
  Cq* recv_cq() const { return recv_cq_; }
  void SetRing(PreparedWorkRequests* ring) { ring_ = ring; }
  void CheckNoRing(Napi::Env env) const;
  // Receives are posted to this QP's own receive queue: not one with an SRQ, not an XRC QP (it has none).
  void CheckOwnReceiveQueue(Napi::Env env) const;

 private:
  // The QP's attributes from info[first..first+2] (sendCq, recvCq, attributes), each read once.
  struct InitFromJs {
    ibv_qp_init_attr attr = {};
    bool extended = false;
    Napi::Object srq_js;  // set when attr.srq is
  };
  static InitFromJs InitAttrFromJs(const Napi::CallbackInfo& info, size_t first, Pd* pd);
  // Records what the new QP uses: every object is held alive and closes the QP first.
  void Adopt(const Napi::CallbackInfo& info, size_t first, Napi::Object pd_js, ibv_qp* qp, const InitFromJs& init);

  // The limits posts are checked against, from the caps the provider allocated.
  void SetLimits(Context* context);
  // An XRC target's creation attributes, and what the new target records (its domain holds it).
  static ibv_qp_init_attr_ex XrcTargetAttr(Xrcd* xrcd, Qp* self);
  void AdoptXrcTarget(ibv_qp* qp, Napi::Object xrcd_js, Xrcd* xrcd);
  int Destroy(CloseMode mode) override;
  Napi::Value Modify(const Napi::CallbackInfo& info);
  Napi::Value Query(const Napi::CallbackInfo& info);
  Napi::Value PostSend(const Napi::CallbackInfo& info);
  Napi::Value PostRecv(const Napi::CallbackInfo& info);
  Napi::Value BindMw(const Napi::CallbackInfo& info);
  Napi::Value PrepareSend(const Napi::CallbackInfo& info);
  Napi::Value PrepareRecv(const Napi::CallbackInfo& info);
  Napi::Value CreateReceiveRing(const Napi::CallbackInfo& info);
  Napi::Value CreateFlow(const Napi::CallbackInfo& info);
  Napi::Value QpNum(const Napi::CallbackInfo& info);
  Napi::Value State(const Napi::CallbackInfo& info);
  Napi::Value Caps(const Napi::CallbackInfo& info);
  Napi::Value Extended(const Napi::CallbackInfo& info);

  ibv_qp* qp_ = nullptr;
  ibv_qp_ex* qpx_ = nullptr;     // set for QPs created for the extended post API (ibv_wr_*)
  rdma_cm_id* cm_id_ = nullptr;  // set when the CM ID owns the QP (destroyed with rdma_destroy_qp)
  ibv_qp_cap cap_ = {};
  bool signal_all_ = false;
  Cq* send_cq_ = nullptr;
  Cq* recv_cq_ = nullptr;
  Srq* srq_ = nullptr;
  PreparedWorkRequests* ring_ = nullptr;
  InFlight sends_, receives_;
  QueueLimits send_limits_, recv_limits_;
};

}  // namespace rdma
