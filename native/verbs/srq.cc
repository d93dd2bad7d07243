#include "verbs/srq.h"

#include <cerrno>

#include "addon/args.h"
#include "verbs/context.h"
#include "verbs/cq.h"
#include "verbs/pd.h"
#include "verbs/xrcd.h"

namespace rdma {

Napi::Function Srq::Define(Napi::Env env) {
  return DefineClass(env, "SharedReceiveQueue",
                     {InstanceMethod<&Srq::PostRecv>("postRecv"), InstanceMethod<&Srq::Modify>("modify"),
                      InstanceMethod<&Srq::Query>("query"), InstanceAccessor<&Srq::SrqNum>("srqNum"), CloseMethod(),
                      ClosedGetter()});
}

Srq::Srq(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Srq>(info), Resource(info.Env(), "shared receive queue") {
  CheckConstructToken(info, "pd.createSrq()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

// pd.createSrq({maxWr, maxSge, srqLimit, xrcd, cq}): with an XRC domain and a CQ, an XRC SRQ (the
// receive queue of every XRC target QP of the domain whose senders name its number).
Napi::Object Srq::Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd) {
  Napi::Env env = info.Env();
  Napi::Object attrs = ToObject(info[0], "attributes");
  ibv_srq_init_attr_ex init = {};
  init.attr.max_wr = PropU32(attrs, "maxWr", 64);
  init.attr.max_sge = PropU32(attrs, "maxSge", 1);
  init.attr.srq_limit = PropU32(attrs, "srqLimit", 0);
  Napi::Value xrcd_js = attrs.Get("xrcd"), cq_js = attrs.Get("cq");
  bool xrc = !xrcd_js.IsUndefined();
  if (xrc != !cq_js.IsUndefined()) ThrowType(env, "an XRC SRQ needs both xrcd and cq; other SRQs neither");
  pd->CheckOpen(env);
  Xrcd* xrcd = xrc ? UnwrapOpen<Xrcd>(xrcd_js, "xrcd") : nullptr;
  Cq* cq = xrc ? UnwrapOpen<Cq>(cq_js, "cq") : nullptr;
  if (xrc && (xrcd->context() != pd->context() || cq->context() != pd->context())) {
    ThrowType(env, "the XRC domain, the CQ and the PD must belong to the same context");
  }
  Napi::Object object = AddonData::Get(env).srq_class.New({ConstructToken(env)});
  Srq* self = Unwrap(object);
  init.srq_context = self;  // the SRQ_LIMIT_REACHED event finds the SRQ through it
  ibv_srq* srq = nullptr;
  if (xrc) {
    init.comp_mask = IBV_SRQ_INIT_ATTR_TYPE | IBV_SRQ_INIT_ATTR_PD | IBV_SRQ_INIT_ATTR_XRCD | IBV_SRQ_INIT_ATTR_CQ;
    init.srq_type = IBV_SRQT_XRC;
    init.pd = pd->handle();
    init.xrcd = xrcd->handle();
    init.cq = cq->handle();
    srq = ibv_create_srq_ex(pd->context()->handle(), &init);
    if (srq == nullptr) ThrowVerb(env, "ibv_create_srq_ex", errno);
  } else {
    ibv_srq_init_attr basic = {init.srq_context, init.attr};
    srq = ibv_create_srq(pd->handle(), &basic);
    if (srq == nullptr) ThrowVerb(env, "ibv_create_srq", errno);
    init.attr = basic.attr;
  }
  self->srq_ = srq;
  self->pd_ = pd;
  self->limits_ = {init.attr.max_wr, init.attr.max_sge, 0, IBV_QPT_RC, 0, pd->context()};  // as the provider sized it
  self->DependOn(pd_js, pd);
  if (xrc) {
    self->DependOn(xrcd_js.As<Napi::Object>(), xrcd);
    self->DependOn(cq_js.As<Napi::Object>(), cq);
    self->xrc_cq_ = cq;
    cq->AttachXrcSrq(self);
  }
  return object;
}

int Srq::Destroy(CloseMode) {
  if (srq_ == nullptr) return 0;
  if (xrc_cq_ != nullptr) xrc_cq_->DetachXrcSrq(this);  // as a QP leaves its CQs: whatever the destroy says
  xrc_cq_ = nullptr;
  int err = ibv_destroy_srq(srq_);
  if (err != 0) return err;
  srq_ = nullptr;
  receives_.Clear();
  return 0;
}

Napi::Value Srq::PostRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RecvList list;
  ParseRecvList(info[0], limits_, &list);
  CheckOpen(env);
  CheckUses(env, list.uses);
  if (list.wrs.empty()) return env.Undefined();
  ibv_recv_wr* bad = nullptr;
  int err = ibv_post_srq_recv(srq_, list.wrs.data(), &bad);
  size_t posted = err == 0 ? list.wrs.size() : bad != nullptr ? static_cast<size_t>(bad - list.wrs.data()) : 0;
  receives_.Received(posted, &list.uses);
  if (err != 0) ThrowPostError(env, "ibv_post_srq_recv", err, posted);
  return env.Undefined();
}

// modify({maxWr?, srqLimit?}): a new limit re-arms the SRQ_LIMIT_REACHED event.
Napi::Value Srq::Modify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object js = ToObject(info[0], "attributes");
  ibv_srq_attr attr = {};
  int mask = 0;
  if (OptionalU32(js, "maxWr", &attr.max_wr)) mask |= IBV_SRQ_MAX_WR;
  if (OptionalU32(js, "srqLimit", &attr.srq_limit)) mask |= IBV_SRQ_LIMIT;
  CheckOpen(env);
  int err = ibv_modify_srq(srq_, &attr, mask);
  if (err != 0) ThrowVerb(env, "ibv_modify_srq", err);
  return env.Undefined();
}

// srqNum: what XRC senders name to reach this SRQ (remoteSrqn).
Napi::Value Srq::SrqNum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (xrc_cq_ == nullptr) ThrowType(env, "only XRC SRQs have a number");
  uint32_t num = 0;
  int err = ibv_get_srq_num(srq_, &num);
  if (err != 0) ThrowVerb(env, "ibv_get_srq_num", err);
  return Napi::Number::New(env, num);
}

Napi::Value Srq::Query(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ibv_srq_attr attr = {};
  int err = ibv_query_srq(srq_, &attr);
  if (err != 0) ThrowVerb(env, "ibv_query_srq", err);
  Napi::Object js = Napi::Object::New(env);
  js.Set("maxWr", attr.max_wr);
  js.Set("maxSge", attr.max_sge);
  js.Set("srqLimit", attr.srq_limit);
  return js;
}

}  // namespace rdma
