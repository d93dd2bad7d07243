#include "addon/poller.h"

#include <fcntl.h>

#include <cerrno>

#include "addon/errors.h"

namespace rdma {

int SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return errno;
  return 0;
}

FdPoller::FdPoller(Napi::Env env, int fd, std::function<void()> on_readable)
    : on_readable_(std::move(on_readable)) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) ThrowType(env, "no event loop in this environment");
  handle_ = new uv_poll_t;
  int err = uv_poll_init(loop, handle_, fd);
  if (err != 0) {
    delete handle_;
    handle_ = nullptr;
    ThrowVerb(env, "uv_poll_init", -err);
  }
  handle_->data = this;
}

FdPoller::~FdPoller() {
  if (handle_ == nullptr) return;
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
}

void FdPoller::Start() {
  if (active_) return;
  active_ = true;
  uv_poll_start(handle_, UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* self = static_cast<FdPoller*>(h->data);
    if (self != nullptr) self->on_readable_();
  });
}

void FdPoller::Unref() { uv_unref(reinterpret_cast<uv_handle_t*>(handle_)); }

void FdPoller::Stop() {
  if (!active_) return;
  active_ = false;
  uv_poll_stop(handle_);
}

}  // namespace rdma
