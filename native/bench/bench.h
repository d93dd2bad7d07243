// The C core of `rdma-node bench`: perftest's measurement loops (post and poll, stamped with the CPU's
// cycle counter as perftest does) over verbs objects that TypeScript set up and connected. A loop only
// measures; the raw timestamps and counts go back to lib/bench, which computes and prints statistics.
#pragma once
#include <infiniband/verbs.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rdma::bench {

enum class Loop : uint32_t {
  kLatSend = 0,       // send_lat: ping-pong of SENDs, both sides
  kLatWrite = 1,      // write_lat: ping-pong of RDMA WRITEs, each side polling the last byte of its buffer
  kLatRoundTrip = 2,  // read_lat, atomic_lat: the client posts one request and waits for its completion
  kBwPost = 3,        // every *_bw client: keep tx_depth requests in flight
  kBwRecv = 4,        // send_bw server: count and repost receives
};

struct Spec {
  Loop loop = Loop::kBwPost;
  bool initiator = false;  // posts first in the ping-pong loops
  std::vector<ibv_qp*> qps;
  ibv_cq* send_cq = nullptr;
  ibv_cq* recv_cq = nullptr;
  // Per QP: the request to post (its sge points into `sges`); wr_id and the signaled flag are set here.
  std::vector<ibv_send_wr> send_wrs;
  std::vector<ibv_sge> send_sges;
  ibv_recv_wr recv_wr = {};
  ibv_sge recv_sge = {};
  volatile uint8_t* post_byte = nullptr;  // write_lat: the byte carrying the counter out...
  volatile uint8_t* poll_byte = nullptr;  // ...and the one the peer's write lands in
  uint64_t iters = 0;                     // 0: run for duration_ns
  uint64_t duration_ns = 0, margin_ns = 0;
  uint32_t tx_depth = 1, rx_depth = 1, cq_mod = 1, post_list = 1;
  uint64_t rx_posted = 0;   // receives already posted before the loop (lib/bench posts them)
  bool events = false;      // sleep on the CQs' completion channels instead of busy polling
  bool record = false;      // a timestamp per post and per completion (perftest's peak bandwidth)
  uint64_t stall_ns = 0;    // fail when nothing completes for this long (0: never)
  uint64_t idle_ns = 0;     // kBwRecv over UC/UD: stop once nothing arrived for this long (lost messages)
  // Called about every progress_ns with the iterations done; may throw to abort.
  std::function<void(uint64_t)> progress;
  uint64_t progress_ns = 200'000'000;
};

struct Result {
  // Ticks since the loop started; `posted`/`completed` hold one entry per post and completion when
  // Spec::record (capacity iters * qps), the latency loops always fill `posted` (capacity iters).
  double* posted = nullptr;
  double* completed = nullptr;
  double first = 0, last = 0;                 // first post (receiver: first arrival) and end of the run
  double sample_start = 0, sample_end = 0;    // duration mode: the measured window
  uint64_t sample_iters = 0;                  // duration mode: iterations inside the window
  uint64_t scnt = 0, ccnt = 0, rcnt = 0;
  double ticks_per_usec = 0;
};

// A failed verb (err is an errno) or a failed completion (status is an ibv_wc_status).
class Failure : public std::runtime_error {
 public:
  Failure(const std::string& message, const char* verb, int err, int status = -1, uint32_t vendor_err = 0)
      : std::runtime_error(message), verb(verb), err(err), status(status), vendor_err(vendor_err) {}
  const char* verb;
  int err;
  int status;
  uint32_t vendor_err;
};

// Runs the loop to the end on the calling thread; throws Failure.
void Run(const Spec& spec, Result* result);

}  // namespace rdma::bench
