// librdmacm: an event channel (its fd watched with uv_poll while it has IDs, events read, copied into JS
// objects and acked at once) and the communication IDs on it (address and route resolution, listen,
// connect, accept, reject, disconnect, multicast, a QP per ID).
#pragma once
#include <napi.h>
#include <rdma/rdma_cma.h>

#include <memory>

#include "addon/poller.h"
#include "addon/resource.h"

namespace rdma {

class CmChannel : public Napi::ObjectWrap<CmChannel>, public Resource, public Lifecycle<CmChannel> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'000aULL, 0x636d'6368'616e'6e65ULL};
  static constexpr const char* kName = "CmEventChannel";
  static Napi::Function Define(Napi::Env env);
  // binding.createCmChannel(listener(target: CmId, event))
  static Napi::Value Create(const Napi::CallbackInfo& info);

  explicit CmChannel(const Napi::CallbackInfo& info);
  ~CmChannel() override { Close(CloseMode::kQuiet); }
  rdma_event_channel* handle() const { return channel_; }
  // IDs report themselves; the fd is watched (keeping the process alive) while any is open.
  void AddIds(int delta);

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value CreateId(const Napi::CallbackInfo& info);
  void DrainEvents();

  rdma_event_channel* channel_ = nullptr;
  std::unique_ptr<FdPoller> poller_;
  Napi::FunctionReference listener_;
  int ids_ = 0;
};

// binding.syncCmDevices(): librdmacm lists the devices again, closing its own context on any that is gone
// (at once, or when its last ID goes), unless no device is left at all. Until then the kernel's removal
// of such a device waits.
Napi::Value SyncCmDevices(const Napi::CallbackInfo& info);

class CmId : public Napi::ObjectWrap<CmId>, public Resource, public Lifecycle<CmId> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'000bULL, 0x636d'6964'0000'0000ULL};
  static constexpr const char* kName = "CmId";
  static Napi::Function Define(Napi::Env env);
  // An ID made by rdma_create_id (portSpace) or handed over by a CONNECT_REQUEST (id != nullptr).
  static Napi::Object Create(Napi::Env env, Napi::Object channel_js, CmChannel* channel, rdma_port_space ps,
                             rdma_cm_id* id = nullptr);

  explicit CmId(const Napi::CallbackInfo& info);
  ~CmId() override { Close(CloseMode::kQuiet); }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value BindAddr(const Napi::CallbackInfo& info);
  Napi::Value ResolveAddr(const Napi::CallbackInfo& info);
  Napi::Value ResolveRoute(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Accept(const Napi::CallbackInfo& info);
  Napi::Value Reject(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);
  Napi::Value CreateQp(const Napi::CallbackInfo& info);
  Napi::Value CreateXrcTargetQp(const Napi::CallbackInfo& info);
  Napi::Value JoinMulticast(const Napi::CallbackInfo& info);
  Napi::Value LeaveMulticast(const Napi::CallbackInfo& info);
  Napi::Value SetReuseAddr(const Napi::CallbackInfo& info);
  Napi::Value Context(const Napi::CallbackInfo& info);
  Napi::Value PortNum(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value RemoteAddress(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);

  rdma_cm_id* id_ = nullptr;
  CmChannel* channel_ = nullptr;
  bool referenced_ = true;  // counts toward keeping the channel watched (and so the process alive)
};

}  // namespace rdma
