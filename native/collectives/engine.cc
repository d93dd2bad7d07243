#include "collectives/engine.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rdma::collectives {

namespace {

constexpr uint32_t kControl = 0x8000'0000;  // immediate of a SEND: a credit (count in the low 24 bits) or an abort
constexpr uint32_t kAbort = 0xf000'0000;    // ... an abort: the cause's rank in bits 16-27, the errno in 0-15
constexpr uint32_t kLengthMask = 0x00ff'ffff;
constexpr uint32_t kLast = 0x8000'0000;     // immediate of a WRITE: the last chunk of its message
constexpr uint32_t kSeqShift = 24;          // ... the collective's sequence number in bits 24-30
// How long a step polls without progress before it sleeps on the completion channel: by time, not by
// count, as a poll costs 25x more under emulation and a spinning rank starves the peer (and rxe's own
// kernel work) that shares its CPU. Measured in bench:collectives.
constexpr uint64_t kSpinNs = 20'000;
constexpr int kMaxSleepMs = 20;

uint64_t Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t Messages(uint64_t len, uint32_t chunk) { return len == 0 ? 1 : (len + chunk - 1) / chunk; }

}  // namespace

Engine::Engine(uint32_t rank, std::vector<PeerLink> links, ibv_cq* cq, uint8_t* inbox, uint32_t slots, uint32_t chunk)
    : rank_(rank), cq_(cq), inbox_(inbox), slots_(slots), chunk_(chunk), peers_(links.size()) {
  for (size_t p = 0; p < links.size(); p++) {
    peers_[p].link = links[p];
    peers_[p].credits = slots;
    if (p != rank && links[p].qp != nullptr) by_qp_num_[links[p].qp->qp_num] = static_cast<uint32_t>(p);
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

Engine::~Engine() {
  if (wake_fd_ >= 0) close(wake_fd_);
}

bool Engine::Start(Failure* failure) {
  if (wake_fd_ < 0) {
    *failure = {errno, "eventfd", ""};
    return false;
  }
  ibv_recv_wr wr = {};  // no scatter list: writes land in the inbox, credits and aborts carry no bytes
  for (size_t p = 0; p < peers_.size(); p++) {
    if (p == rank_) continue;
    for (uint32_t i = 0; i < RecvDepth(slots_); i++) {
      ibv_recv_wr* bad = nullptr;
      int err = ibv_post_recv(peers_[p].link.qp, &wr, &bad);
      if (err != 0) {
        *failure = {err, "ibv_post_recv", "the receives of rank " + std::to_string(p) + "'s queue pair"};
        return false;
      }
    }
  }
  return true;
}

uint8_t* Engine::Slot(uint32_t peer, uint32_t slot) const {
  return inbox_ + (static_cast<uint64_t>(peer) * slots_ + slot) * chunk_;
}

void Engine::Fail(int err, const std::string& detail, uint32_t cause) {
  std::lock_guard<std::mutex> lock(failure_mutex_);
  if (failed_.load()) return;
  failure_ = {err, "collective", detail, cause};
  failed_.store(true, std::memory_order_release);
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) return;  // an eventfd far from overflow: cannot fail
}

// The abort goes out once, best effort: a peer that is gone or a queue pair in error will not take it.
void Engine::Broadcast(const Failure& failure) {
  if (told_) return;
  told_ = true;
  uint32_t cause = failure.cause == Failure::kNoRank ? rank_ : failure.cause;
  uint32_t imm = kAbort | (cause & 0xfff) << 16 | (static_cast<uint32_t>(failure.err) & 0xffff);
  for (uint32_t p = 0; p < peers_.size(); p++) {
    if (p == rank_) continue;
    Failure ignored;
    PostControl(p, imm, &ignored);
  }
}

bool Engine::CheckFailed(Failure* failure) {
  if (!failed_.load(std::memory_order_acquire)) return true;
  {
    std::lock_guard<std::mutex> lock(failure_mutex_);
    *failure = failure_;
  }
  Broadcast(*failure);
  return false;
}

bool Engine::PostControl(uint32_t peer, uint32_t imm, Failure* failure) {
  ibv_send_wr wr = {};
  wr.wr_id = 0;
  wr.opcode = IBV_WR_SEND_WITH_IMM;
  wr.send_flags = IBV_SEND_SIGNALED;
  wr.imm_data = htonl(imm);
  ibv_send_wr* bad = nullptr;
  int err = ibv_post_send(peers_[peer].link.qp, &wr, &bad);
  if (err != 0) {
    *failure = {err, "ibv_post_send", "a control message to rank " + std::to_string(peer)};
    return false;
  }
  peers_[peer].outstanding++;
  return true;
}

bool Engine::PostSends(const Plan& plan, std::vector<Active>& sends, Failure* failure) {
  // Two send-queue entries stay free for a credit and an abort.
  const uint32_t data_depth = SendDepth(slots_) - 2;
  for (size_t i = 0; i < sends.size(); i++) {
    Active& a = sends[i];
    Peer& peer = peers_[a.op->peer];
    while (a.posted < a.total && peer.credits > 0 && peer.outstanding < data_depth) {
      uint64_t offset = a.posted * chunk_;
      uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(chunk_, a.op->len - offset));
      uint32_t slot = static_cast<uint32_t>(peer.written % slots_);
      ibv_sge sge = {reinterpret_cast<uintptr_t>(plan.work + a.op->off + offset), len, plan.work_lkey};
      ibv_send_wr wr = {};
      wr.wr_id = i + 1;
      wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
      wr.send_flags = IBV_SEND_SIGNALED;
      wr.sg_list = &sge;
      wr.num_sge = len > 0 ? 1 : 0;
      wr.imm_data = htonl(((seq_ & 0x7f) << kSeqShift) | len | (a.posted + 1 == a.total ? kLast : 0));
      wr.wr.rdma.remote_addr = peer.link.inbox_addr + static_cast<uint64_t>(slot) * chunk_;
      wr.wr.rdma.rkey = peer.link.inbox_rkey;
      ibv_send_wr* bad = nullptr;
      int err = ibv_post_send(peer.link.qp, &wr, &bad);
      if (err != 0) {
        *failure = {err, "ibv_post_send", "data for rank " + std::to_string(a.op->peer)};
        return false;
      }
      a.posted++;
      peer.written++;
      peer.credits--;
      peer.outstanding++;
    }
  }
  for (uint32_t p = 0; p < peers_.size(); p++) {
    Peer& peer = peers_[p];
    if (!peer.credit_due || peer.outstanding >= SendDepth(slots_) - 1) continue;
    if (!PostControl(p, kControl | peer.unreported, failure)) return false;
    peer.unreported = 0;
    peer.credit_due = false;
  }
  return true;
}

bool Engine::PollOnce(std::vector<Active>& sends, bool* progressed, Failure* failure) {
  ibv_wc wcs[32];
  int n = ibv_poll_cq(cq_, 32, wcs);
  if (n < 0) {
    *failure = {EIO, "ibv_poll_cq", ""};
    return false;
  }
  for (int i = 0; i < n; i++) {
    const ibv_wc& wc = wcs[i];
    auto found = by_qp_num_.find(wc.qp_num);
    if (found == by_qp_num_.end()) continue;
    uint32_t p = found->second;
    Peer& peer = peers_[p];
    *progressed = true;
    if (wc.status != IBV_WC_SUCCESS) {
      Fail(wc.status == IBV_WC_RETRY_EXC_ERR ? ETIMEDOUT : EIO,
           std::string("a transfer with rank ") + std::to_string(p) + " failed: " + ibv_wc_status_str(wc.status));
      return CheckFailed(failure);
    }
    if (!(wc.opcode & IBV_WC_RECV)) {
      peer.outstanding--;
      if (wc.wr_id > 0 && wc.wr_id <= sends.size()) sends[wc.wr_id - 1].completed++;
      continue;
    }
    ibv_recv_wr wr = {}, *bad = nullptr;
    int err = ibv_post_recv(peer.link.qp, &wr, &bad);
    if (err != 0) {
      *failure = {err, "ibv_post_recv", "a receive of rank " + std::to_string(p) + "'s queue pair"};
      return false;
    }
    uint32_t imm = ntohl(wc.imm_data);
    if (wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
      peer.arrivals.push_back({static_cast<uint32_t>(peer.arrived++ % slots_), imm & kLengthMask, (imm >> kSeqShift) & 0x7f, (imm & kLast) != 0});
    } else if ((imm & kAbort) == kAbort) {
      int why = static_cast<int>(imm & 0xffff);
      uint32_t cause = (imm >> 16) & 0xfff;
      std::string because = cause == p ? "" : why == ECONNRESET ? ": rank " + std::to_string(cause) + " is gone" : " after rank " + std::to_string(cause);
      Fail(why, "rank " + std::to_string(p) + " ended the collective" + because, cause);
      return CheckFailed(failure);
    } else {
      peer.credits += imm & kLengthMask;
    }
  }
  return true;
}

bool Engine::Consume(const Plan& plan, uint32_t p, std::deque<Active*>& recvs, bool* progressed, Failure* failure) {
  Peer& peer = peers_[p];
  while (!recvs.empty() && !peer.arrivals.empty()) {
    Active& a = *recvs.front();
    Arrival arrival = peer.arrivals.front();
    uint64_t offset = a.completed * chunk_;
    uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(chunk_, a.op->len - offset));
    // The last-chunk flag catches messages whose first chunks agree but whose lengths do not.
    bool last = a.completed + 1 == a.total;
    if (arrival.seq != (seq_ & 0x7f) || arrival.len != len || arrival.last != last) {
      Fail(EPROTO, "rank " + std::to_string(p) + " sent " + std::to_string(arrival.len) + " bytes" + (arrival.last ? "" : " and more") +
                       " for collective #" + std::to_string(arrival.seq) + " where " + std::to_string(len) + " bytes" +
                       (last ? "" : " and more") + " for #" + std::to_string(seq_ & 0x7f) +
                       " were expected: the ranks called different collectives, sizes or roots");
      return CheckFailed(failure);
    }
    uint8_t* to = plan.work + a.op->off + offset;
    if (a.op->kind == OpKind::kRecv) {
      memcpy(to, Slot(p, arrival.slot), len);
    } else {
      plan.reduce(to, Slot(p, arrival.slot), len / plan.element_size);
    }
    peer.arrivals.pop_front();
    if (++a.completed == a.total) recvs.pop_front();
    if (++peer.unreported >= std::max<uint32_t>(1, slots_ / 2)) peer.credit_due = true;
    *progressed = true;
  }
  return true;
}

// Arms the CQ (the caller polls once more before calling again), then sleeps until a completion event, a
// wake-up (an abort, a lost peer) or the deadline.
bool Engine::Sleep(uint64_t deadline, Failure* failure) {
  if (!armed_) {
    int err = ibv_req_notify_cq(cq_, 0);
    if (err != 0) {
      *failure = {err, "ibv_req_notify_cq", ""};
      return false;
    }
    armed_ = true;
    return true;
  }
  int timeout = kMaxSleepMs;
  if (deadline != 0) {
    uint64_t now = Now();
    timeout = now >= deadline ? 0 : static_cast<int>(std::min<uint64_t>(kMaxSleepMs, (deadline - now) / 1'000'000 + 1));
  }
  pollfd fds[2] = {{cq_->channel->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  if (poll(fds, 2, timeout) < 0 && errno != EINTR) {
    *failure = {errno, "poll", "the completion channel"};
    return false;
  }
  if (fds[0].revents & POLLIN) {
    ibv_cq* cq = nullptr;
    void* context = nullptr;
    if (ibv_get_cq_event(cq_->channel, &cq, &context) == 0) {
      ibv_ack_cq_events(cq, 1);
      armed_ = false;
    }
  }
  if (fds[1].revents & POLLIN) {
    uint64_t count;
    if (read(wake_fd_, &count, sizeof count) < 0) return true;  // drained by another wake-up: nothing lost
  }
  return true;
}

bool Engine::RunStep(const Plan& plan, const Op* begin, const Op* end, uint64_t deadline, Failure* failure) {
  std::vector<Active> sends, recv_states;
  for (const Op* op = begin; op != end; op++) {
    switch (op->kind) {
      case OpKind::kCopy: memmove(plan.work + op->off, plan.work + op->off2, op->len); break;
      case OpKind::kReduce: plan.reduce(plan.work + op->off, plan.work + op->off2, op->len / plan.element_size); break;
      case OpKind::kSend: sends.push_back({op, 0, 0, Messages(op->len, chunk_)}); break;
      default: recv_states.push_back({op, 0, 0, Messages(op->len, chunk_)}); break;
    }
  }
  std::vector<std::deque<Active*>> recvs(peers_.size());
  for (Active& a : recv_states) recvs[a.op->peer].push_back(&a);
  uint64_t idle_since = 0;  // when the polls stopped making progress; 0 while they make it
  while (true) {
    if (!CheckFailed(failure)) return false;
    bool progressed = false;
    if (!PostSends(plan, sends, failure) || !PollOnce(sends, &progressed, failure)) return false;
    bool done = true;
    for (uint32_t p = 0; p < peers_.size(); p++) {
      if (!recvs[p].empty() && !Consume(plan, p, recvs[p], &progressed, failure)) return false;
      done = done && recvs[p].empty() && !peers_[p].credit_due;
    }
    for (const Active& a : sends) done = done && a.completed == a.total;
    if (done) return true;
    if (deadline != 0 && Now() >= deadline) {
      Fail(ETIMEDOUT, "timed out at rank " + std::to_string(rank_));
      continue;
    }
    if (progressed) {
      idle_since = 0;
    } else if (idle_since == 0) {
      idle_since = Now();
    } else if (Now() - idle_since > kSpinNs && !Sleep(deadline, failure)) {
      return false;
    }
  }
}

bool Engine::Run(const Plan& plan, Failure* failure) {
  if (!CheckFailed(failure)) return false;
  seq_++;
  uint64_t deadline = plan.timeout_ns == 0 ? 0 : Now() + plan.timeout_ns;
  const Op* step = plan.ops.data();
  const Op* end = step + plan.ops.size();
  for (const Op* op = step; op != end; op++) {
    if (op->kind != OpKind::kStepEnd) continue;
    if (!RunStep(plan, step, op, deadline, failure)) {
      if (failure->verb != "collective") {  // a verb failed here: the peers must hear of it too
        Fail(failure->err, failure->verb + " failed at rank " + std::to_string(rank_));
        Broadcast(*failure);
      }
      return false;
    }
    step = op + 1;
  }
  return true;
}

}  // namespace rdma::collectives
