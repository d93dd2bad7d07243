#include "verbs/cq.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>

#include "addon/args.h"
#include "verbs/completion_channel.h"
#include "verbs/context.h"
#include "verbs/mw.h"
#include "verbs/qp.h"

namespace rdma {

Napi::Function Cq::Define(Napi::Env env) {
  return DefineClass(env, "CompletionQueue",
                     {InstanceMethod<&Cq::Poll>("poll"), InstanceMethod<&Cq::RequestNotify>("requestNotify"),
                      InstanceMethod<&Cq::NextEvent>("nextEvent"), InstanceMethod<&Cq::CancelWait>("cancelWait"),
                      InstanceMethod<&Cq::Resize>("resize"), InstanceAccessor<&Cq::Cqe>("cqe"),
                      CloseMethod(),
                      ClosedGetter()});
}

Cq::Cq(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Cq>(info), Resource(info.Env(), "completion queue") {
  CheckConstructToken(info, "context.createCq()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object Cq::Create(Napi::Env env, Napi::Object context_js, Context* context, uint32_t cqe,
                        CompletionChannel* channel, Napi::Value channel_js, uint32_t comp_vector) {
  Napi::Object object = AddonData::Get(env).cq_class.New({ConstructToken(env)});
  Cq* self = Unwrap(object);
  ibv_cq* cq = ibv_create_cq(context->handle(), static_cast<int>(cqe), self,
                             channel != nullptr ? channel->handle() : nullptr, static_cast<int>(comp_vector));
  if (cq == nullptr) ThrowVerb(env, "ibv_create_cq", errno);
  self->cq_ = cq;
  self->context_ = context;
  self->DependOn(context_js, context);
  if (channel != nullptr) {
    self->channel_ = channel;
    self->DependOn(channel_js.As<Napi::Object>(), channel);
  }
  return object;
}

int Cq::Destroy(CloseMode mode) {
  if (mode == CloseMode::kFromJs) SettleWaiters(WaitOutcome::kClosed);
  else if (!waiters_.empty()) {  // teardown: nobody is left to hear about it
    channel_->AddWaiters(-static_cast<int>(waiters_.size()));
    waiters_.clear();
  }
  if (cq_ == nullptr) return 0;
  int err = ibv_destroy_cq(cq_);
  if (err == 0) cq_ = nullptr;
  return err;
}

// poll(storage: Uint32Array) → number of completions written, at most storage.length / kWcWords.
Napi::Value Cq::Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  // The hot path of every TypeScript polling loop: one N-API call to read the storage (a detached
  // buffer reads as length 0: nothing is written, the poll returns 0).
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (info.Length() < 1 || napi_get_typedarray_info(env, info[0], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array) {
    ThrowType(env, "storage must be a Uint32Array");
  }
  size_t capacity = data == nullptr ? 0 : length / kWcWords;
  uint32_t* out = static_cast<uint32_t*>(data);
  size_t total = 0;
  ibv_wc wc[32];
  while (total < capacity) {
    int want = static_cast<int>(std::min<size_t>(capacity - total, 32));
    int n = ibv_poll_cq(cq_, want, wc);
    if (n < 0) ThrowVerb(env, "ibv_poll_cq", n == -1 ? EIO : -n);
    for (int i = 0; i < n; i++, total++) {
      auto qp = qps_.find(wc[i].qp_num);
      if (qp != qps_.end()) qp->second->Completed(wc[i], this);
      // A SEND_WITH_INV invalidated one of our windows.
      if (wc[i].status == IBV_WC_SUCCESS && (wc[i].wc_flags & IBV_WC_WITH_INV)) {
        if (Mw* mw = context_->WindowAt(wc[i].invalidated_rkey)) mw->Invalidated();
      }
      uint32_t* w = out + total * kWcWords;
      w[kWcWrIdLo] = static_cast<uint32_t>(wc[i].wr_id);
      w[kWcWrIdHi] = static_cast<uint32_t>(wc[i].wr_id >> 32);
      w[kWcStatus] = wc[i].status;
      w[kWcOpcode] = wc[i].opcode;
      w[kWcVendorErr] = wc[i].vendor_err;
      w[kWcByteLen] = wc[i].byte_len;
      // imm_data is big-endian on the wire; JS sees host order. For IBV_WC_WITH_INV it is an rkey.
      w[kWcImmData] = (wc[i].wc_flags & IBV_WC_WITH_INV) ? wc[i].invalidated_rkey : ntohl(wc[i].imm_data);
      w[kWcQpNum] = wc[i].qp_num;
      w[kWcSrcQp] = wc[i].src_qp;
      w[kWcFlags] = wc[i].wc_flags;
      w[kWcPkeyIndex] = wc[i].pkey_index;
      w[kWcSlid] = wc[i].slid;
      w[kWcSl] = wc[i].sl;
      w[kWcDlidPathBits] = wc[i].dlid_path_bits;
    }
    if (n < want) break;
  }
  return Napi::Number::New(env, static_cast<double>(total));
}

Napi::Value Cq::RequestNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  bool solicited_only = info[0].IsUndefined() ? false : ToBool(info[0], "solicitedOnly");
  int err = ibv_req_notify_cq(cq_, solicited_only ? 1 : 0);
  if (err != 0) ThrowVerb(env, "ibv_req_notify_cq", err);
  return env.Undefined();
}

// nextEvent() → Promise<boolean>: true on the next completion event, false if cancelWait() ran first,
// rejected if the CQ is closed. The caller arms with requestNotify() and polls before waiting.
Napi::Value Cq::NextEvent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (channel_ == nullptr) ThrowType(env, "this CQ has no completion channel; create it with one to wait");
  if (channel_->closed()) ThrowType(env, "the CQ's completion channel is closed");
  auto deferred = Napi::Promise::Deferred::New(env);
  if (waiters_.empty()) Ref();  // a pending wait holds the CQ
  waiters_.push_back(deferred);
  channel_->AddWaiters(1);
  return deferred.Promise();
}

Napi::Value Cq::CancelWait(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  SettleWaiters(WaitOutcome::kCancelled);
  return info.Env().Undefined();
}

void Cq::OnEvent() { SettleWaiters(WaitOutcome::kEvent); }

void Cq::SettleWaiters(WaitOutcome outcome) {
  if (waiters_.empty()) return;
  std::vector<Napi::Promise::Deferred> waiters;
  waiters.swap(waiters_);
  channel_->AddWaiters(-static_cast<int>(waiters.size()));
  for (auto& deferred : waiters) {
    if (outcome == WaitOutcome::kClosed) deferred.Reject(VerbError(env_, "wait for completion event", ECANCELED).Value());
    else deferred.Resolve(Napi::Boolean::New(env_, outcome == WaitOutcome::kEvent));
  }
  Unref();
}

Napi::Value Cq::Resize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  uint32_t cqe = ToU32(info[0], "cqe", INT32_MAX);
  int err = ibv_resize_cq(cq_, static_cast<int>(cqe));
  if (err != 0) ThrowVerb(env, "ibv_resize_cq", err);
  return Napi::Number::New(env, cq_->cqe);
}

Napi::Value Cq::Cqe(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), cq_->cqe);
}

}  // namespace rdma
