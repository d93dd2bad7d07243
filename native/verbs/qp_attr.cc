#include "verbs/qp_attr.h"

#include <cstring>

#include "addon/args.h"

namespace rdma {

void AhAttrFromJs(Napi::Object js, ibv_ah_attr* ah) {
  ah->dlid = static_cast<uint16_t>(PropU32(js, "dlid", 0, UINT16_MAX));
  ah->sl = static_cast<uint8_t>(PropU32(js, "sl", 0, 15));
  ah->src_path_bits = static_cast<uint8_t>(PropU32(js, "srcPathBits", 0, 127));
  ah->static_rate = static_cast<uint8_t>(PropU32(js, "staticRate", 0, UINT8_MAX));
  ah->port_num = static_cast<uint8_t>(PropU32(js, "portNum", 1, UINT8_MAX));
  Napi::Value grh_value = js.Get("grh");
  ah->is_global = grh_value.IsUndefined() ? 0 : 1;
  if (!ah->is_global) return;
  Napi::Object grh = ToObject(grh_value, "grh");
  memcpy(ah->grh.dgid.raw, ToFixedBytes(grh.Get("dgid"), 16, "grh.dgid"), 16);
  ah->grh.flow_label = PropU32(grh, "flowLabel", 0, 0xfffff);
  ah->grh.sgid_index = static_cast<uint8_t>(PropU32(grh, "sgidIndex", 0, UINT8_MAX));
  ah->grh.hop_limit = static_cast<uint8_t>(PropU32(grh, "hopLimit", 1, UINT8_MAX));
  ah->grh.traffic_class = static_cast<uint8_t>(PropU32(grh, "trafficClass", 0, UINT8_MAX));
}

Napi::Object AhAttrToJs(Napi::Env env, const ibv_ah_attr& ah) {
  Napi::Object js = Napi::Object::New(env);
  js.Set("dlid", ah.dlid);
  js.Set("sl", ah.sl);
  js.Set("srcPathBits", ah.src_path_bits);
  js.Set("staticRate", ah.static_rate);
  js.Set("portNum", ah.port_num);
  if (ah.is_global) {
    Napi::Object grh = Napi::Object::New(env);
    grh.Set("dgid", Napi::Buffer<uint8_t>::Copy(env, ah.grh.dgid.raw, 16));
    grh.Set("flowLabel", ah.grh.flow_label);
    grh.Set("sgidIndex", ah.grh.sgid_index);
    grh.Set("hopLimit", ah.grh.hop_limit);
    grh.Set("trafficClass", ah.grh.traffic_class);
    js.Set("grh", grh);
  }
  return js;
}

int QpAttrFromJs(Napi::Object js, ibv_qp_attr* a) {
  int mask = 0;
  auto u8 = [&](const char* key, uint8_t* field, int bit, uint32_t max) {
    if (!Has(js, key)) return;
    *field = static_cast<uint8_t>(ToU32(js.Get(key), key, max));
    mask |= bit;
  };
  auto u16 = [&](const char* key, uint16_t* field, int bit) {
    if (!Has(js, key)) return;
    *field = static_cast<uint16_t>(ToU32(js.Get(key), key, UINT16_MAX));
    mask |= bit;
  };
  auto u32 = [&](const char* key, uint32_t* field, int bit, uint32_t max) {
    if (!Has(js, key)) return;
    *field = ToU32(js.Get(key), key, max);
    mask |= bit;
  };
  uint32_t value = 0;
  if (Has(js, "qpState")) { a->qp_state = static_cast<ibv_qp_state>(ToU32(js.Get("qpState"), "qpState", IBV_QPS_ERR)); mask |= IBV_QP_STATE; }
  if (Has(js, "curQpState")) { a->cur_qp_state = static_cast<ibv_qp_state>(ToU32(js.Get("curQpState"), "curQpState", IBV_QPS_ERR)); mask |= IBV_QP_CUR_STATE; }
  if (Has(js, "pathMtu")) {
    value = ToU32(js.Get("pathMtu"), "pathMtu", IBV_MTU_4096);
    if (value < IBV_MTU_256) throw Napi::RangeError::New(js.Env(), "pathMtu must be an IBV_MTU value (1..5)");
    a->path_mtu = static_cast<ibv_mtu>(value);
    mask |= IBV_QP_PATH_MTU;
  }
  if (Has(js, "pathMigState")) { a->path_mig_state = static_cast<ibv_mig_state>(ToU32(js.Get("pathMigState"), "pathMigState", IBV_MIG_ARMED)); mask |= IBV_QP_PATH_MIG_STATE; }
  u32("qkey", &a->qkey, IBV_QP_QKEY, UINT32_MAX);
  u32("rqPsn", &a->rq_psn, IBV_QP_RQ_PSN, 0xffffff);
  u32("sqPsn", &a->sq_psn, IBV_QP_SQ_PSN, 0xffffff);
  u32("destQpNum", &a->dest_qp_num, IBV_QP_DEST_QPN, 0xffffff);
  if (Has(js, "qpAccessFlags")) { a->qp_access_flags = ToU32(js.Get("qpAccessFlags"), "qpAccessFlags"); mask |= IBV_QP_ACCESS_FLAGS; }
  if (Has(js, "ahAttr")) { AhAttrFromJs(ToObject(js.Get("ahAttr"), "ahAttr"), &a->ah_attr); mask |= IBV_QP_AV; }
  if (Has(js, "altAhAttr")) {
    AhAttrFromJs(ToObject(js.Get("altAhAttr"), "altAhAttr"), &a->alt_ah_attr);
    a->alt_pkey_index = static_cast<uint16_t>(PropU32(js, "altPkeyIndex", 0, UINT16_MAX));
    a->alt_port_num = static_cast<uint8_t>(PropU32(js, "altPortNum", 1, UINT8_MAX));
    a->alt_timeout = static_cast<uint8_t>(PropU32(js, "altTimeout", 14, 31));
    mask |= IBV_QP_ALT_PATH;
  }
  u16("pkeyIndex", &a->pkey_index, IBV_QP_PKEY_INDEX);
  u8("enSqdAsyncNotify", &a->en_sqd_async_notify, IBV_QP_EN_SQD_ASYNC_NOTIFY, 1);
  u8("maxRdAtomic", &a->max_rd_atomic, IBV_QP_MAX_QP_RD_ATOMIC, UINT8_MAX);
  u8("maxDestRdAtomic", &a->max_dest_rd_atomic, IBV_QP_MAX_DEST_RD_ATOMIC, UINT8_MAX);
  u8("minRnrTimer", &a->min_rnr_timer, IBV_QP_MIN_RNR_TIMER, 31);
  u8("portNum", &a->port_num, IBV_QP_PORT, UINT8_MAX);
  u8("timeout", &a->timeout, IBV_QP_TIMEOUT, 31);
  u8("retryCnt", &a->retry_cnt, IBV_QP_RETRY_CNT, 7);
  u8("rnrRetry", &a->rnr_retry, IBV_QP_RNR_RETRY, 7);
  u32("rateLimit", &a->rate_limit, IBV_QP_RATE_LIMIT, UINT32_MAX);
  if (Has(js, "cap")) {
    Napi::Object cap = ToObject(js.Get("cap"), "cap");
    a->cap.max_send_wr = PropU32(cap, "maxSendWr", 0);
    a->cap.max_recv_wr = PropU32(cap, "maxRecvWr", 0);
    mask |= IBV_QP_CAP;
  }
  return mask;
}

Napi::Object QpCapToJs(Napi::Env env, const ibv_qp_cap& cap) {
  Napi::Object js = Napi::Object::New(env);
  js.Set("maxSendWr", cap.max_send_wr);
  js.Set("maxRecvWr", cap.max_recv_wr);
  js.Set("maxSendSge", cap.max_send_sge);
  js.Set("maxRecvSge", cap.max_recv_sge);
  js.Set("maxInlineData", cap.max_inline_data);
  return js;
}

Napi::Object QpAttrToJs(Napi::Env env, const ibv_qp_attr& a, const ibv_qp_init_attr& init) {
  Napi::Object js = Napi::Object::New(env);
  js.Set("qpState", static_cast<int>(a.qp_state));
  js.Set("curQpState", static_cast<int>(a.cur_qp_state));
  js.Set("pathMtu", static_cast<int>(a.path_mtu));
  js.Set("pathMigState", static_cast<int>(a.path_mig_state));
  js.Set("qkey", a.qkey);
  js.Set("rqPsn", a.rq_psn);
  js.Set("sqPsn", a.sq_psn);
  js.Set("destQpNum", a.dest_qp_num);
  js.Set("qpAccessFlags", a.qp_access_flags);
  js.Set("cap", QpCapToJs(env, a.cap));
  js.Set("ahAttr", AhAttrToJs(env, a.ah_attr));
  js.Set("altAhAttr", AhAttrToJs(env, a.alt_ah_attr));
  js.Set("pkeyIndex", a.pkey_index);
  js.Set("altPkeyIndex", a.alt_pkey_index);
  js.Set("enSqdAsyncNotify", a.en_sqd_async_notify);
  js.Set("sqDraining", a.sq_draining);
  js.Set("maxRdAtomic", a.max_rd_atomic);
  js.Set("maxDestRdAtomic", a.max_dest_rd_atomic);
  js.Set("minRnrTimer", a.min_rnr_timer);
  js.Set("portNum", a.port_num);
  js.Set("timeout", a.timeout);
  js.Set("retryCnt", a.retry_cnt);
  js.Set("rnrRetry", a.rnr_retry);
  js.Set("altPortNum", a.alt_port_num);
  js.Set("altTimeout", a.alt_timeout);
  js.Set("rateLimit", a.rate_limit);
  js.Set("qpType", static_cast<int>(init.qp_type));
  js.Set("sqSigAll", init.sq_sig_all != 0);
  js.Set("initCap", QpCapToJs(env, init.cap));
  return js;
}

}  // namespace rdma
