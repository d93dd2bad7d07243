#include "verbs/flow.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon/args.h"
#include "verbs/flow_counters.h"
#include "verbs/qp.h"

namespace rdma {

namespace {

Napi::Object Filter(Napi::Object spec, const char* key) {
  Napi::Value value = spec.Get(key);
  if (value.IsUndefined()) return Napi::Object::New(spec.Env());  // all zero: matches anything
  return ToObject(value, std::string("spec.") + key);
}

uint8_t U8(Napi::Object filter, const char* key) { return static_cast<uint8_t>(PropU32(filter, key, 0, UINT8_MAX)); }
uint16_t Be16(Napi::Object filter, const char* key) { return htons(static_cast<uint16_t>(PropU32(filter, key, 0, UINT16_MAX))); }
uint32_t Be32(Napi::Object filter, const char* key) { return htonl(PropU32(filter, key, 0)); }

// An address as text ('10.0.0.1', 'fe80::1', 'aa:bb:cc:dd:ee:ff') or its bytes; absent: zero.
void Address(Napi::Object filter, const char* key, uint8_t* out, size_t size) {
  Napi::Env env = filter.Env();
  Napi::Value value = filter.Get(key);
  std::memset(out, 0, size);
  if (value.IsUndefined()) return;
  if (value.IsString()) {
    std::string text = value.As<Napi::String>().Utf8Value();
    bool ok = false;
    if (size == 4) ok = inet_pton(AF_INET, text.c_str(), out) == 1;
    if (size == 16) ok = inet_pton(AF_INET6, text.c_str(), out) == 1;
    if (size == 6) {
      unsigned int b[6];
      char end;
      ok = std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) == 6;
      for (size_t i = 0; ok && i < 6; i++) out[i] = static_cast<uint8_t>(b[i]);
    }
    if (!ok) ThrowType(env, std::string(key) + " is not a valid address: " + text);
    return;
  }
  std::memcpy(out, ToFixedBytes(value, size, key), size);
}

// Appends `spec` (zero-initialized by the caller, padding included) with its type and size. Specs follow
// each other at their sizes, not their alignment (a counter action, which holds a pointer, can start at 4
// mod 8): copied in, never written in place.
template <class Spec>
void Append(std::vector<uint8_t>* out, ibv_flow_spec_type type, Spec* spec) {
  spec->type = type;
  spec->size = sizeof(Spec);
  size_t at = out->size();
  out->resize(at + sizeof(Spec));
  std::memcpy(out->data() + at, spec, sizeof(Spec));
}

// A spec with nothing but its type and size.
template <class Spec>
void Append(std::vector<uint8_t>* out, ibv_flow_spec_type type) {
  Spec spec = {};
  Append(out, type, &spec);
}

// A header spec: the same filter filled from `value` and from `mask`.
template <class Spec, class Fill>
void Header(std::vector<uint8_t>* out, ibv_flow_spec_type type, Napi::Object js, Fill fill) {
  Napi::Object value = Filter(js, "value"), mask = Filter(js, "mask");
  Spec spec = {};
  fill(value, &spec.val);
  fill(mask, &spec.mask);
  Append(out, type, &spec);
}

void Eth(Napi::Object f, ibv_flow_eth_filter* out) {
  Address(f, "dstMac", out->dst_mac, 6);
  Address(f, "srcMac", out->src_mac, 6);
  out->ether_type = Be16(f, "etherType");
  out->vlan_tag = Be16(f, "vlanTag");
}

void Ipv4(Napi::Object f, ibv_flow_ipv4_filter* out) {
  Address(f, "srcIp", reinterpret_cast<uint8_t*>(&out->src_ip), 4);
  Address(f, "dstIp", reinterpret_cast<uint8_t*>(&out->dst_ip), 4);
}

void Ipv4Ext(Napi::Object f, ibv_flow_ipv4_ext_filter* out) {
  Address(f, "srcIp", reinterpret_cast<uint8_t*>(&out->src_ip), 4);
  Address(f, "dstIp", reinterpret_cast<uint8_t*>(&out->dst_ip), 4);
  out->proto = U8(f, "proto");
  out->tos = U8(f, "tos");
  out->ttl = U8(f, "ttl");
  out->flags = U8(f, "flags");
}

void Ipv6(Napi::Object f, ibv_flow_ipv6_filter* out) {
  Address(f, "srcIp", out->src_ip, 16);
  Address(f, "dstIp", out->dst_ip, 16);
  out->flow_label = Be32(f, "flowLabel");
  out->next_hdr = U8(f, "nextHdr");
  out->traffic_class = U8(f, "trafficClass");
  out->hop_limit = U8(f, "hopLimit");
}

void Ports(Napi::Object f, ibv_flow_tcp_udp_filter* out) {
  out->dst_port = Be16(f, "dstPort");
  out->src_port = Be16(f, "srcPort");
}

void Tunnel(Napi::Object f, ibv_flow_tunnel_filter* out) { out->tunnel_id = Be32(f, "tunnelId"); }

void Gre(Napi::Object f, ibv_flow_gre_filter* out) {
  out->c_ks_res0_ver = Be16(f, "cKsRes0Ver");
  out->protocol = Be16(f, "protocol");
  out->key = Be32(f, "key");
}

void Mpls(Napi::Object f, ibv_flow_mpls_filter* out) { out->label = Be32(f, "label"); }

void Esp(Napi::Object f, ibv_flow_esp_filter* out) {
  out->spi = Be32(f, "spi");
  out->seq = Be32(f, "seq");
}

void PackSpec(Napi::Object js, std::vector<uint8_t>* out, std::vector<CountersUse>* counters) {
  Napi::Env env = js.Env();
  Napi::Value type_js = js.Get("type");
  std::string type = type_js.IsString() ? type_js.As<Napi::String>().Utf8Value() : "";
  // Headers inside a tunnel: the same spec with IBV_FLOW_SPEC_INNER.
  int inner = PropBool(js, "inner", false) ? IBV_FLOW_SPEC_INNER : 0;
  auto t = [inner](int base) { return static_cast<ibv_flow_spec_type>(base | inner); };
  if (type == "eth") return Header<ibv_flow_spec_eth>(out, t(IBV_FLOW_SPEC_ETH), js, Eth);
  if (type == "ipv4") return Header<ibv_flow_spec_ipv4>(out, t(IBV_FLOW_SPEC_IPV4), js, Ipv4);
  if (type == "ipv4-ext") return Header<ibv_flow_spec_ipv4_ext>(out, t(IBV_FLOW_SPEC_IPV4_EXT), js, Ipv4Ext);
  if (type == "ipv6") return Header<ibv_flow_spec_ipv6>(out, t(IBV_FLOW_SPEC_IPV6), js, Ipv6);
  if (type == "tcp") return Header<ibv_flow_spec_tcp_udp>(out, t(IBV_FLOW_SPEC_TCP), js, Ports);
  if (type == "udp") return Header<ibv_flow_spec_tcp_udp>(out, t(IBV_FLOW_SPEC_UDP), js, Ports);
  if (type == "vxlan") return Header<ibv_flow_spec_tunnel>(out, t(IBV_FLOW_SPEC_VXLAN_TUNNEL), js, Tunnel);
  if (type == "gre") return Header<ibv_flow_spec_gre>(out, t(IBV_FLOW_SPEC_GRE), js, Gre);
  if (type == "mpls") return Header<ibv_flow_spec_mpls>(out, t(IBV_FLOW_SPEC_MPLS), js, Mpls);
  if (type == "esp") return Header<ibv_flow_spec_esp>(out, t(IBV_FLOW_SPEC_ESP), js, Esp);
  if (inner != 0) ThrowType(env, "only header specs can be inner");
  if (type == "tag") {
    ibv_flow_spec_action_tag spec = {};
    spec.tag_id = PropU32(js, "tagId", 0);
    Append(out, IBV_FLOW_SPEC_ACTION_TAG, &spec);
    return;
  }
  if (type == "drop") {
    Append<ibv_flow_spec_action_drop>(out, IBV_FLOW_SPEC_ACTION_DROP);
    return;
  }
  if (type == "count") {
    Napi::Value named = js.Get("counters");
    size_t at = out->size() + offsetof(ibv_flow_spec_counter_action, counters);
    Append<ibv_flow_spec_counter_action>(out, IBV_FLOW_SPEC_ACTION_COUNT);
    counters->push_back({at, named});
    return;
  }
  ThrowType(env, "spec.type must be eth, ipv4, ipv4-ext, ipv6, tcp, udp, vxlan, gre, mpls, esp, tag, drop or count");
}

}  // namespace

std::vector<uint64_t> PackFlowAttr(Napi::Value attributes, std::vector<CountersUse>* counters) {
  Napi::Env env = attributes.Env();
  Napi::Object js = ToObject(attributes, "attributes");
  ibv_flow_attr attr = {};
  attr.type = static_cast<ibv_flow_attr_type>(PropU32(js, "type", IBV_FLOW_ATTR_NORMAL, IBV_FLOW_ATTR_SNIFFER));
  attr.priority = static_cast<uint16_t>(PropU32(js, "priority", 0, UINT16_MAX));
  attr.port = static_cast<uint8_t>(PropU32(js, "port", 1, UINT8_MAX));
  attr.flags = PropU32(js, "flags", 0);
  Napi::Value specs_js = js.Get("specs");
  Napi::Array specs = specs_js.IsUndefined() ? Napi::Array::New(env) : ToList(specs_js, "specs", UINT8_MAX, "flow rule");
  std::vector<uint8_t> packed(sizeof(ibv_flow_attr));
  for (uint32_t i = 0; i < specs.Length(); i++) PackSpec(ToObject(specs.Get(i), "spec"), &packed, counters);
  if (packed.size() > UINT16_MAX) ThrowRange(env, "the flow rule is too large");
  attr.num_of_specs = static_cast<uint8_t>(specs.Length());
  attr.size = static_cast<uint16_t>(packed.size());
  std::memcpy(packed.data(), &attr, sizeof(attr));
  std::vector<uint64_t> aligned((packed.size() + 7) / 8);
  std::memcpy(aligned.data(), packed.data(), packed.size());
  return aligned;
}

// The counters of a count action are left null here: only their place in the layout is tested.
Napi::Value PackFlow(const Napi::CallbackInfo& info) {
  std::vector<CountersUse> counters;
  std::vector<uint64_t> packed = PackFlowAttr(info[0], &counters);
  auto* attr = reinterpret_cast<const ibv_flow_attr*>(packed.data());
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(packed.data()), attr->size);
}

Napi::Function Flow::Define(Napi::Env env) {
  return DefineClass(env, kName, {CloseMethod(), ClosedGetter()});
}

Flow::Flow(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Flow>(info), Resource(info.Env(), "flow") {
  CheckConstructToken(info, "qp.createFlow()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object Flow::Create(const Napi::CallbackInfo& info, Napi::Object qp_js, Qp* qp) {
  Napi::Env env = info.Env();
  std::vector<CountersUse> uses;
  std::vector<uint64_t> packed = PackFlowAttr(info[0], &uses);
  qp->CheckOpen(env);  // reading the rule may have run JS
  std::vector<FlowCounters*> counters;
  for (const CountersUse& use : uses) {
    FlowCounters* named = UnwrapOpen<FlowCounters>(use.counters, "counters");
    if (named->handle()->context != qp->handle()->context) ThrowType(env, "the counters and the QP must belong to the same context");
    ibv_counters* handle = named->handle();
    // The action holds the pointer itself (ibv_flow_spec_counter_action.counters), not what it points to.
    std::memcpy(reinterpret_cast<uint8_t*>(packed.data()) + use.offset, &handle, sizeof(handle));  // NOLINT(bugprone-sizeof-expression)
    counters.push_back(named);
  }
  ibv_flow* flow = ibv_create_flow(qp->handle(), reinterpret_cast<ibv_flow_attr*>(packed.data()));
  // Providers without flow steering leave errno as their dummy op sets it (EOPNOTSUPP).
  if (flow == nullptr) ThrowVerb(env, "ibv_create_flow", errno != 0 ? errno : EOPNOTSUPP);
  Napi::Object object = AddonData::Get(env).flow_class.New({ConstructToken(env)});
  Flow* self = Unwrap(object);
  self->flow_ = flow;
  self->DependOn(qp_js, qp);
  for (size_t i = 0; i < counters.size(); i++) self->DependOn(uses[i].counters.As<Napi::Object>(), counters[i]);
  return object;
}

int Flow::Destroy(CloseMode) {
  if (flow_ == nullptr) return 0;
  int err = ibv_destroy_flow(flow_);
  if (err == 0) flow_ = nullptr;
  return err;
}

}  // namespace rdma
