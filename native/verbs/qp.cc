#include "verbs/qp.h"

#include <cerrno>

#include "addon/args.h"
#include "verbs/context.h"
#include "verbs/cq.h"
#include "verbs/flow.h"
#include "verbs/mr.h"
#include "verbs/mw.h"
#include "verbs/pd.h"
#include "verbs/prepared.h"
#include "verbs/qp_attr.h"
#include "verbs/srq.h"
#include "verbs/xrcd.h"

namespace rdma {

Napi::Function Qp::Define(Napi::Env env) {
  return DefineClass(env, "QueuePair",
                     {InstanceMethod<&Qp::Modify>("modify"), InstanceMethod<&Qp::Query>("query"),
                      InstanceMethod<&Qp::PostSend>("postSend"), InstanceMethod<&Qp::PostRecv>("postRecv"),
                      InstanceMethod<&Qp::BindMw>("bindMw"), InstanceMethod<&Qp::PrepareSend>("prepareSend"),
                      InstanceMethod<&Qp::PrepareRecv>("prepareRecv"),
                      InstanceMethod<&Qp::CreateReceiveRing>("createReceiveRing"),
                      InstanceMethod<&Qp::CreateFlow>("createFlow"), InstanceAccessor<&Qp::QpNum>("qpNum"),
                      InstanceAccessor<&Qp::State>("state"),
                      InstanceAccessor<&Qp::Caps>("caps"), InstanceAccessor<&Qp::Extended>("extended"),
                      CloseMethod(), ClosedGetter()});
}

Qp::Qp(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Qp>(info), Resource(info.Env(), "queue pair") {
  CheckConstructToken(info, "pd.createQp()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

// info[first..]: sendCq, recvCq, {qpType, maxSendWr, maxRecvWr, maxSendSge, maxRecvSge, maxInlineData,
// sqSigAll, srq}
Qp::InitFromJs Qp::InitAttrFromJs(const Napi::CallbackInfo& info, size_t first, Pd* pd) {
  Napi::Env env = info.Env();
  Napi::Object attrs = ToObject(info[first + 2], "attributes");
  InitFromJs result;
  ibv_qp_init_attr& init = result.attr;
  init.qp_type = static_cast<ibv_qp_type>(PropU32(attrs, "qpType", IBV_QPT_RC, IBV_QPT_DRIVER));
  init.cap.max_send_wr = PropU32(attrs, "maxSendWr", 16);
  init.cap.max_recv_wr = PropU32(attrs, "maxRecvWr", 16);
  init.cap.max_send_sge = PropU32(attrs, "maxSendSge", 1);
  init.cap.max_recv_sge = PropU32(attrs, "maxRecvSge", 1);
  init.cap.max_inline_data = PropU32(attrs, "maxInlineData", 0);
  init.sq_sig_all = PropBool(attrs, "sqSigAll", false) ? 1 : 0;
  Napi::Value srq_js = attrs.Get("srq");
  result.extended = PropBool(attrs, "extended", false);
  // An XRC initiator has no receive queue: its peer's XRC SRQ receives.
  bool initiator = init.qp_type == IBV_QPT_XRC_SEND;
  if (init.qp_type == IBV_QPT_XRC_RECV) ThrowType(env, "XRC_RECV QPs are made on an XRC domain: xrcd.createQp()");
  if (initiator && (!info[first + 1].IsUndefined() || !srq_js.IsUndefined())) ThrowType(env, "an XRC_SEND QP has no receive CQ or SRQ");
  if (initiator) init.cap.max_recv_wr = init.cap.max_recv_sge = 0;
  // Every attribute is read: what they name is checked only now.
  pd->CheckOpen(env);
  Cq* send_cq = UnwrapOpen<Cq>(info[first], "sendCq");
  Cq* recv_cq = initiator ? nullptr : UnwrapOpen<Cq>(info[first + 1], "recvCq");
  if (send_cq->context() != pd->context() || (recv_cq != nullptr && recv_cq->context() != pd->context())) {
    ThrowType(env, "the CQs and the PD must belong to the same context");
  }
  init.send_cq = send_cq->handle();
  init.recv_cq = recv_cq != nullptr ? recv_cq->handle() : nullptr;
  if (!srq_js.IsUndefined()) {
    Srq* srq = UnwrapOpen<Srq>(srq_js, "srq");
    if (srq->pd() != pd) ThrowType(env, "the SRQ must belong to the QP's PD");
    init.srq = srq->handle();
    result.srq_js = srq_js.As<Napi::Object>();
  }
  return result;
}

void Qp::Adopt(const Napi::CallbackInfo& info, size_t first, Napi::Object pd_js, ibv_qp* qp, const InitFromJs& from_js) {
  const ibv_qp_init_attr& init = from_js.attr;
  qp_ = qp;
  cap_ = init.cap;  // the provider writes back what it actually allocated
  signal_all_ = init.sq_sig_all != 0;
  Pd* pd = Pd::Unwrap(pd_js);
  SetLimits(pd->context());
  DependOn(pd_js, pd);
  Napi::Object send_cq = info[first].As<Napi::Object>();
  send_cq_ = Cq::Unwrap(send_cq);
  DependOn(send_cq, send_cq_);
  send_cq_->Attach(qp->qp_num, this);
  if (init.recv_cq != nullptr) {
    Napi::Object recv_cq = info[first + 1].As<Napi::Object>();
    recv_cq_ = Cq::Unwrap(recv_cq);
    if (!recv_cq.StrictEquals(send_cq)) DependOn(recv_cq, recv_cq_);
    recv_cq_->Attach(qp->qp_num, this);
  }
  if (init.srq != nullptr) {
    srq_ = Srq::Unwrap(from_js.srq_js);
    DependOn(from_js.srq_js, srq_);
  }
}

Napi::Object Qp::Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd) {
  Napi::Env env = info.Env();
  InitFromJs from_js = InitAttrFromJs(info, 0, pd);
  ibv_qp_init_attr& init = from_js.attr;
  bool extended = from_js.extended;
  Napi::Object object = AddonData::Get(env).qp_class.New({ConstructToken(env)});
  Qp* self = Unwrap(object);
  init.qp_context = self;  // async events find the QP through it
  ibv_qp* qp = nullptr;
  // The extended post API (ibv_wr_*), where the provider offers it (EOPNOTSUPP where it does not), and
  // XRC initiators (made as ibv_xsrq_pingpong makes them) come from ibv_create_qp_ex.
  if (extended || init.qp_type == IBV_QPT_XRC_SEND) {
    ibv_qp_init_attr_ex init_ex = {};
    init_ex.qp_context = init.qp_context;
    init_ex.send_cq = init.send_cq;
    init_ex.recv_cq = init.recv_cq;
    init_ex.srq = init.srq;
    init_ex.cap = init.cap;
    init_ex.qp_type = init.qp_type;
    init_ex.sq_sig_all = init.sq_sig_all;
    init_ex.comp_mask = IBV_QP_INIT_ATTR_PD | (extended ? IBV_QP_INIT_ATTR_SEND_OPS_FLAGS : 0);
    init_ex.pd = pd->handle();
    init_ex.send_ops_flags = extended ? ExtendedSendOps(init.qp_type) : 0;
    qp = ibv_create_qp_ex(pd->context()->handle(), &init_ex);
    if (qp == nullptr) ThrowVerb(env, "ibv_create_qp_ex", errno);
    init.cap = init_ex.cap;
    if (extended) self->qpx_ = ibv_qp_to_qp_ex(qp);
  } else {
    qp = ibv_create_qp(pd->handle(), &init);
    if (qp == nullptr) ThrowVerb(env, "ibv_create_qp", errno);
  }
  self->Adopt(info, 0, pd_js, qp, from_js);
  return object;
}

Napi::Object Qp::CreateOnCmId(const Napi::CallbackInfo& info, Napi::Object cm_id_js, Resource* cm_id_owner, rdma_cm_id* cm_id) {
  Napi::Env env = info.Env();
  Pd* pd = UnwrapTagged<Pd>(info[0], "pd");
  InitFromJs from_js = InitAttrFromJs(info, 1, pd);  // checks the PD once everything is read
  ibv_qp_init_attr& init = from_js.attr;
  cm_id_owner->CheckOpen(env);  // else cm_id is gone
  if (pd->context()->handle() != cm_id->verbs) ThrowType(env, "the PD must come from this CM ID's context");
  if (cm_id->qp != nullptr) ThrowType(env, "this CM ID already has a QP");
  Napi::Object object = AddonData::Get(env).qp_class.New({ConstructToken(env)});
  Qp* self = Unwrap(object);
  init.qp_context = self;
  if (rdma_create_qp(cm_id, pd->handle(), &init) != 0) ThrowVerb(env, "rdma_create_qp", errno);
  self->cm_id_ = cm_id;
  self->Adopt(info, 1, info[0].As<Napi::Object>(), cm_id->qp, from_js);
  self->DependOn(cm_id_js, cm_id_owner);
  return object;
}

// xrcd.createQp() / xrcd.openQp(qpNum): an XRC target QP, on the domain alone (no PD, CQs or queues).
Napi::Object Qp::CreateXrcTarget(const Napi::CallbackInfo& info, Napi::Object xrcd_js, Xrcd* xrcd, bool open) {
  Napi::Env env = info.Env();
  uint32_t qp_num = open ? ToU32(info[0], "qpNum", 0xffffff) : 0;
  xrcd->CheckOpen(env);
  Napi::Object object = AddonData::Get(env).qp_class.New({ConstructToken(env)});
  Qp* self = Unwrap(object);
  ibv_qp* qp = nullptr;
  if (open) {
    ibv_qp_open_attr attr = {};
    attr.comp_mask = IBV_QP_OPEN_ATTR_NUM | IBV_QP_OPEN_ATTR_XRCD | IBV_QP_OPEN_ATTR_CONTEXT | IBV_QP_OPEN_ATTR_TYPE;
    attr.qp_num = qp_num;
    attr.xrcd = xrcd->handle();
    attr.qp_context = self;
    attr.qp_type = IBV_QPT_XRC_RECV;
    qp = ibv_open_qp(xrcd->context()->handle(), &attr);
    if (qp == nullptr) ThrowVerb(env, "ibv_open_qp", errno);
  } else {
    ibv_qp_init_attr_ex init = XrcTargetAttr(xrcd, self);
    qp = ibv_create_qp_ex(xrcd->context()->handle(), &init);
    if (qp == nullptr) ThrowVerb(env, "ibv_create_qp_ex", errno);
  }
  self->AdoptXrcTarget(qp, xrcd_js, xrcd);
  return object;
}

// cmId.createXrcTargetQp(xrcd): an XRC target owned by the CM ID (rdma_xserver's QP), on the given domain.
Napi::Object Qp::CreateXrcTargetOnCmId(const Napi::CallbackInfo& info, Napi::Object cm_id_js, Resource* cm_id_owner, rdma_cm_id* cm_id) {
  Napi::Env env = info.Env();
  Xrcd* xrcd = UnwrapOpen<Xrcd>(info[0], "xrcd");  // the only argument: nothing else is read
  cm_id_owner->CheckOpen(env);
  if (xrcd->context()->handle() != cm_id->verbs) ThrowType(env, "the XRC domain must come from this CM ID's context");
  if (cm_id->qp != nullptr) ThrowType(env, "this CM ID already has a QP");
  Napi::Object object = AddonData::Get(env).qp_class.New({ConstructToken(env)});
  Qp* self = Unwrap(object);
  ibv_qp_init_attr_ex init = XrcTargetAttr(xrcd, self);
  if (rdma_create_qp_ex(cm_id, &init) != 0) ThrowVerb(env, "rdma_create_qp_ex", errno);
  self->cm_id_ = cm_id;
  self->AdoptXrcTarget(cm_id->qp, info[0].As<Napi::Object>(), xrcd);
  self->DependOn(cm_id_js, cm_id_owner);
  return object;
}

ibv_qp_init_attr_ex Qp::XrcTargetAttr(Xrcd* xrcd, Qp* self) {
  ibv_qp_init_attr_ex init = {};
  init.qp_type = IBV_QPT_XRC_RECV;
  init.comp_mask = IBV_QP_INIT_ATTR_XRCD;
  init.xrcd = xrcd->handle();
  init.qp_context = self;  // async events find the QP through it
  return init;
}

void Qp::AdoptXrcTarget(ibv_qp* qp, Napi::Object xrcd_js, Xrcd* xrcd) {
  qp_ = qp;
  SetLimits(xrcd->context());
  DependOn(xrcd_js, xrcd);
}

void Qp::CheckOwnReceiveQueue(Napi::Env env) const {
  if (srq_ != nullptr) ThrowType(env, "this QP receives through its SRQ; post receives to the SRQ");
  if (qp_ != nullptr && recv_cq_ == nullptr) ThrowType(env, "this XRC QP has no receive queue: receives go to XRC SRQs");
}

void Qp::SetLimits(Context* context) {
  send_limits_ = {cap_.max_send_wr, cap_.max_send_sge, cap_.max_inline_data, qp_->qp_type,
                  qpx_ != nullptr ? ExtendedSendOps(qp_->qp_type) : 0, context};
  recv_limits_ = {cap_.max_recv_wr, cap_.max_recv_sge, 0, qp_->qp_type, 0, context};
}

int Qp::Destroy(CloseMode) {
  if (qp_ == nullptr) return 0;
  // Off the CQs first, whatever the destroy says: a failed close leaves this object closed (and later
  // freed), so no CQ may still pass completions to it.
  if (send_cq_ != nullptr) send_cq_->Detach(qp_->qp_num);
  if (recv_cq_ != nullptr) recv_cq_->Detach(qp_->qp_num);
  if (cm_id_ != nullptr) {
    rdma_destroy_qp(cm_id_);
  } else {
    int err = ibv_destroy_qp(qp_);
    if (err != 0) return err;
  }
  qp_ = nullptr;
  qpx_ = nullptr;
  sends_.Clear();
  receives_.Clear();
  return 0;
}

InFlight& Qp::receives() { return srq_ != nullptr ? srq_->receives() : receives_; }

// A failed completion's opcode is undefined: its queue is known from the CQ when the queues have their own.
// Any failure puts the QP in the error state, where the device touches none of its requests again (an
// SRQ's receives excepted: they stay for other QPs).
void Qp::Completed(const ibv_wc& wc, Cq* cq) {
  bool receive = send_cq_ != recv_cq_ ? cq == recv_cq_ : wc.status == IBV_WC_SUCCESS && (wc.opcode & IBV_WC_RECV);
  if (wc.status != IBV_WC_SUCCESS) {
    sends_.Clear();
    receives_.Clear();
    if (receive && srq_ != nullptr) srq_->receives().ReceiveCompleted();
  } else if (receive) {
    receives().ReceiveCompleted();
    if (ring_ != nullptr) ring_->Consumed(cq);
  } else {
    sends_.SendCompleted();
  }
}

Napi::Value Qp::Modify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ibv_qp_attr attr = {};
  int mask = QpAttrFromJs(ToObject(info[0], "attributes"), &attr);
  CheckOpen(env);
  int err = ibv_modify_qp(qp_, &attr, mask);
  if (err != 0) ThrowVerb(env, "ibv_modify_qp", err);
  if ((mask & IBV_QP_STATE) && attr.qp_state == IBV_QPS_RESET) {  // the device dropped every request
    sends_.Clear();
    receives_.Clear();
  }
  return env.Undefined();
}

// The state alone: one attribute asked of the provider, not the full query.
Napi::Value Qp::State(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ibv_qp_attr attr = {};
  ibv_qp_init_attr init = {};
  int err = ibv_query_qp(qp_, &attr, IBV_QP_STATE, &init);
  if (err != 0) ThrowVerb(env, "ibv_query_qp", err);
  return Napi::Number::New(env, attr.qp_state);
}

Napi::Value Qp::Query(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ibv_qp_attr attr = {};
  ibv_qp_init_attr init = {};
  const int all = IBV_QP_STATE | IBV_QP_CUR_STATE | IBV_QP_EN_SQD_ASYNC_NOTIFY | IBV_QP_ACCESS_FLAGS |
                  IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_TIMEOUT |
                  IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_RQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC | IBV_QP_ALT_PATH |
                  IBV_QP_MIN_RNR_TIMER | IBV_QP_SQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_PATH_MIG_STATE |
                  IBV_QP_CAP | IBV_QP_DEST_QPN;
  int err = ibv_query_qp(qp_, &attr, all, &init);
  if (err != 0) ThrowVerb(env, "ibv_query_qp", err);
  return QpAttrToJs(env, attr, init);
}

// bindMw(mw, {wrId, mr, offset, length, access, signaled}) → the window's new rkey (type 1 windows).
Napi::Value Qp::BindMw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object js = ToObject(info[1], "bind");
  Napi::Value mr_value = js.Get("mr");
  uint64_t offset = PropU64(js, "offset", 0);
  Napi::Value length_js = js.Get("length");
  ibv_mw_bind bind = {};
  bind.wr_id = PropU64(js, "wrId", 0);
  bind.send_flags = PropBool(js, "signaled", true) ? IBV_SEND_SIGNALED : 0;
  bind.bind_info.mw_access_flags = PropU32(js, "access", 0);
  // Every argument is read: nothing can run JS from here on.
  CheckOpen(env);
  Mw* mw = UnwrapOpen<Mw>(info[0], "mw");
  Mr* mr = UnwrapOpen<Mr>(mr_value, "mr");
  uint64_t size = mr->handle()->length;
  uint64_t length = length_js.IsUndefined() ? (offset <= size ? size - offset : 0) : ToU64(length_js, "length");
  if (offset > size || length > size - offset) ThrowRange(env, "the window exceeds the MR");
  bind.bind_info.mr = mr->handle();
  bind.bind_info.addr = reinterpret_cast<uintptr_t>(mr->handle()->addr) + offset;
  bind.bind_info.length = length;
  Napi::Object mw_js = info[0].As<Napi::Object>(), mr_js = mr_value.As<Napi::Object>();
  int err = ibv_bind_mw(qp_, mw->handle(), &bind);
  if (err != 0) ThrowVerb(env, "ibv_bind_mw", err);
  mw->BindPosted(mw->handle()->rkey, mr_js, mr, Value(), this);  // ibv_bind_mw set the new rkey
  ibv_send_wr request = {};
  request.send_flags = bind.send_flags;
  std::vector<ObjectUse> uses = {{0, mw, mw_js, nullptr}};
  sends_.Sent(&request, 1, signal_all_, &uses);
  return Napi::Number::New(env, mw->handle()->rkey);
}

Napi::Value Qp::PrepareSend(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return PreparedWorkRequests::Create(info, Value(), this, PreparedWorkRequests::Kind::kSend);
}

Napi::Value Qp::PrepareRecv(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return PreparedWorkRequests::Create(info, Value(), this, PreparedWorkRequests::Kind::kRecv);
}

Napi::Value Qp::CreateReceiveRing(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return PreparedWorkRequests::Create(info, Value(), this, PreparedWorkRequests::Kind::kRing);
}

Napi::Value Qp::CreateFlow(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Flow::Create(info, Value(), this);
}

void Qp::CheckNoRing(Napi::Env env) const {
  if (ring_ != nullptr) ThrowType(env, "this QP's receive ring posts its receives; close the ring to post others");
}

Napi::Value Qp::QpNum(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), qp_->qp_num);
}

Napi::Value Qp::Extended(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), qpx_ != nullptr);
}

Napi::Value Qp::Caps(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return QpCapToJs(info.Env(), cap_);
}

}  // namespace rdma
