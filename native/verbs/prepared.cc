#include "verbs/prepared.h"

#include <algorithm>

#include "addon/args.h"
#include "verbs/cq.h"
#include "verbs/qp.h"

namespace rdma {

Napi::Function PreparedWorkRequests::Define(Napi::Env env) {
  return DefineClass(env, "PreparedWorkRequests",
                     {InstanceMethod<&PreparedWorkRequests::Post>("post"),
                      InstanceMethod<&PreparedWorkRequests::PostAndPoll>("postAndPoll"), InstanceAccessor<&PreparedWorkRequests::Length>("length"),
                      CloseMethod(), ClosedGetter()});
}

PreparedWorkRequests::PreparedWorkRequests(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<PreparedWorkRequests>(info), Resource(info.Env(), "prepared work requests") {
  CheckConstructToken(info, "qp.prepareSend() or qp.prepareRecv()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

Napi::Object PreparedWorkRequests::Create(const Napi::CallbackInfo& info, Napi::Object qp_js, Qp* qp, Kind kind) {
  Napi::Env env = info.Env();
  bool send = kind == Kind::kSend;
  if (!send) qp->CheckOwnReceiveQueue(env);
  SendList sends;
  RecvList receives;
  if (send) ParseSendList(info[0], qp->send_limits(), &sends, true);
  else ParseRecvList(info[0], qp->recv_limits(), &receives);
  std::vector<ObjectUse>& uses = send ? sends.uses : receives.uses;
  qp->CheckOpen(env);  // reading the list may have run JS
  if (kind == Kind::kRing) {
    qp->CheckNoRing(env);
    if (receives.wrs.empty()) ThrowRange(env, "a receive ring needs at least one receive");
  }
  if (send) CheckParsed(env, sends);
  else CheckUses(env, uses);
  Napi::Object object = AddonData::Get(env).prepared_class.New({ConstructToken(env)});
  PreparedWorkRequests* self = Unwrap(object);
  self->owner_ = qp;
  self->qp_ = qp->handle();
  self->qpx_ = qp->extended_handle();
  self->send_ = send;
  self->held_.Hold(uses);
  uses.clear();  // handles of this call only
  self->send_list_ = std::move(sends);
  self->recv_list_ = std::move(receives);
  self->DependOn(qp_js, qp);
  if (kind == Kind::kRing) {
    self->PostSlice(env, 0, self->recv_list_.wrs.size());
    self->ring_cq_ = qp->recv_cq();
    qp->SetRing(self);
  }
  return object;
}

int PreparedWorkRequests::Destroy(CloseMode) {
  if (ring()) {
    owner_->SetRing(nullptr);
    ring_cq_->RingClosed(this);
    ring_cq_ = nullptr;
  }
  owner_ = nullptr;
  qp_ = nullptr;
  qpx_ = nullptr;
  held_.Clear();
  return 0;
}

// Links [first, first + count) into one list for the call and restores nothing afterwards: every post
// sets the links it needs, so slices of the same requests can be posted in any order.
template <class Wr>
static Wr* Link(std::vector<Wr>& wrs, size_t first, size_t count) {
  for (size_t i = first; i + 1 < first + count; i++) wrs[i].next = &wrs[i + 1];
  wrs[first + count - 1].next = nullptr;
  return &wrs[first];
}

Napi::Value PreparedWorkRequests::Post(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  size_t length = send_ ? send_list_.wrs.size() : recv_list_.wrs.size();
  // Arguments are read only when given: post() with none is the cheapest call the binding has.
  size_t first = info.Length() < 1 ? 0 : ToU32(info[0], "first");
  size_t count = info.Length() < 2 ? length - std::min(first, length) : ToU32(info[1], "count");
  if (first > length || count > length - first) ThrowRange(env, "the slice exceeds the prepared work requests");
  CheckOpen(env);  // the QP's close closes its prepared lists
  if (ring()) ThrowType(env, "a receive ring posts its own receives");
  held_.Check(env);
  PostSlice(env, first, count);
  return env.Undefined();
}

Napi::Value PreparedWorkRequests::PostAndPoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Cq* cq = UnwrapTagged<Cq>(info[0], "cq");
  size_t capacity;
  uint32_t* out = CompletionStorage(info, 1, &capacity);
  uint64_t spin_ns = info.Length() < 3 ? 0 : SpinNs(info[2]);
  CheckOpen(env);
  cq->CheckOpen(env);
  if (!send_) ThrowType(env, "postAndPoll() posts prepared sends");
  held_.Check(env);
  PostSlice(env, 0, send_list_.wrs.size());
  return Napi::Number::New(env, static_cast<double>(cq->PollInto(env, out, capacity, spin_ns)));
}

void PreparedWorkRequests::PostSlice(Napi::Env env, size_t first, size_t count) {
  if (count == 0) return;
  int err;
  if (send_) {
    // Windows are checked and recorded at every post: they may have been bound or invalidated since the last.
    Context* context = owner_->send_limits().context;
    CheckInvalidations(env, send_list_, first, count, context, owner_);
    ibv_send_wr* head = &send_list_.wrs[first];
    size_t posted = count;
    if (qpx_ != nullptr) {
      err = PostWithWrApi(qpx_, head, count);  // all or nothing
      if (err != 0) ThrowVerb(env, "ibv_wr_complete", err);
    } else {
      ibv_send_wr* bad = nullptr;
      err = ibv_post_send(qp_, Link(send_list_.wrs, first, count), &bad);
      posted = err == 0 ? count : bad != nullptr ? static_cast<size_t>(bad - head) : 0;
    }
    std::vector<WindowBind> binds = RecordWindows(send_list_, first, posted, context, owner_, owner_->Value());
    owner_->sends().Sent(head, posted, owner_->signal_all(), nullptr, &binds);  // counted, so completions line up
    if (err != 0) ThrowPostError(env, "ibv_post_send", err, posted);
  } else {
    ibv_recv_wr* head = Link(recv_list_.wrs, first, count);
    ibv_recv_wr* bad = nullptr;
    err = ibv_post_recv(qp_, head, &bad);
    size_t posted = err == 0 ? count : bad != nullptr ? static_cast<size_t>(bad - head) : 0;
    owner_->receives().Received(posted, nullptr);
    if (err != 0) ThrowPostError(env, "ibv_post_recv", err, posted);
  }
}

void PreparedWorkRequests::Consumed(Cq* cq) {
  ring_consumed_++;
  cq->RingConsumed(this);
}

void PreparedWorkRequests::Repost(Napi::Env env) {
  size_t length = recv_list_.wrs.size();
  size_t count = std::min(ring_consumed_, length);
  size_t first = ring_next_;
  ring_consumed_ = 0;
  ring_next_ = (first + count) % length;
  // Counted as done before posting: a failure (the QP left RTR/RTS) must not repeat at every poll.
  size_t head = std::min(count, length - first);
  PostSlice(env, first, head);
  PostSlice(env, 0, count - head);
}

Napi::Value PreparedWorkRequests::Length(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), static_cast<double>(send_ ? send_list_.wrs.size() : recv_list_.wrs.size()));
}

}  // namespace rdma
