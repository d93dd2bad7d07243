#include "verbs/context.h"

#include <cerrno>
#include <cstring>
#include <endian.h>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/fields.h"
#include "verbs/completion_channel.h"
#include "verbs/cq.h"
#include "verbs/flow_counters.h"
#include "verbs/mw.h"
#include "verbs/pd.h"
#include "verbs/qp.h"
#include "verbs/srq.h"
#include "verbs/xrcd.h"

namespace rdma {

Napi::Function Context::Define(Napi::Env env) {
  return DefineClass(env, "Context",
                     {InstanceMethod<&Context::QueryDevice>("queryDevice"),
                      InstanceMethod<&Context::QueryPort>("queryPort"),
                      InstanceMethod<&Context::QueryGidTable>("queryGidTable"),
                      InstanceMethod<&Context::AllocPd>("allocPd"),
                      InstanceMethod<&Context::OpenXrcd>("openXrcd"),
                      InstanceMethod<&Context::CreateFlowCounters>("createFlowCounters"),
                      InstanceMethod<&Context::CreateCompletionChannel>("createCompletionChannel"),
                      InstanceMethod<&Context::CreateCq>("createCq"),
                      InstanceMethod<&Context::WatchAsyncEvents>("watchAsyncEvents"),
                      InstanceAccessor<&Context::DeviceName>("deviceName"),
                      CloseMethod(),
                      ClosedGetter()});
}

Context::Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info), Resource(info.Env(), "context") {
  CheckConstructToken(info, "openContext()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Value Context::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "device name must be a string");
  std::string name = info[0].As<Napi::String>();
  int count = 0;
  ibv_device** list = ibv_get_device_list(&count);
  if (list == nullptr) ThrowVerb(env, "ibv_get_device_list", errno);
  ibv_context* ctx = nullptr;
  int err = ENODEV;
  for (int i = 0; i < count; i++) {
    if (name == ibv_get_device_name(list[i])) {
      ctx = ibv_open_device(list[i]);
      err = ctx == nullptr ? errno : 0;
      break;
    }
  }
  ibv_free_device_list(list);
  if (ctx == nullptr) ThrowVerb(env, "ibv_open_device", err);
  Napi::Object object = AddonData::Get(env).context_class.New({ConstructToken(env)});
  Unwrap(object)->ctx_ = ctx;
  return object;
}

Napi::Object Context::Borrow(Napi::Env env, ibv_context* ctx) {
  AddonData& data = AddonData::Get(env);
  auto found = data.borrowed_contexts->find(ctx);
  if (found != data.borrowed_contexts->end() && !found->second->Value().IsEmpty()) return found->second->Value();
  Napi::Object object = data.context_class.New({ConstructToken(env)});
  Context* self = Unwrap(object);
  self->ctx_ = ctx;
  self->borrowed_ = data.borrowed_contexts;
  (*self->borrowed_)[ctx] = self;
  return object;
}

void Context::AddWindow(Mw* mw) { windows_[mw->handle()->rkey >> 8] = mw; }

void Context::RemoveWindow(uint32_t rkey, Mw* mw) {
  auto it = windows_.find(rkey >> 8);
  if (it != windows_.end() && it->second == mw) windows_.erase(it);
}

Mw* Context::WindowAt(uint32_t rkey) const {
  auto it = windows_.find(rkey >> 8);
  return it != windows_.end() ? it->second : nullptr;
}

int Context::Destroy(CloseMode) {
  async_poller_.reset();
  async_listener_.Reset();
  if (ctx_ == nullptr) return 0;
  int err = 0;
  if (borrowed_) {
    auto entry = borrowed_->find(ctx_);
    if (entry != borrowed_->end() && entry->second == this) borrowed_->erase(entry);
  } else {
    err = ibv_close_device(ctx_);
  }
  ctx_ = nullptr;
  return err;
}

static Napi::Object OdpCaps(Napi::Env env, const ibv_odp_caps& caps) {
  Napi::Object odp = Napi::Object::New(env);
  odp.Set("generalCaps", FromU64(env, caps.general_caps));
  odp.Set("rcOdpCaps", caps.per_transport_caps.rc_odp_caps);
  odp.Set("ucOdpCaps", caps.per_transport_caps.uc_odp_caps);
  odp.Set("udOdpCaps", caps.per_transport_caps.ud_odp_caps);
  return odp;
}

Napi::Value Context::DeviceName(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::String::New(info.Env(), ibv_get_device_name(ctx_->device));
}

// ibv_query_device_ex's attributes, as ibv_devinfo -v names them (camelCase).
#define DEV(key, member) RDMA_FIELD(ibv_device_attr_ex, key, orig_attr.member)
#define DEV_EX(key, member) RDMA_FIELD(ibv_device_attr_ex, key, member)
constexpr Field kDeviceFields[] = {
    RDMA_BE64_FIELD(ibv_device_attr_ex, "nodeGuid", orig_attr.node_guid),
    RDMA_BE64_FIELD(ibv_device_attr_ex, "sysImageGuid", orig_attr.sys_image_guid),
    DEV("maxMrSize", max_mr_size), DEV("pageSizeCap", page_size_cap), DEV("vendorId", vendor_id),
    DEV("vendorPartId", vendor_part_id), DEV("hwVer", hw_ver), DEV("maxQp", max_qp), DEV("maxQpWr", max_qp_wr),
    DEV("maxSge", max_sge), DEV("maxSgeRd", max_sge_rd), DEV("maxCq", max_cq), DEV("maxCqe", max_cqe),
    DEV("maxMr", max_mr), DEV("maxPd", max_pd), DEV("maxQpRdAtom", max_qp_rd_atom), DEV("maxEeRdAtom", max_ee_rd_atom),
    DEV("maxResRdAtom", max_res_rd_atom), DEV("maxQpInitRdAtom", max_qp_init_rd_atom),
    DEV("maxEeInitRdAtom", max_ee_init_rd_atom), DEV("atomicCap", atomic_cap), DEV("maxEe", max_ee),
    DEV("maxRdd", max_rdd), DEV("maxMw", max_mw), DEV("maxRawIpv6Qp", max_raw_ipv6_qp),
    DEV("maxRawEthyQp", max_raw_ethy_qp), DEV("maxMcastGrp", max_mcast_grp), DEV("maxMcastQpAttach", max_mcast_qp_attach),
    DEV("maxTotalMcastQpAttach", max_total_mcast_qp_attach), DEV("maxAh", max_ah), DEV("maxSrq", max_srq),
    DEV("maxSrqWr", max_srq_wr), DEV("maxSrqSge", max_srq_sge), DEV("maxPkeys", max_pkeys),
    DEV("localCaAckDelay", local_ca_ack_delay), DEV("physPortCnt", phys_port_cnt),
    DEV_EX("xrcOdpCaps", xrc_odp_caps), DEV_EX("completionTimestampMask", completion_timestamp_mask),
    DEV_EX("hcaCoreClock", hca_core_clock), DEV_EX("maxDmSize", max_dm_size), DEV_EX("maxWqTypeRq", max_wq_type_rq),
    DEV_EX("rawPacketCaps", raw_packet_caps),
};
constexpr Field kPciAtomicFields[] = {
    RDMA_FIELD(ibv_pci_atomic_caps, "fetchAdd", fetch_add), RDMA_FIELD(ibv_pci_atomic_caps, "swap", swap),
    RDMA_FIELD(ibv_pci_atomic_caps, "compareSwap", compare_swap),
};
#undef DEV
#undef DEV_EX

Napi::Value Context::QueryDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ibv_device_attr_ex ex = {};
  int err = ibv_query_device_ex(ctx_, nullptr, &ex);
  if (err != 0) ThrowVerb(env, "ibv_query_device_ex", err);
  Napi::Object r = Napi::Object::New(env);
  SetFields(r, &ex, kDeviceFields);
  r.Set("fwVer", ex.orig_attr.fw_ver);  // a string
  // The capability flags the extended query adds above bit 31 come with the classic ones.
  r.Set("deviceCapFlags", FromU64(env, ex.device_cap_flags_ex | ex.orig_attr.device_cap_flags));
  r.Set("odpCaps", OdpCaps(env, ex.odp_caps));
  Napi::Object pci_atomic = Napi::Object::New(env);
  SetFields(pci_atomic, &ex.pci_atomic_caps, kPciAtomicFields);
  r.Set("pciAtomicCaps", pci_atomic);
  return r;
}

#define PORT(key, member) RDMA_FIELD(ibv_port_attr, key, member)
constexpr Field kPortFields[] = {
    PORT("state", state), PORT("maxMtu", max_mtu), PORT("activeMtu", active_mtu), PORT("gidTblLen", gid_tbl_len),
    PORT("portCapFlags", port_cap_flags), PORT("portCapFlags2", port_cap_flags2), PORT("maxMsgSz", max_msg_sz),
    PORT("badPkeyCntr", bad_pkey_cntr), PORT("qkeyViolCntr", qkey_viol_cntr), PORT("pkeyTblLen", pkey_tbl_len),
    PORT("lid", lid), PORT("smLid", sm_lid), PORT("lmc", lmc), PORT("maxVlNum", max_vl_num), PORT("smSl", sm_sl),
    PORT("subnetTimeout", subnet_timeout), PORT("initTypeReply", init_type_reply), PORT("activeWidth", active_width),
    PORT("activeSpeed", active_speed), PORT("physState", phys_state), PORT("linkLayer", link_layer), PORT("flags", flags),
};
#undef PORT

Napi::Value Context::QueryPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  uint32_t port = ToU32(info[0], "port", 255);
  ibv_port_attr a = {};
  int err = ibv_query_port(ctx_, static_cast<uint8_t>(port), &a);
  if (err != 0) ThrowVerb(env, "ibv_query_port", err);
  Napi::Object r = Napi::Object::New(env);
  SetFields(r, &a, kPortFields);
  return r;
}

Napi::Value Context::QueryGidTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ibv_device_attr attr = {};
  int err = ibv_query_device(ctx_, &attr);
  if (err != 0) ThrowVerb(env, "ibv_query_device", err);
  size_t capacity = 0;
  for (uint8_t port = 1; port <= attr.phys_port_cnt; port++) {
    ibv_port_attr port_attr = {};
    err = ibv_query_port(ctx_, port, &port_attr);
    if (err != 0) ThrowVerb(env, "ibv_query_port", err);
    capacity += static_cast<size_t>(port_attr.gid_tbl_len);
  }
  std::vector<ibv_gid_entry> entries(capacity);
  ssize_t count = capacity == 0 ? 0 : ibv_query_gid_table(ctx_, entries.data(), entries.size(), 0);
  if (count < 0) ThrowVerb(env, "ibv_query_gid_table", static_cast<int>(-count));
  Napi::Array table = Napi::Array::New(env, static_cast<size_t>(count));
  for (ssize_t i = 0; i < count; i++) {
    const ibv_gid_entry& e = entries[static_cast<size_t>(i)];
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("gid", Napi::Buffer<uint8_t>::Copy(env, e.gid.raw, sizeof e.gid.raw));
    entry.Set("gidIndex", e.gid_index);
    entry.Set("portNum", e.port_num);
    entry.Set("gidType", e.gid_type);
    entry.Set("ndevIfindex", e.ndev_ifindex);
    table.Set(static_cast<uint32_t>(i), entry);
  }
  return table;
}

Napi::Value Context::AllocPd(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Pd::Create(info.Env(), Value(), this);
}

Napi::Value Context::OpenXrcd(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Xrcd::Open(info, Value(), this);
}

Napi::Value Context::CreateFlowCounters(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return FlowCounters::Create(info, Value(), this);
}

Napi::Value Context::CreateCompletionChannel(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return CompletionChannel::Create(info.Env(), Value(), this);
}

// createCq(cqe, channel | null, compVector)
Napi::Value Context::CreateCq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  uint32_t cqe = ToU32(info[0], "cqe", INT32_MAX);
  CompletionChannel* channel = info[1].IsNull() || info[1].IsUndefined() ? nullptr : UnwrapOpen<CompletionChannel>(info[1], "channel");
  if (channel != nullptr && channel->context() != this) ThrowType(env, "channel belongs to another context");
  uint32_t vector = ToU32(info[2], "compVector", INT32_MAX);
  return Cq::Create(env, Value(), this, cqe, channel, info[1], vector);
}

// watchAsyncEvents(listener | null): events arrive as {type, name, portNum?, qp?, cq?}. Each event is
// acknowledged before the listener runs: destroying a QP/CQ waits for its events to be acked, and the
// listener may well close the object the event is about.
Napi::Value Context::WatchAsyncEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info[0].IsNull() || info[0].IsUndefined()) {
    async_listener_.Reset();
    if (async_poller_) async_poller_->Stop();
    return env.Undefined();
  }
  if (!info[0].IsFunction()) ThrowType(env, "listener must be a function or null");
  async_listener_ = Napi::Persistent(info[0].As<Napi::Function>());
  if (!async_poller_) {
    int err = SetNonBlocking(ctx_->async_fd);
    if (err != 0) ThrowVerb(env, "fcntl(async_fd)", err);
    async_poller_ = std::make_unique<FdPoller>(env, ctx_->async_fd, [this] { DrainAsyncEvents(); });
  }
  // Like a socket with a 'data' listener, a context with an event listener keeps the process alive
  // until the listener is removed or the context closed.
  async_poller_->Start();
  return env.Undefined();
}

void Context::DrainAsyncEvents() {
  CallFromLoop(env_, [this] {
    ibv_async_event event;
    while (ctx_ != nullptr && ibv_get_async_event(ctx_, &event) == 0) {
      Napi::Object js = Napi::Object::New(env_);
      js.Set("type", static_cast<int>(event.event_type));
      js.Set("name", ibv_event_type_str(event.event_type));
      switch (event.event_type) {
        case IBV_EVENT_PORT_ACTIVE: case IBV_EVENT_PORT_ERR: case IBV_EVENT_LID_CHANGE:
        case IBV_EVENT_PKEY_CHANGE: case IBV_EVENT_SM_CHANGE: case IBV_EVENT_CLIENT_REREGISTER:
        case IBV_EVENT_GID_CHANGE:
          js.Set("portNum", event.element.port_num);
          break;
        case IBV_EVENT_CQ_ERR:
          if (auto* cq = static_cast<Cq*>(event.element.cq->cq_context)) js.Set("cq", cq->Value());
          break;
        case IBV_EVENT_SRQ_ERR: case IBV_EVENT_SRQ_LIMIT_REACHED:
          if (auto* srq = static_cast<Srq*>(event.element.srq->srq_context)) js.Set("srq", srq->Value());
          break;
        case IBV_EVENT_DEVICE_FATAL:
          break;
        default:  // the QP events
          if (auto* qp = static_cast<Qp*>(event.element.qp->qp_context)) js.Set("qp", qp->Value());
          js.Set("qpNum", event.element.qp->qp_num);
          break;
      }
      ibv_ack_async_event(&event);
      if (!async_listener_.IsEmpty()) async_listener_.Call({js});
    }
  });
}

}  // namespace rdma
