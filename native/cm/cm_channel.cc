#include <cerrno>
#include <cstring>

#include "addon/args.h"
#include "cm/cm.h"
#include "verbs/qp_attr.h"

namespace rdma {

Napi::Function CmChannel::Define(Napi::Env env) {
  return DefineClass(env, "CmEventChannel", {InstanceMethod<&CmChannel::CreateId>("createId"), CloseMethod(), ClosedGetter()});
}

CmChannel::CmChannel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CmChannel>(info), Resource(info.Env(), "CM event channel") {
  CheckConstructToken(info, "createCmChannel()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Value CmChannel::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) ThrowType(env, "listener must be a function");
  rdma_event_channel* channel = rdma_create_event_channel();
  if (channel == nullptr) ThrowVerb(env, "rdma_create_event_channel", errno);
  int err = SetNonBlocking(channel->fd);
  if (err != 0) {
    rdma_destroy_event_channel(channel);
    ThrowVerb(env, "fcntl(O_NONBLOCK)", err);
  }
  Napi::Object object = AddonData::Get(env).cm_channel_class.New({ConstructToken(env)});
  CmChannel* self = Unwrap(object);
  self->channel_ = channel;
  self->listener_ = Napi::Persistent(info[0].As<Napi::Function>());
  self->poller_ = std::make_unique<FdPoller>(env, channel->fd, [self] { self->DrainEvents(); });
  return object;
}

int CmChannel::Destroy(CloseMode) {
  poller_.reset();
  listener_.Reset();
  if (channel_ == nullptr) return 0;
  rdma_destroy_event_channel(channel_);
  channel_ = nullptr;
  return 0;
}

void CmChannel::AddIds(int delta) {
  ids_ += delta;
  if (!poller_) return;
  if (ids_ > 0) poller_->Start();
  else poller_->Stop();
}

// createId(portSpace: RDMA_PS_TCP | RDMA_PS_UDP | RDMA_PS_IB)
Napi::Value CmChannel::CreateId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  uint32_t ps = ToU32(info[0], "portSpace");
  if (ps != RDMA_PS_TCP && ps != RDMA_PS_UDP && ps != RDMA_PS_IB && ps != RDMA_PS_IPOIB) ThrowRange(env, "unknown port space");
  return CmId::Create(env, Value(), this, static_cast<rdma_port_space>(ps));
}

static Napi::Object ConnParamToJs(Napi::Env env, const rdma_conn_param& p) {
  Napi::Object js = Napi::Object::New(env);
  js.Set("privateData", Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(p.private_data),
                                                     p.private_data != nullptr ? p.private_data_len : 0));
  js.Set("responderResources", p.responder_resources);
  js.Set("initiatorDepth", p.initiator_depth);
  js.Set("flowControl", p.flow_control);
  js.Set("retryCount", p.retry_count);
  js.Set("rnrRetryCount", p.rnr_retry_count);
  js.Set("srq", p.srq);
  js.Set("qpNum", p.qp_num);
  return js;
}

static Napi::Object UdParamToJs(Napi::Env env, const rdma_ud_param& p) {
  Napi::Object js = Napi::Object::New(env);
  js.Set("privateData", Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(p.private_data),
                                                     p.private_data != nullptr ? p.private_data_len : 0));
  js.Set("ahAttr", AhAttrToJs(env, p.ah_attr));
  js.Set("qpNum", p.qp_num);
  js.Set("qkey", p.qkey);
  return js;
}

// Events are copied into JS and acked before the listener runs: rdma_destroy_id waits for its events to
// be acked, and the listener may well destroy the ID.
void CmChannel::DrainEvents() {
  CallFromLoop(env_, [this] {
    rdma_cm_event* event = nullptr;
    while (channel_ != nullptr && rdma_get_cm_event(channel_, &event) == 0) {
      Napi::Object js = Napi::Object::New(env_);
      js.Set("type", static_cast<int>(event->event));
      js.Set("name", rdma_event_str(event->event));
      js.Set("status", event->status);
      bool ud = event->id->ps == RDMA_PS_UDP || event->id->ps == RDMA_PS_IPOIB;
      js.Set("param", ud ? UdParamToJs(env_, event->param.ud) : ConnParamToJs(env_, event->param.conn));
      Napi::Value target;
      if (event->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
        // A new ID for the incoming connection, on this channel; the listener's ID gets the event.
        Napi::Object incoming = CmId::Create(env_, Value(), this, event->id->ps, event->id);
        js.Set("id", incoming);
        target = static_cast<CmId*>(event->listen_id->context)->Value();
      } else {
        target = static_cast<CmId*>(event->id->context)->Value();
      }
      rdma_ack_cm_event(event);
      if (!listener_.IsEmpty() && !target.IsEmpty()) listener_.Call({target, js});
    }
  });
}

Napi::Value SyncCmDevices(const Napi::CallbackInfo& info) {
  // NULL when no device is left: librdmacm then keeps its context on the removed one (its sync gives up
  // on an empty list), which nothing outside it can close.
  if (ibv_context** devices = rdma_get_devices(nullptr)) rdma_free_devices(devices);
  return info.Env().Undefined();
}

}  // namespace rdma
