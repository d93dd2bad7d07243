// A completion channel: the fd on which CQ events arrive. It is non-blocking and watched with uv_poll
// only while some CQ of it has a pending wait; every event read is acknowledged at once.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <memory>

#include "addon/poller.h"
#include "addon/resource.h"

namespace rdma {

class Context;

class CompletionChannel : public Napi::ObjectWrap<CompletionChannel>, public Resource, public Lifecycle<CompletionChannel> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0004ULL, 0x6368'616e'6e65'6c00ULL};
  static constexpr const char* kName = "CompletionChannel";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, Napi::Object context_js, Context* context);

  explicit CompletionChannel(const Napi::CallbackInfo& info);
  ~CompletionChannel() override { Close(CloseMode::kQuiet); }
  ibv_comp_channel* handle() const { return channel_; }
  Context* context() const { return context_; }
  // CQs report their number of pending waits; the fd is watched while the total is non-zero.
  void AddWaiters(int delta);

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Fd(const Napi::CallbackInfo& info);
  void DrainEvents();

  ibv_comp_channel* channel_ = nullptr;
  Context* context_ = nullptr;
  std::unique_ptr<FdPoller> poller_;
  int waiters_ = 0;
};

}  // namespace rdma
