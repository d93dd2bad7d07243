// Prepared work requests: a send or receive list marshalled once (qp.prepareSend/prepareRecv) and posted
// many times, a slice at a time, with no per-post conversion. The hot path for TypeScript loops that
// repost the same requests (benchmarks, receive rings): one call with two integers per post, or one call
// that posts and then polls a CQ (postAndPoll), or none at all for a receive ring, whose receives the CQ
// reposts as their completions are consumed (see Cq).
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/resource.h"
#include "verbs/post.h"

namespace rdma {

class Cq;
class Qp;

class PreparedWorkRequests : public Napi::ObjectWrap<PreparedWorkRequests>, public Resource, public Lifecycle<PreparedWorkRequests> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'000cULL, 0x7072'6570'6172'6564ULL};
  static constexpr const char* kName = "PreparedWorkRequests";
  static Napi::Function Define(Napi::Env env);
  enum class Kind { kSend, kRecv, kRing };
  // qp.prepareSend(list) / qp.prepareRecv(list) / qp.createReceiveRing(list)
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object qp_js, Qp* qp, Kind kind);

  explicit PreparedWorkRequests(const Napi::CallbackInfo& info);
  ~PreparedWorkRequests() override { Close(CloseMode::kQuiet); }
  // A receive ring: one of its receives completed (on `cq`); it is reposted at that CQ's next poll.
  void Consumed(Cq* cq);
  // Posts the consumed receives again, in the order the ring first posted them.
  void Repost(Napi::Env env);

 private:
  int Destroy(CloseMode mode) override;
  // post(first, count): posts requests [first, first + count) as one list.
  Napi::Value Post(const Napi::CallbackInfo& info);
  // postAndPoll(cq, storage, spinUs?): posts every request, then polls `cq` as cq.poll(storage, spinUs).
  Napi::Value PostAndPoll(const Napi::CallbackInfo& info);
  Napi::Value Length(const Napi::CallbackInfo& info);
  void PostSlice(Napi::Env env, size_t first, size_t count);

  bool ring() const { return ring_cq_ != nullptr; }

  Qp* owner_ = nullptr;
  ibv_qp* qp_ = nullptr;
  ibv_qp_ex* qpx_ = nullptr;  // the QP posts through ibv_wr_*: so do its prepared sends
  bool send_ = true;
  SendList send_list_;
  RecvList recv_list_;
  Cq* ring_cq_ = nullptr;  // set for a receive ring: the QP's receive CQ
  size_t ring_next_ = 0;   // the request whose completion comes next
  size_t ring_consumed_ = 0;
  HeldObjects held_;  // the MRs, AHs and MWs the requests name stay alive as long as the requests do
};

}  // namespace rdma
