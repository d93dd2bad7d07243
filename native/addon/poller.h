// Watches a non-blocking file descriptor (completion channel, async event fd) with uv_poll on the
// environment's own loop, never uv_default_loop(), so it works in worker threads. Callers try the
// non-blocking call first and start the poller only when nothing is ready.
#pragma once
#include <napi.h>
#include <uv.h>

#include <functional>

namespace rdma {

class FdPoller {
 public:
  FdPoller(Napi::Env env, int fd, std::function<void()> on_readable);
  ~FdPoller();
  FdPoller(const FdPoller&) = delete;
  FdPoller& operator=(const FdPoller&) = delete;

  // An active watch keeps the event loop (and so the process) running, as a pending socket read does.
  void Start();
  void Stop();
  bool active() const { return active_; }
  // An unreferenced watch does not keep the event loop alive (as a socket's unref()).
  void Unref();

 private:
  uv_poll_t* handle_ = nullptr;  // freed by uv_close's callback, which may run after this object is gone
  std::function<void()> on_readable_;
  bool active_ = false;
};

// Sets O_NONBLOCK; returns 0 or errno.
int SetNonBlocking(int fd);

}  // namespace rdma
