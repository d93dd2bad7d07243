#include "verbs/cq.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "addon/args.h"
#include "verbs/completion_channel.h"
#include "verbs/context.h"
#include "verbs/mw.h"
#include "verbs/prepared.h"
#include "verbs/qp.h"
#include "verbs/srq.h"

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

uint32_t* CompletionStorage(const Napi::CallbackInfo& info, size_t index, size_t* capacity) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (info.Length() <= index ||
      napi_get_typedarray_info(info.Env(), info[index], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array) {
    ThrowType(info.Env(), "storage must be a Uint32Array");
  }
  // A detached buffer reads as length 0: nothing is written, the poll returns 0.
  *capacity = data == nullptr ? 0 : length / kWcWords;
  return static_cast<uint32_t*>(data);
}

uint64_t SpinNs(Napi::Value value) {
  return value.IsUndefined() ? 0 : uint64_t{ToU32(value, "spinUs", 10'000'000)} * 1000;
}

constexpr uint32_t kSpinsPerClock = 64;

static uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

// poll(storage: Uint32Array, spinUs?, arm?) → number of completions written, at most storage.length /
// kWcWords. The hot path of every TypeScript polling loop: one N-API call. With `arm` (true: solicited
// completions only, false: any), a poll that finds nothing arms the CQ and polls once more, so a waiter
// makes one call before it sleeps (a completion between the two polls raises the event).
Napi::Value Cq::Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t capacity;
  uint32_t* out = CompletionStorage(info, 0, &capacity);
  uint64_t spin_ns = info.Length() < 2 ? 0 : SpinNs(info[1]);
  bool arm = info.Length() >= 3 && !info[2].IsUndefined();
  bool solicited_only = arm && ToBool(info[2], "arm");
  CheckOpen(env);
  size_t count = PollInto(env, out, capacity, spin_ns);
  if (count == 0 && arm) {
    int err = ibv_req_notify_cq(cq_, solicited_only ? 1 : 0);
    if (err != 0) ThrowVerb(env, "ibv_req_notify_cq", err);
    count = PollInto(env, out, capacity, 0);
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

size_t Cq::PollInto(Napi::Env env, uint32_t* out, size_t capacity, uint64_t spin_ns) {
  if (!consumed_rings_.empty()) {
    std::vector<PreparedWorkRequests*> rings;
    rings.swap(consumed_rings_);
    for (size_t i = 0; i < rings.size(); i++) {
      try {
        rings[i]->Repost(env);
      } catch (...) {  // the rings after it still repost at the next poll
        consumed_rings_.insert(consumed_rings_.end(), rings.begin() + static_cast<ptrdiff_t>(i) + 1, rings.end());
        throw;
      }
    }
  }
  size_t total = 0;
  uint64_t deadline = 0;
  ibv_wc wc[32];
  for (uint32_t spins = 0;; spins++) {
    while (total < capacity) {
      int want = static_cast<int>(std::min<size_t>(capacity - total, 32));
      int n = ibv_poll_cq(cq_, want, wc);
      if (n < 0) ThrowVerb(env, "ibv_poll_cq", n == -1 ? EIO : -n);
      for (int i = 0; i < n; i++, total++) Deliver(wc[i], out + total * kWcWords);
      if (n < want) break;
    }
    if (total > 0 || spin_ns == 0 || capacity == 0) return total;
    // The clock is read every kSpinsPerClock empty polls: under emulation reading it costs more than a
    // poll, and it is only the bound.
    if (spins % kSpinsPerClock != 0) continue;
    uint64_t now = NowNs();
    if (deadline == 0) deadline = now + spin_ns;
    else if (now >= deadline) return 0;
  }
}

void Cq::Deliver(const ibv_wc& wc, uint32_t* w) {
  auto qp = qps_.find(wc.qp_num);
  if (qp != qps_.end()) qp->second->Completed(wc, this);
  else if (xrc_srqs_.size() == 1 && (wc.status != IBV_WC_SUCCESS || (wc.opcode & IBV_WC_RECV))) xrc_srqs_.front()->receives().ReceiveCompleted();
  // A SEND_WITH_INV invalidated one of our windows.
  if (wc.status == IBV_WC_SUCCESS && (wc.wc_flags & IBV_WC_WITH_INV)) {
    if (Mw* mw = context_->WindowAt(wc.invalidated_rkey)) mw->Invalidated();
  }
  w[kWcWrIdLo] = static_cast<uint32_t>(wc.wr_id);
  w[kWcWrIdHi] = static_cast<uint32_t>(wc.wr_id >> 32);
  w[kWcStatus] = wc.status;
  w[kWcOpcode] = wc.opcode;
  w[kWcVendorErr] = wc.vendor_err;
  w[kWcByteLen] = wc.byte_len;
  // imm_data is big-endian on the wire; JS sees host order. For IBV_WC_WITH_INV it is an rkey.
  w[kWcImmData] = (wc.wc_flags & IBV_WC_WITH_INV) ? wc.invalidated_rkey : ntohl(wc.imm_data);
  w[kWcQpNum] = wc.qp_num;
  w[kWcSrcQp] = wc.src_qp;
  w[kWcFlags] = wc.wc_flags;
  w[kWcPkeyIndex] = wc.pkey_index;
  w[kWcSlid] = wc.slid;
  w[kWcSl] = wc.sl;
  w[kWcDlidPathBits] = wc.dlid_path_bits;
}

void Cq::RingConsumed(PreparedWorkRequests* ring) {
  if (std::find(consumed_rings_.begin(), consumed_rings_.end(), ring) == consumed_rings_.end()) consumed_rings_.push_back(ring);
}

void Cq::RingClosed(PreparedWorkRequests* ring) {
  consumed_rings_.erase(std::remove(consumed_rings_.begin(), consumed_rings_.end(), ring), consumed_rings_.end());
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
