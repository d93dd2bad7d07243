#include "verbs/qp_attr.h"

#include <cstddef>
#include <cstring>
#include <string>

#include "addon/args.h"
#include "addon/errors.h"
#include "addon/fields.h"

namespace rdma {

// Address vectors: {dlid, sl, srcPathBits, staticRate, portNum, grh?: {dgid, flowLabel, sgidIndex, hopLimit,
// trafficClass}}, with their ranges and defaults.
constexpr InputField kAhFields[] = {
    {RDMA_FIELD(ibv_ah_attr, "dlid", dlid), UINT16_MAX, 0}, {RDMA_FIELD(ibv_ah_attr, "sl", sl), 15, 0},
    {RDMA_FIELD(ibv_ah_attr, "srcPathBits", src_path_bits), 127, 0},
    {RDMA_FIELD(ibv_ah_attr, "staticRate", static_rate), UINT8_MAX, 0},
    {RDMA_FIELD(ibv_ah_attr, "portNum", port_num), UINT8_MAX, 1},
};
constexpr InputField kGrhFields[] = {
    {RDMA_FIELD(ibv_global_route, "flowLabel", flow_label), 0xfffff, 0},
    {RDMA_FIELD(ibv_global_route, "sgidIndex", sgid_index), UINT8_MAX, 0},
    {RDMA_FIELD(ibv_global_route, "hopLimit", hop_limit), UINT8_MAX, 1},
    {RDMA_FIELD(ibv_global_route, "trafficClass", traffic_class), UINT8_MAX, 0},
};

void AhAttrFromJs(Napi::Object js, ibv_ah_attr* ah) {
  ReadFields(js, ah, kAhFields);
  Napi::Value grh_value = js.Get("grh");
  ah->is_global = grh_value.IsUndefined() ? 0 : 1;
  if (!ah->is_global) return;
  Napi::Object grh = ToObject(grh_value, "grh");
  memcpy(ah->grh.dgid.raw, ToFixedBytes(grh.Get("dgid"), 16, "grh.dgid"), 16);
  ReadFields(grh, &ah->grh, kGrhFields);
}

Napi::Object AhAttrToJs(Napi::Env env, const ibv_ah_attr& ah) {
  Napi::Object js = Napi::Object::New(env);
  SetFields(js, &ah, kAhFields);
  if (ah.is_global) {
    Napi::Object grh = Napi::Object::New(env);
    grh.Set("dgid", Napi::Buffer<uint8_t>::Copy(env, ah.grh.dgid.raw, 16));
    SetFields(grh, &ah.grh, kGrhFields);
    js.Set("grh", grh);
  }
  return js;
}

// The scalar fields of ibv_qp_attr, written once for both directions: where each is (addon/fields.h),
// its attribute-mask bit and its range. Alternate-path fields go with altAhAttr; read-only ones are only
// reported.
enum class FieldUse { kModify, kAltPath, kReported };
struct QpAttrField {
  Field field;
  int mask;
  uint32_t min, max;
  FieldUse use;
  uint32_t fallback;  // alternate-path fields not given with altAhAttr
};
#define QP_FIELD(key, member, mask, min, max, use, fallback) \
  { RDMA_FIELD(ibv_qp_attr, key, member), mask, min, max, FieldUse::use, fallback }
constexpr QpAttrField kQpAttrFields[] = {
    QP_FIELD("qpState", qp_state, IBV_QP_STATE, 0, IBV_QPS_ERR, kModify, 0),
    QP_FIELD("curQpState", cur_qp_state, IBV_QP_CUR_STATE, 0, IBV_QPS_ERR, kModify, 0),
    QP_FIELD("pathMtu", path_mtu, IBV_QP_PATH_MTU, IBV_MTU_256, IBV_MTU_4096, kModify, 0),
    QP_FIELD("pathMigState", path_mig_state, IBV_QP_PATH_MIG_STATE, 0, IBV_MIG_ARMED, kModify, 0),
    QP_FIELD("qkey", qkey, IBV_QP_QKEY, 0, UINT32_MAX, kModify, 0),
    QP_FIELD("rqPsn", rq_psn, IBV_QP_RQ_PSN, 0, 0xffffff, kModify, 0),
    QP_FIELD("sqPsn", sq_psn, IBV_QP_SQ_PSN, 0, 0xffffff, kModify, 0),
    QP_FIELD("destQpNum", dest_qp_num, IBV_QP_DEST_QPN, 0, 0xffffff, kModify, 0),
    QP_FIELD("qpAccessFlags", qp_access_flags, IBV_QP_ACCESS_FLAGS, 0, UINT32_MAX, kModify, 0),
    QP_FIELD("pkeyIndex", pkey_index, IBV_QP_PKEY_INDEX, 0, UINT16_MAX, kModify, 0),
    QP_FIELD("enSqdAsyncNotify", en_sqd_async_notify, IBV_QP_EN_SQD_ASYNC_NOTIFY, 0, 1, kModify, 0),
    QP_FIELD("maxRdAtomic", max_rd_atomic, IBV_QP_MAX_QP_RD_ATOMIC, 0, UINT8_MAX, kModify, 0),
    QP_FIELD("maxDestRdAtomic", max_dest_rd_atomic, IBV_QP_MAX_DEST_RD_ATOMIC, 0, UINT8_MAX, kModify, 0),
    QP_FIELD("minRnrTimer", min_rnr_timer, IBV_QP_MIN_RNR_TIMER, 0, 31, kModify, 0),
    QP_FIELD("portNum", port_num, IBV_QP_PORT, 0, UINT8_MAX, kModify, 0),
    QP_FIELD("timeout", timeout, IBV_QP_TIMEOUT, 0, 31, kModify, 0),
    QP_FIELD("retryCnt", retry_cnt, IBV_QP_RETRY_CNT, 0, 7, kModify, 0),
    QP_FIELD("rnrRetry", rnr_retry, IBV_QP_RNR_RETRY, 0, 7, kModify, 0),
    QP_FIELD("rateLimit", rate_limit, IBV_QP_RATE_LIMIT, 0, UINT32_MAX, kModify, 0),
    QP_FIELD("altPkeyIndex", alt_pkey_index, IBV_QP_ALT_PATH, 0, UINT16_MAX, kAltPath, 0),
    QP_FIELD("altPortNum", alt_port_num, IBV_QP_ALT_PATH, 0, UINT8_MAX, kAltPath, 1),
    QP_FIELD("altTimeout", alt_timeout, IBV_QP_ALT_PATH, 0, 31, kAltPath, 14),
    QP_FIELD("sqDraining", sq_draining, 0, 0, 1, kReported, 0),
};
#undef QP_FIELD

// Each key is read once (a getter runs once); an absent key leaves its field and mask bit unset.
int QpAttrFromJs(Napi::Object js, ibv_qp_attr* a) {
  Napi::Env env = js.Env();
  int mask = 0;
  Napi::Value alt = js.Get("altAhAttr");
  for (const QpAttrField& field : kQpAttrFields) {
    if (field.use == FieldUse::kReported) continue;
    Napi::Value value = js.Get(field.field.key);
    if (field.use == FieldUse::kAltPath && alt.IsUndefined()) continue;
    if (value.IsUndefined() && field.use == FieldUse::kModify) continue;
    uint32_t number = value.IsUndefined() ? field.fallback : ToU32(value, field.field.key, field.max);
    if (number < field.min) ThrowRange(env, std::string(field.field.key) + " must be at least " + std::to_string(field.min));
    StoreU32(a, field.field, number);
    mask |= field.mask;
  }
  Napi::Value ah = js.Get("ahAttr");
  if (!ah.IsUndefined()) {
    AhAttrFromJs(ToObject(ah, "ahAttr"), &a->ah_attr);
    mask |= IBV_QP_AV;
  }
  if (!alt.IsUndefined()) AhAttrFromJs(ToObject(alt, "altAhAttr"), &a->alt_ah_attr);
  Napi::Value cap_js = js.Get("cap");
  if (!cap_js.IsUndefined()) {
    Napi::Object cap = ToObject(cap_js, "cap");
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
  for (const QpAttrField& field : kQpAttrFields) js.Set(field.field.key, LoadU32(&a, field.field));
  js.Set("cap", QpCapToJs(env, a.cap));
  js.Set("ahAttr", AhAttrToJs(env, a.ah_attr));
  js.Set("altAhAttr", AhAttrToJs(env, a.alt_ah_attr));
  js.Set("qpType", static_cast<int>(init.qp_type));
  js.Set("sqSigAll", init.sq_sig_all != 0);
  js.Set("initCap", QpCapToJs(env, init.cap));
  return js;
}

}  // namespace rdma
