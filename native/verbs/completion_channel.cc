#include "verbs/completion_channel.h"

#include <cerrno>

#include "verbs/context.h"
#include "verbs/cq.h"

namespace rdma {

Napi::Function CompletionChannel::Define(Napi::Env env) {
  return DefineClass(env, "CompletionChannel",
                     {InstanceAccessor<&CompletionChannel::Fd>("fd"),
                      CloseMethod(),
                      ClosedGetter()});
}

CompletionChannel::CompletionChannel(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CompletionChannel>(info), Resource(info.Env(), "completion channel") {
  CheckConstructToken(info, "context.createCompletionChannel()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object CompletionChannel::Create(Napi::Env env, Napi::Object context_js, Context* context) {
  ibv_comp_channel* channel = ibv_create_comp_channel(context->handle());
  if (channel == nullptr) ThrowVerb(env, "ibv_create_comp_channel", errno);
  int err = SetNonBlocking(channel->fd);
  if (err != 0) {
    ibv_destroy_comp_channel(channel);
    ThrowVerb(env, "fcntl(O_NONBLOCK)", err);
  }
  Napi::Object object = AddonData::Get(env).completion_channel_class.New({ConstructToken(env)});
  CompletionChannel* self = Unwrap(object);
  self->channel_ = channel;
  self->context_ = context;
  self->DependOn(context_js, context);
  self->poller_ = std::make_unique<FdPoller>(env, channel->fd, [self] { self->DrainEvents(); });
  return object;
}

int CompletionChannel::Destroy(CloseMode) {
  poller_.reset();
  if (channel_ == nullptr) return 0;
  int err = ibv_destroy_comp_channel(channel_);
  if (err == 0) channel_ = nullptr;
  return err;
}

void CompletionChannel::AddWaiters(int delta) {
  waiters_ += delta;
  if (!poller_) return;
  if (waiters_ > 0) poller_->Start();
  else poller_->Stop();
}

void CompletionChannel::DrainEvents() {
  CallFromLoop(env_, [this] {
    ibv_cq* cq = nullptr;
    void* cq_context = nullptr;
    while (channel_ != nullptr && ibv_get_cq_event(channel_, &cq, &cq_context) == 0) {
      ibv_ack_cq_events(cq, 1);
      static_cast<Cq*>(cq_context)->OnEvent();
    }
  });
}

Napi::Value CompletionChannel::Fd(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), channel_->fd);
}

}  // namespace rdma
