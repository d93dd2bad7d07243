// An open RDMA device (ibv_context): device and port queries, the GID table, asynchronous events, and
// the factory for the objects made directly from a context (PDs, XRC domains, completion channels, CQs).
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <memory>
#include <unordered_map>

#include "addon/poller.h"
#include "addon/resource.h"

namespace rdma {

class Context;
class Mw;
using BorrowedContexts = std::unordered_map<ibv_context*, Context*>;

class Context : public Napi::ObjectWrap<Context>, public Resource, public Lifecycle<Context> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0001ULL, 0x636f'6e74'6578'7400ULL};
  static constexpr const char* kName = "Context";
  static Napi::Function Define(Napi::Env env);
  static Napi::Value Open(const Napi::CallbackInfo& info);  // binding.openContext(name)
  // The one Context for a device context librdmacm opened and keeps open: closing it closes what was
  // made from it, not the device.
  static Napi::Object Borrow(Napi::Env env, ibv_context* ctx);

  explicit Context(const Napi::CallbackInfo& info);
  ~Context() override { Close(CloseMode::kQuiet); }
  ibv_context* handle() const { return ctx_; }
  // This context's memory windows by key index (rkey >> 8; the low byte is the consumer's key), so that
  // an invalidation naming one can be checked.
  void AddWindow(Mw* mw);
  void RemoveWindow(uint32_t rkey, Mw* mw);
  Mw* WindowAt(uint32_t rkey) const;

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value DeviceName(const Napi::CallbackInfo& info);
  Napi::Value QueryDevice(const Napi::CallbackInfo& info);
  Napi::Value QueryPort(const Napi::CallbackInfo& info);
  Napi::Value QueryGidTable(const Napi::CallbackInfo& info);
  Napi::Value AllocPd(const Napi::CallbackInfo& info);
  Napi::Value OpenXrcd(const Napi::CallbackInfo& info);
  Napi::Value CreateFlowCounters(const Napi::CallbackInfo& info);
  Napi::Value CreateCompletionChannel(const Napi::CallbackInfo& info);
  Napi::Value CreateCq(const Napi::CallbackInfo& info);
  Napi::Value WatchAsyncEvents(const Napi::CallbackInfo& info);
  void DrainAsyncEvents();

  ibv_context* ctx_ = nullptr;
  std::shared_ptr<BorrowedContexts> borrowed_;  // set when ctx_ belongs to librdmacm
  std::unique_ptr<FdPoller> async_poller_;
  std::unordered_map<uint32_t, Mw*> windows_;
  Napi::FunctionReference async_listener_;
};

}  // namespace rdma
