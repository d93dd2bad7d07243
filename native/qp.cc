#include "qp.h"

#include <cerrno>

#include "args.h"
#include "context.h"
#include "cq.h"
#include "pd.h"
#include "qp_attr.h"

namespace rdma {

Napi::Function Qp::Define(Napi::Env env) {
  return DefineClass(env, "QueuePair",
                     {InstanceMethod<&Qp::Modify>("modify"), InstanceMethod<&Qp::Query>("query"),
                      InstanceMethod<&Qp::PostSend>("postSend"), InstanceMethod<&Qp::PostRecv>("postRecv"),
                      InstanceAccessor<&Qp::QpNum>("qpNum"), InstanceAccessor<&Qp::Caps>("caps"),
                      CloseMethod(),
                      ClosedGetter()});
}

Qp::Qp(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Qp>(info), Resource(info.Env(), "queue pair") {
  CheckConstructToken(info, "pd.createQp()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

// pd.createQp(sendCq, recvCq, {qpType, maxSendWr, maxRecvWr, maxSendSge, maxRecvSge, maxInlineData, sqSigAll})
Napi::Object Qp::Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd) {
  Napi::Env env = info.Env();
  Cq* send_cq = UnwrapOpen<Cq>(info[0], "sendCq");
  Cq* recv_cq = UnwrapOpen<Cq>(info[1], "recvCq");
  if (send_cq->context() != pd->context() || recv_cq->context() != pd->context()) {
    ThrowType(env, "the CQs and the PD must belong to the same context");
  }
  Napi::Object attrs = ToObject(info[2], "attributes");
  ibv_qp_init_attr init = {};
  init.send_cq = send_cq->handle();
  init.recv_cq = recv_cq->handle();
  init.qp_type = static_cast<ibv_qp_type>(PropU32(attrs, "qpType", IBV_QPT_RC, IBV_QPT_DRIVER));
  init.cap.max_send_wr = PropU32(attrs, "maxSendWr", 16);
  init.cap.max_recv_wr = PropU32(attrs, "maxRecvWr", 16);
  init.cap.max_send_sge = PropU32(attrs, "maxSendSge", 1);
  init.cap.max_recv_sge = PropU32(attrs, "maxRecvSge", 1);
  init.cap.max_inline_data = PropU32(attrs, "maxInlineData", 0);
  init.sq_sig_all = PropBool(attrs, "sqSigAll", false) ? 1 : 0;

  Napi::Object object = AddonData::Get(env).qp_class.New({ConstructToken(env)});
  Qp* self = Unwrap(object);
  init.qp_context = self;  // async events find the QP through it
  ibv_qp* qp = ibv_create_qp(pd->handle(), &init);
  if (qp == nullptr) ThrowVerb(env, "ibv_create_qp", errno);
  self->qp_ = qp;
  self->pd_ = pd;
  self->cap_ = init.cap;  // the provider writes back what it actually allocated
  self->DependOn(pd_js, pd);
  self->DependOn(info[0].As<Napi::Object>(), send_cq);
  if (recv_cq != send_cq) self->DependOn(info[1].As<Napi::Object>(), recv_cq);
  return object;
}

int Qp::Destroy(CloseMode) {
  if (qp_ == nullptr) return 0;
  int err = ibv_destroy_qp(qp_);
  if (err != 0) return err;
  qp_ = nullptr;
  for (auto& [mr, reference] : posted_mrs_) reference.Reset();
  posted_mrs_.clear();
  return 0;
}

Napi::Value Qp::Modify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ibv_qp_attr attr = {};
  int mask = QpAttrFromJs(ToObject(info[0], "attributes"), &attr);
  int err = ibv_modify_qp(qp_, &attr, mask);
  if (err != 0) ThrowVerb(env, "ibv_modify_qp", err);
  return env.Undefined();
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

Napi::Value Qp::QpNum(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), qp_->qp_num);
}

Napi::Value Qp::Caps(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return QpCapToJs(info.Env(), cap_);
}

}  // namespace rdma
