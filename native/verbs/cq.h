// A completion queue. poll() writes completions into caller-owned storage (kWcWords 32-bit words per
// completion, layout in completion_layout.h) so the hot path allocates nothing; given a spin time it
// busy-polls here, in C, until something completes or the time is up, so a latency-bound loop makes one
// call per completion. nextEvent() resolves on the next completion event of the CQ's channel; a pending
// wait keeps the CQ alive. Receive rings of the QPs completing here repost what the previous poll
// returned at the start of the next one (the caller has consumed it by then).
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "addon/resource.h"
#include "verbs/completion_layout.h"

namespace rdma {

class Context;
class CompletionChannel;
class PreparedWorkRequests;
class Qp;
class Srq;

class Cq : public Napi::ObjectWrap<Cq>, public Resource, public Lifecycle<Cq> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0005ULL, 0x636f'6d70'7175'6575ULL};
  static constexpr const char* kName = "CompletionQueue";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, Napi::Object context_js, Context* context, uint32_t cqe,
                             CompletionChannel* channel, Napi::Value channel_js, uint32_t comp_vector);

  explicit Cq(const Napi::CallbackInfo& info);
  ~Cq() override { Close(CloseMode::kQuiet); }
  ibv_cq* handle() const { return cq_; }
  Context* context() const { return context_; }
  void OnEvent();  // from the channel, on the loop thread inside a callback scope
  // The QPs completing here, by number: each completion polled is passed to its QP.
  void Attach(uint32_t qp_num, Qp* qp) { qps_[qp_num] = qp; }
  void Detach(uint32_t qp_num) { qps_.erase(qp_num); }
  // XRC SRQs receiving here: their completions name target QPs, not them. With one, each receive
  // completion not of a known QP is its; with several, which one cannot be told, so they keep what their
  // receives use until they close (held longer, never released early).
  void AttachXrcSrq(Srq* srq) { xrc_srqs_.push_back(srq); }
  void DetachXrcSrq(Srq* srq) { xrc_srqs_.erase(std::remove(xrc_srqs_.begin(), xrc_srqs_.end(), srq), xrc_srqs_.end()); }
  // Polls into `out` (room for `capacity` completions), spinning up to `spin_ns` for the first one;
  // returns the count. Throws on a provider error.
  size_t PollInto(Napi::Env env, uint32_t* out, size_t capacity, uint64_t spin_ns);
  // A receive ring has consumed receives to repost at the next poll / is closing.
  void RingConsumed(PreparedWorkRequests* ring);
  void RingClosed(PreparedWorkRequests* ring);

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Poll(const Napi::CallbackInfo& info);
  Napi::Value RequestNotify(const Napi::CallbackInfo& info);
  Napi::Value NextEvent(const Napi::CallbackInfo& info);
  Napi::Value CancelWait(const Napi::CallbackInfo& info);
  Napi::Value Resize(const Napi::CallbackInfo& info);
  Napi::Value Cqe(const Napi::CallbackInfo& info);
  enum class WaitOutcome { kEvent, kCancelled, kClosed };
  void SettleWaiters(WaitOutcome outcome);
  // One polled completion: its QP and window bookkeeping, then its words.
  void Deliver(const ibv_wc& wc, uint32_t* words);

  ibv_cq* cq_ = nullptr;
  Context* context_ = nullptr;
  std::unordered_map<uint32_t, Qp*> qps_;
  std::vector<Srq*> xrc_srqs_;
  CompletionChannel* channel_ = nullptr;
  std::vector<Napi::Promise::Deferred> waiters_;
  std::vector<PreparedWorkRequests*> consumed_rings_;
};

// storage (a Uint32Array) as completion slots: its words and how many completions fit (0 if detached).
uint32_t* CompletionStorage(const Napi::CallbackInfo& info, size_t index, size_t* capacity);
// A spin time given in microseconds (undefined: 0), in nanoseconds.
uint64_t SpinNs(Napi::Value value);

}  // namespace rdma
