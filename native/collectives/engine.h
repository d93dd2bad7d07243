// The data path of the collectives: a progress engine that runs one schedule (steps of sends, receives
// and local reductions computed by lib/collectives/schedules.ts) over RC queue pairs to every other rank.
// No N-API here: it runs on a worker thread while the event loop goes on.
//
// Protocol, per ordered pair of ranks: every rank has an inbox of `slots` slots of `chunk` bytes for
// each peer. Data is an RDMA WRITE WITH IMMEDIATE into the next slot of the peer's inbox (immediate: the
// collective's sequence number, the length and a last-chunk flag, so ranks that called different
// collectives or sizes are told so); a message larger than a slot goes as several, and a receiver copies
// or reduces each chunk out of its slot as it arrives, so transfer and reduction overlap. Slots are returned as credits (a zero-byte
// SEND WITH IMMEDIATE) once half of them were consumed. Any failure (an abort, a timeout, a lost peer, a
// failed completion) is sent to every peer as an abort message, so all ranks end the collective, and
// leaves the engine broken: like ncclCommAbort, a communicator does not recover from a failed collective.
#pragma once
#include <infiniband/verbs.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "collectives/reduce.h"

namespace rdma::collectives {

enum class OpKind : uint32_t { kStepEnd = 0, kSend = 1, kRecv = 2, kRecvReduce = 3, kCopy = 4, kReduce = 5 };

// One operation of a schedule; offsets are into the work area. kCopy/kReduce: work[off] (op)= work[off2].
struct Op {
  OpKind kind;
  uint32_t peer;
  uint64_t off;
  uint64_t len;
  uint64_t off2;
};

struct Plan {
  std::vector<Op> ops;  // steps, each ended by kStepEnd
  uint8_t* work = nullptr;
  uint32_t work_lkey = 0;
  ReduceFn reduce = nullptr;
  size_t element_size = 1;
  uint64_t timeout_ns = 0;  // 0: none
};

struct Failure {
  int err = 0;
  std::string verb;
  std::string detail;
  uint32_t cause = kNoRank;  // the rank the failure is about (a lost one, or the one that aborted)
  static constexpr uint32_t kNoRank = 0xfff;
};

struct PeerLink {
  ibv_qp* qp = nullptr;
  uint64_t inbox_addr = 0;  // the peer's inbox region for this rank
  uint32_t inbox_rkey = 0;
};

class Engine {
 public:
  // `links[rank]` is unused. The inbox holds size * slots * chunk bytes, registered for remote write.
  Engine(uint32_t rank, std::vector<PeerLink> links, ibv_cq* cq, uint8_t* inbox, uint32_t slots, uint32_t chunk);
  ~Engine();
  int wake_fd() const { return wake_fd_; }
  // Posts the receives every peer's messages consume; false with *failure set when the device refuses.
  bool Start(Failure* failure);
  // Runs `plan` to its end on the calling thread; false with *failure set when the collective failed.
  bool Run(const Plan& plan, Failure* failure);
  // From any thread: end the collective running now (or the next one) with `err` (ECANCELED, ECONNRESET
  // for a lost peer) and make every later one fail the same way.
  void Fail(int err, const std::string& detail, uint32_t cause = Failure::kNoRank);
  // The queue depths a peer QP needs for this protocol.
  static uint32_t SendDepth(uint32_t slots) { return slots + 8; }
  static uint32_t RecvDepth(uint32_t slots) { return 2 * slots + 8; }

 private:
  struct Arrival {
    uint32_t slot;
    uint32_t len;
    uint32_t seq;
    bool last;  // the sender's last chunk of this message
  };
  struct Peer {
    PeerLink link;
    uint32_t credits = 0;        // slots free in the peer's inbox for us
    uint64_t written = 0;        // messages written into the peer's inbox
    uint64_t arrived = 0;        // messages that arrived in ours
    uint32_t unreported = 0;     // slots consumed since the last credit message
    uint32_t outstanding = 0;    // sends not yet completed
    bool credit_due = false;
    std::deque<Arrival> arrivals;
  };
  // An operation of the step in progress.
  struct Active {
    const Op* op;
    uint64_t posted = 0, completed = 0, total = 0;  // messages
  };

  bool RunStep(const Plan& plan, const Op* begin, const Op* end, uint64_t deadline, Failure* failure);
  bool PostSends(const Plan& plan, std::vector<Active>& sends, Failure* failure);
  bool PostControl(uint32_t peer, uint32_t imm, Failure* failure);
  bool PollOnce(std::vector<Active>& sends, bool* progressed, Failure* failure);
  bool Consume(const Plan& plan, uint32_t peer, std::deque<Active*>& recvs, bool* progressed, Failure* failure);
  bool Sleep(uint64_t deadline, Failure* failure);
  bool CheckFailed(Failure* failure);
  void Broadcast(const Failure& failure);  // tells every peer the collective ended here, and why
  uint8_t* Slot(uint32_t peer, uint32_t slot) const;

  uint32_t rank_;
  ibv_cq* cq_;
  uint8_t* inbox_;
  uint32_t slots_, chunk_;
  std::vector<Peer> peers_;
  std::unordered_map<uint32_t, uint32_t> by_qp_num_;
  uint32_t seq_ = 0;
  bool armed_ = false;
  int wake_fd_ = -1;
  std::atomic<bool> failed_{false};
  std::mutex failure_mutex_;
  Failure failure_;  // the sticky failure, once failed_
  bool told_ = false;  // the peers heard of it
};

}  // namespace rdma::collectives
