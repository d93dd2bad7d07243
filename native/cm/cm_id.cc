#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "addon/args.h"
#include "cm/cm.h"
#include "verbs/context.h"
#include "verbs/qp.h"

namespace rdma {

Napi::Function CmId::Define(Napi::Env env) {
  return DefineClass(env, "CmId",
                     {InstanceMethod<&CmId::BindAddr>("bindAddr"), InstanceMethod<&CmId::ResolveAddr>("resolveAddr"),
                      InstanceMethod<&CmId::ResolveRoute>("resolveRoute"), InstanceMethod<&CmId::Listen>("listen"),
                      InstanceMethod<&CmId::Connect>("connect"), InstanceMethod<&CmId::Accept>("accept"),
                      InstanceMethod<&CmId::Reject>("reject"), InstanceMethod<&CmId::Disconnect>("disconnect"),
                      InstanceMethod<&CmId::CreateQp>("createQp"), InstanceMethod<&CmId::CreateXrcTargetQp>("createXrcTargetQp"),
                      InstanceMethod<&CmId::JoinMulticast>("joinMulticast"),
                      InstanceMethod<&CmId::LeaveMulticast>("leaveMulticast"),
                      InstanceMethod<&CmId::SetReuseAddr>("setReuseAddr"), InstanceAccessor<&CmId::Context>("context"),
                      InstanceAccessor<&CmId::PortNum>("portNum"), InstanceAccessor<&CmId::LocalAddress>("localAddress"),
                      InstanceAccessor<&CmId::RemoteAddress>("remoteAddress"), InstanceMethod<&CmId::SetRef>("setRef"),
                      CloseMethod(), ClosedGetter()});
}

CmId::CmId(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CmId>(info), Resource(info.Env(), "CM ID") {
  CheckConstructToken(info, "cmChannel.createId()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object CmId::Create(Napi::Env env, Napi::Object channel_js, CmChannel* channel, rdma_port_space ps, rdma_cm_id* id) {
  Napi::Object object = AddonData::Get(env).cm_id_class.New({ConstructToken(env)});
  CmId* self = Unwrap(object);
  if (id == nullptr) {
    if (rdma_create_id(channel->handle(), &id, self, ps) != 0) ThrowVerb(env, "rdma_create_id", errno);
  } else {
    id->context = self;
  }
  self->id_ = id;
  self->channel_ = channel;
  self->DependOn(channel_js, channel);
  channel->AddIds(1);
  return object;
}

int CmId::Destroy(CloseMode) {
  if (id_ == nullptr) return 0;
  // Its QP (a dependent) is already gone; pending events were acked as they arrived.
  if (rdma_destroy_id(id_) != 0) return errno;
  id_ = nullptr;
  if (referenced_) channel_->AddIds(-1);
  return 0;
}

// setRef(referenced): like a socket's ref()/unref(), whether this ID keeps the event loop running.
Napi::Value CmId::SetRef(const Napi::CallbackInfo& info) {
  bool referenced = ToBool(info[0], "referenced");
  CheckOpen(info.Env());
  if (referenced != referenced_) channel_->AddIds(referenced ? 1 : -1);
  referenced_ = referenced;
  return info.Env().Undefined();
}

// An IPv4 or IPv6 literal and a port; names are resolved by lib/ before they get here.
struct SocketAddress {
  sockaddr_storage storage = {};
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

static SocketAddress ToSocketAddress(Napi::Value address, Napi::Value port) {
  Napi::Env env = address.Env();
  if (!address.IsString()) ThrowType(env, "address must be an IP address string");
  std::string text = address.As<Napi::String>();
  uint16_t port_number = static_cast<uint16_t>(port.IsUndefined() ? 0 : ToU32(port, "port", UINT16_MAX));
  SocketAddress result;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.storage);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port_number);
  } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port_number);
  } else {
    ThrowType(env, "not an IP address: " + text);
  }
  return result;
}

static Napi::Value FromSocketAddress(Napi::Env env, const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "";
  uint16_t port = 0;
  if (address->sa_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    port = ntohs(v4->sin_port);
  } else if (address->sa_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    port = ntohs(v6->sin6_port);
  } else {
    return env.Null();
  }
  Napi::Object js = Napi::Object::New(env);
  js.Set("address", text);
  js.Set("port", port);
  return js;
}

// Private data bytes, copied into `storage`, which outlives the call that sends them.
static void CopyPrivateData(Napi::Value data, std::vector<uint8_t>* storage) {
  if (data.IsUndefined()) return;
  if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(data.Env(), "privateData must be a Uint8Array or Buffer");
  }
  Napi::Uint8Array bytes = data.As<Napi::Uint8Array>();
  if (bytes.ByteLength() > UINT8_MAX) ThrowRange(data.Env(), "privateData is at most 255 bytes (less on most transports)");
  storage->assign(bytes.Data(), bytes.Data() + bytes.ByteLength());
}

// Connection parameters: {privateData, responderResources, initiatorDepth, flowControl, retryCount,
// rnrRetryCount, srq, qpNum}.
static rdma_conn_param ToConnParam(Napi::Value value, std::vector<uint8_t>* storage) {
  rdma_conn_param param = {};
  if (value.IsUndefined()) return param;
  Napi::Object js = ToObject(value, "connection parameters");
  CopyPrivateData(js.Get("privateData"), storage);
  if (!storage->empty()) {
    param.private_data = storage->data();
    param.private_data_len = static_cast<uint8_t>(storage->size());
  }
  param.responder_resources = static_cast<uint8_t>(PropU32(js, "responderResources", 1, UINT8_MAX));
  param.initiator_depth = static_cast<uint8_t>(PropU32(js, "initiatorDepth", 1, UINT8_MAX));
  param.flow_control = static_cast<uint8_t>(PropU32(js, "flowControl", 1, 1));
  param.retry_count = static_cast<uint8_t>(PropU32(js, "retryCount", 7, 7));
  param.rnr_retry_count = static_cast<uint8_t>(PropU32(js, "rnrRetryCount", 7, 7));
  param.srq = static_cast<uint8_t>(PropU32(js, "srq", 0, 1));
  param.qp_num = PropU32(js, "qpNum", 0, 0xffffff);
  return param;
}

static Napi::Value Done(Napi::Env env, int result, const char* verb) {
  if (result != 0) ThrowVerb(env, verb, errno);
  return env.Undefined();
}

// Verbs that act on the device the ID is bound to: librdmacm dereferences it unchecked, so an ID with
// no address resolved or bound yet is refused here, as the verb itself would if it checked.
static void NeedDevice(Napi::Env env, rdma_cm_id* id, const char* verb) {
  if (id->verbs == nullptr) ThrowVerb(env, verb, EINVAL);
}

Napi::Value CmId::BindAddr(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  SocketAddress address = ToSocketAddress(info[0], info[1]);
  return Done(info.Env(), rdma_bind_addr(id_, address.get()), "rdma_bind_addr");
}

// resolveAddr(source | null, destination, port, timeoutMs): ADDR_RESOLVED or ADDR_ERROR follows.
Napi::Value CmId::ResolveAddr(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  bool has_source = !info[0].IsNull() && !info[0].IsUndefined();
  SocketAddress source = has_source ? ToSocketAddress(info[0], Napi::Value()) : SocketAddress();
  SocketAddress destination = ToSocketAddress(info[1], info[2]);
  int timeout = ToI32(info[3], "timeoutMs", 1, INT32_MAX);
  return Done(info.Env(), rdma_resolve_addr(id_, has_source ? source.get() : nullptr, destination.get(), timeout), "rdma_resolve_addr");
}

Napi::Value CmId::ResolveRoute(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  NeedDevice(info.Env(), id_, "rdma_resolve_route");
  return Done(info.Env(), rdma_resolve_route(id_, ToI32(info[0], "timeoutMs", 1, INT32_MAX)), "rdma_resolve_route");
}

Napi::Value CmId::Listen(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Done(info.Env(), rdma_listen(id_, ToI32(info[0], "backlog", 0, INT32_MAX)), "rdma_listen");
}

Napi::Value CmId::Connect(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  NeedDevice(info.Env(), id_, "rdma_connect");
  std::vector<uint8_t> data;
  rdma_conn_param param = ToConnParam(info[0], &data);
  return Done(info.Env(), rdma_connect(id_, &param), "rdma_connect");
}

Napi::Value CmId::Accept(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  NeedDevice(info.Env(), id_, "rdma_accept");
  std::vector<uint8_t> data;
  rdma_conn_param param = ToConnParam(info[0], &data);
  return Done(info.Env(), rdma_accept(id_, &param), "rdma_accept");
}

// reject(privateData?): the peer's REJECTED event carries it (and the consumer-reject reason).
Napi::Value CmId::Reject(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  NeedDevice(info.Env(), id_, "rdma_reject");
  std::vector<uint8_t> data;
  CopyPrivateData(info[0], &data);
  return Done(info.Env(), rdma_reject(id_, data.data(), static_cast<uint8_t>(data.size())), "rdma_reject");
}

Napi::Value CmId::Disconnect(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  NeedDevice(info.Env(), id_, "rdma_disconnect");
  return Done(info.Env(), rdma_disconnect(id_), "rdma_disconnect");
}

// createQp(pd, sendCq, recvCq, attributes)
Napi::Value CmId::CreateQp(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Qp::CreateOnCmId(info, Value(), this, id_);
}

Napi::Value CmId::CreateXrcTargetQp(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Qp::CreateXrcTargetOnCmId(info, Value(), this, id_);
}

Napi::Value CmId::JoinMulticast(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  NeedDevice(info.Env(), id_, "rdma_join_multicast");
  SocketAddress address = ToSocketAddress(info[0], Napi::Value());
  return Done(info.Env(), rdma_join_multicast(id_, address.get(), nullptr), "rdma_join_multicast");
}

Napi::Value CmId::LeaveMulticast(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  NeedDevice(info.Env(), id_, "rdma_leave_multicast");
  SocketAddress address = ToSocketAddress(info[0], Napi::Value());
  return Done(info.Env(), rdma_leave_multicast(id_, address.get()), "rdma_leave_multicast");
}

Napi::Value CmId::SetReuseAddr(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  int reuse = ToBool(info[0], "reuse") ? 1 : 0;
  return Done(info.Env(), rdma_set_option(id_, RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR, &reuse, sizeof reuse), "rdma_set_option");
}

// The device the ID is bound to (after address resolution or bind), as a Context that borrows
// librdmacm's ibv_context; null before.
Napi::Value CmId::Context(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  if (id_->verbs == nullptr) return info.Env().Null();
  return Context::Borrow(info.Env(), id_->verbs);
}

Napi::Value CmId::PortNum(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), id_->port_num);
}

Napi::Value CmId::LocalAddress(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return FromSocketAddress(info.Env(), rdma_get_local_addr(id_));
}

Napi::Value CmId::RemoteAddress(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return FromSocketAddress(info.Env(), rdma_get_peer_addr(id_));
}

}  // namespace rdma
