// The measurement loops, in the shapes of perftest's run_iter_* (perftest_resources.c), so that the two
// measure the same thing on the same device. Plain verbs and no allocation inside the loops.
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "bench/bench.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace rdma::bench {

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// The cycle counter perftest's get_cycles() reads; converted to time with a rate measured against
// CLOCK_MONOTONIC over the run itself, so no CPU frequency has to be guessed.
inline uint64_t Ticks() {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#elif defined(__aarch64__)
  uint64_t value;
  asm volatile("mrs %0, cntvct_el0" : "=r"(value));
  return value;
#else
  return NowNs();
#endif
}

constexpr int kPollBatch = 16;  // perftest's CTX_POLL_BATCH
constexpr uint64_t kMinCalibrationNs = 10'000'000;

enum class State { kStart, kSample, kStopSample, kEnd };

class Runner {
 public:
  Runner(const Spec& spec, Result* result) : s_(spec), r_(result), base_(Ticks()), base_ns_(NowNs()) {
    now_ns_ = base_ns_;
    last_activity_ns_ = base_ns_;
    next_progress_ns_ = base_ns_ + s_.progress_ns;
  }

  void Run() {
    if (s_.events) {
      Arm(s_.send_cq);
      if (s_.recv_cq != s_.send_cq) Arm(s_.recv_cq);
    }
    switch (s_.loop) {
      case Loop::kLatSend: LatSend(); break;
      case Loop::kLatWrite: LatWrite(); break;
      case Loop::kLatRoundTrip: LatRoundTrip(); break;
      case Loop::kBwPost: BwPost(); break;
      case Loop::kBwRecv: BwRecv(); break;
    }
    r_->last = Stamp();
    // A run too short to measure the tick rate precisely waits a little (after the measurement).
    while (NowNs() - base_ns_ < kMinCalibrationNs) {
    }
    uint64_t ticks = Ticks(), ns = NowNs();
    r_->ticks_per_usec = static_cast<double>(ticks - base_) * 1000.0 / static_cast<double>(ns - base_ns_);
  }

 private:
  bool duration() const { return s_.iters == 0; }
  double Stamp() const { return static_cast<double>(Ticks() - base_); }

  // Duration mode follows perftest's alarm states: a warm-up margin, the sampled window, a cool-down margin.
  void StartClock() {
    if (!duration()) return;
    clock_start_ns_ = NowNs();
    state_ = State::kStart;
    Advance(clock_start_ns_);
  }

  void Advance(uint64_t now) {
    if (!duration() || clock_start_ns_ == 0) return;
    if (state_ == State::kStart && now >= clock_start_ns_ + s_.margin_ns) {
      state_ = State::kSample;
      r_->sample_start = Stamp();
    }
    if (state_ == State::kSample && now >= clock_start_ns_ + s_.duration_ns - s_.margin_ns) {
      state_ = State::kStopSample;
      r_->sample_end = Stamp();
    }
    if (state_ == State::kStopSample && now >= clock_start_ns_ + s_.duration_ns) state_ = State::kEnd;
  }

  bool ended() const { return state_ == State::kEnd; }
  bool sampling() const { return state_ == State::kSample; }

  // Cheap enough for every spin of a busy loop: the clock is read every 256 calls.
  void Spin() {
    if ((++spins_ & 255) == 0) Refresh();
  }

  void Refresh() {
    now_ns_ = NowNs();
    Advance(now_ns_);
    if (s_.stall_ns != 0 && now_ns_ - last_activity_ns_ > s_.stall_ns && !ended()) {
      throw Failure("nothing completed for " + std::to_string(s_.stall_ns / 1'000'000'000) +
                        " s (is the peer still running?)",
                    "ibv_poll_cq", ETIMEDOUT);
    }
    if (s_.progress && now_ns_ >= next_progress_ns_) {
      next_progress_ns_ = now_ns_ + s_.progress_ns;
      s_.progress(duration() ? r_->sample_iters : std::max({r_->scnt, r_->ccnt, r_->rcnt}));
    }
  }

  void Activity() { last_activity_ns_ = now_ns_; }

  void Arm(ibv_cq* cq) {
    int err = ibv_req_notify_cq(cq, 0);
    if (err != 0) throw Failure("ibv_req_notify_cq failed", "ibv_req_notify_cq", err);
  }

  // Sleeps on the CQ's channel (non-blocking fd, so poll(2) with a timeout keeps the clock running), then
  // acknowledges the event and re-arms the CQ; the caller polls next.
  void WaitEvent(ibv_cq* cq) {
    ibv_comp_channel* channel = cq->channel;
    for (;;) {
      ibv_cq* event_cq = nullptr;
      void* context = nullptr;
      if (ibv_get_cq_event(channel, &event_cq, &context) == 0) {
        ibv_ack_cq_events(event_cq, 1);
        Arm(event_cq);
        return;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) throw Failure("ibv_get_cq_event failed", "ibv_get_cq_event", errno);
      pollfd pfd = {channel->fd, POLLIN, 0};
      poll(&pfd, 1, 50);
      Refresh();
      if (ended()) return;
    }
  }

  int Poll(ibv_cq* cq, int n, ibv_wc* wc) {
    int ne = ibv_poll_cq(cq, n, wc);
    if (ne < 0) throw Failure("ibv_poll_cq failed", "ibv_poll_cq", EIO);
    return ne;
  }

  // Polls until `cq` yields a completion (or, in duration mode, the run ends: returns 0).
  int PollWait(ibv_cq* cq, int n, ibv_wc* wc) {
    for (;;) {
      int ne = Poll(cq, n, wc);
      if (ne > 0) {
        Activity();
        return ne;
      }
      if (ended()) return 0;
      if (s_.events) WaitEvent(cq);
      else Spin();
    }
  }

  void Check(const ibv_wc& wc, const char* what) {
    if (wc.status == IBV_WC_SUCCESS) return;
    throw Failure(std::string(what) + " completed with " + ibv_wc_status_str(wc.status) + " after " +
                      std::to_string(r_->ccnt) + " completions",
                  "ibv_poll_cq", EIO, wc.status, wc.vendor_err);
  }

  void PostSend(ibv_qp* qp, ibv_send_wr* wr) {
    ibv_send_wr* bad = nullptr;
    int err = ibv_post_send(qp, wr, &bad);
    if (err != 0) throw Failure("ibv_post_send failed after " + std::to_string(r_->scnt) + " posts", "ibv_post_send", err);
  }

  void PostRecv(ibv_qp* qp) {
    ibv_recv_wr wr = s_.recv_wr;
    ibv_sge sge = s_.recv_sge;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.next = nullptr;
    ibv_recv_wr* bad = nullptr;
    int err = ibv_post_recv(qp, &wr, &bad);
    if (err != 0) throw Failure("ibv_post_recv failed after " + std::to_string(r_->rcnt) + " receives", "ibv_post_recv", err);
  }

  // One request per QP as given, its sge copied so the loop owns it.
  ibv_send_wr TakeWr(size_t qp) {
    ibv_send_wr wr = s_.send_wrs[qp];
    sge_ = s_.send_sges[qp];
    wr.sg_list = wr.num_sge > 0 ? &sge_ : nullptr;
    wr.next = nullptr;
    wr.wr_id = qp;
    return wr;
  }

  // send_lat (perftest run_iter_lat_send): the initiator sends first; each side waits for the peer's
  // message, reposts the receive, and answers. Every cq_mod-th send is signaled and waited for.
  void LatSend() {
    ibv_qp* qp = s_.qps[0];
    ibv_send_wr wr = TakeWr(0);
    uint64_t rposted = s_.rx_posted;
    ibv_wc wc;
    if (s_.initiator) StartClock();
    r_->first = Stamp();
    while (r_->scnt < s_.iters || r_->rcnt < s_.iters || (duration() && !ended())) {
      Spin();
      if ((r_->rcnt < s_.iters || duration()) && !(s_.initiator && r_->scnt == 0)) {
        if (PollWait(s_.recv_cq, 1, &wc) == 0) break;
        Check(wc, "receive");
        if (!s_.initiator && r_->rcnt == 0) StartClock();
        r_->rcnt++;
        if (sampling()) r_->sample_iters++;
        if (duration() || rposted < s_.iters) {
          PostRecv(qp);
          rposted++;
        }
      }
      if (r_->scnt < s_.iters || (duration() && !ended())) {
        if (!duration()) r_->posted[r_->scnt] = Stamp();
        r_->scnt++;
        bool signaled = r_->scnt % s_.cq_mod == 0 || (!duration() && r_->scnt == s_.iters);
        wr.send_flags = signaled ? (s_.send_wrs[0].send_flags | IBV_SEND_SIGNALED) : (s_.send_wrs[0].send_flags & ~IBV_SEND_SIGNALED);
        PostSend(qp, &wr);
        if (signaled) {
          if (PollWait(s_.send_cq, 1, &wc) == 0) break;
          Check(wc, "send");
          r_->ccnt++;
        }
      }
    }
  }

  // write_lat (perftest run_iter_lat_write): the initiator writes first; each side spins on the last
  // byte of its buffer until the peer's write brings the next counter value, then writes back.
  void LatWrite() {
    ibv_qp* qp = s_.qps[0];
    ibv_send_wr wr = TakeWr(0);
    wr.send_flags |= IBV_SEND_SIGNALED;
    ibv_wc wc;
    StartClock();
    r_->first = Stamp();
    while (r_->scnt < s_.iters || r_->ccnt < s_.iters || r_->rcnt < s_.iters || (duration() && !ended())) {
      Spin();
      if ((r_->rcnt < s_.iters || duration()) && !(r_->scnt == 0 && s_.initiator)) {
        uint8_t expected = static_cast<uint8_t>(++r_->rcnt);
        while (*s_.poll_byte != expected && !ended()) Spin();
        Activity();
        if (sampling()) r_->sample_iters++;
      }
      if (r_->scnt < s_.iters || duration()) {
        if (ended()) break;
        if (!duration()) r_->posted[r_->scnt] = Stamp();
        *s_.post_byte = static_cast<uint8_t>(++r_->scnt);
        PostSend(qp, &wr);
      }
      if (r_->ccnt < s_.iters || duration()) {
        if (PollWait(s_.send_cq, 1, &wc) == 0) break;
        Check(wc, "RDMA write");
        r_->ccnt++;
      }
    }
  }

  // read_lat, atomic_lat (perftest run_iter_lat): one request at a time, each waited for.
  void LatRoundTrip() {
    ibv_qp* qp = s_.qps[0];
    ibv_send_wr wr = TakeWr(0);
    wr.send_flags |= IBV_SEND_SIGNALED;
    ibv_wc wc;
    StartClock();
    r_->first = Stamp();
    while (r_->scnt < s_.iters || (duration() && !ended())) {
      Spin();
      if (!duration()) r_->posted[r_->scnt] = Stamp();
      r_->scnt++;
      PostSend(qp, &wr);
      if (PollWait(s_.send_cq, 1, &wc) == 0) break;
      Check(wc, wr.opcode == IBV_WR_RDMA_READ ? "RDMA read" : "atomic");
      r_->ccnt++;
      if (sampling()) r_->sample_iters++;
    }
  }

  // Every *_bw client (perftest run_iter_bw): per QP keep up to tx_depth requests in flight, posting
  // post_list at a time; only every cq_mod-th request (and the last) is signaled, and each completion
  // accounts for cq_mod requests.
  void BwPost() {
    size_t nq = s_.qps.size();
    uint32_t list = s_.post_list;
    std::vector<std::vector<ibv_send_wr>> wrs(nq);
    std::vector<ibv_sge> sges(nq);
    for (size_t q = 0; q < nq; q++) {
      sges[q] = s_.send_sges[q];
      wrs[q].assign(list, s_.send_wrs[q]);
      for (uint32_t i = 0; i < list; i++) {
        ibv_send_wr& w = wrs[q][i];
        w.sg_list = w.num_sge > 0 ? &sges[q] : nullptr;
        w.wr_id = q;
        w.next = i + 1 < list ? &wrs[q][i + 1] : nullptr;
        w.send_flags &= ~IBV_SEND_SIGNALED;
      }
      if (list > 1) wrs[q][list - 1].send_flags |= IBV_SEND_SIGNALED;
    }
    std::vector<uint64_t> scnt(nq, 0), ccnt(nq, 0);
    uint64_t total = s_.iters * nq;
    ibv_wc wc[kPollBatch];
    StartClock();
    r_->first = Stamp();
    while (r_->scnt < total || r_->ccnt < total || (duration() && !ended())) {
      Spin();
      for (size_t q = 0; q < nq; q++) {
        while ((scnt[q] < s_.iters || duration()) && scnt[q] + list <= s_.tx_depth + ccnt[q]) {
          if (duration() && ended()) break;
          if (list == 1) {
            bool signaled = (scnt[q] + 1) % s_.cq_mod == 0 || (!duration() && scnt[q] + 1 == s_.iters);
            if (signaled) wrs[q][0].send_flags |= IBV_SEND_SIGNALED;
            else wrs[q][0].send_flags &= ~IBV_SEND_SIGNALED;
          }
          if (s_.record) r_->posted[r_->scnt] = Stamp();
          PostSend(s_.qps[q], wrs[q].data());
          scnt[q] += list;
          r_->scnt += list;
        }
      }
      if (r_->ccnt < r_->scnt) {
        int ne = Poll(s_.send_cq, kPollBatch, wc);
        for (int i = 0; i < ne; i++) {
          Check(wc[i], "work request");
          size_t q = wc[i].wr_id;
          uint64_t fill = s_.cq_mod;
          if (!duration() && ccnt[q] + fill > s_.iters) fill = s_.iters - ccnt[q];
          ccnt[q] += fill;
          r_->ccnt += fill;
          if (s_.record) r_->completed[r_->ccnt - 1] = Stamp();
          if (sampling()) r_->sample_iters += fill;
        }
        if (ne > 0) Activity();
        else if (s_.events) WaitEvent(s_.send_cq);
      }
    }
    if (duration()) Drain(wrs, scnt, ccnt);
  }

  // After a timed run some requests are still in flight, the last ones maybe unsignaled: one more
  // signaled request per QP completes after all of them (in order), so the QP is idle when the run returns.
  void Drain(std::vector<std::vector<ibv_send_wr>>& wrs, const std::vector<uint64_t>& scnt,
             const std::vector<uint64_t>& ccnt) {
    size_t pending = 0;
    for (size_t q = 0; q < wrs.size(); q++) {
      if (scnt[q] == ccnt[q]) continue;
      ibv_send_wr last = wrs[q][0];
      last.next = nullptr;
      last.send_flags |= IBV_SEND_SIGNALED;
      last.wr_id = kDrainId;
      PostSend(s_.qps[q], &last);
      pending++;
    }
    ibv_wc wc[kPollBatch];
    uint64_t deadline = NowNs() + 10'000'000'000ULL;
    while (pending > 0 && NowNs() < deadline) {
      int ne = Poll(s_.send_cq, kPollBatch, wc);
      for (int i = 0; i < ne; i++) {
        Check(wc[i], "work request");
        if (wc[i].wr_id == kDrainId) pending--;
      }
    }
  }
  static constexpr uint64_t kDrainId = ~0ULL;

  // send_bw server (perftest run_iter_bw_server): count receives and repost them; the clock starts at
  // the first arrival.
  void BwRecv() {
    ibv_qp* qp = s_.qps[0];
    uint64_t rposted = s_.rx_posted;
    uint64_t last_rx_ns = 0;
    ibv_wc wc[kPollBatch];
    while (r_->rcnt < s_.iters || (duration() && !ended())) {
      Spin();
      int ne = Poll(s_.recv_cq, kPollBatch, wc);
      if (ne > 0) {
        if (r_->rcnt == 0) {
          r_->first = Stamp();
          StartClock();
        }
        for (int i = 0; i < ne; i++) {
          Check(wc[i], "receive");
          r_->rcnt++;
          if (sampling()) r_->sample_iters++;
          if (duration() || rposted < s_.iters) {
            PostRecv(qp);
            rposted++;
          }
        }
        Activity();
        if (s_.idle_ns != 0) last_rx_ns = NowNs();
        continue;
      }
      if (s_.idle_ns != 0 && r_->rcnt > 0 && NowNs() - last_rx_ns > s_.idle_ns) break;
      if (s_.events) WaitEvent(s_.recv_cq);
    }
  }

  const Spec& s_;
  Result* r_;
  const uint64_t base_;
  const uint64_t base_ns_;
  uint64_t now_ns_ = 0;
  uint64_t clock_start_ns_ = 0;
  uint64_t last_activity_ns_ = 0;
  uint64_t next_progress_ns_ = 0;
  uint32_t spins_ = 0;
  State state_ = State::kStart;
  ibv_sge sge_ = {};
};

}  // namespace

void Run(const Spec& spec, Result* result) {
  Runner runner(spec, result);
  runner.Run();
}

}  // namespace rdma::bench
