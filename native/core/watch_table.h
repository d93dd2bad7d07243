// The process-wide table of watched address ranges that says, without a system call, whether a cached
// registration is still valid as far as the changes already handed to its invalidators go (for the
// monitor, a change not yet read from the kernel is UffdMonitor::CaughtUp's part). In the spirit of kdreg2: every cache entry holds a cookie (a slot of this
// table) and the generation the slot had when the entry was made; whoever learns that memory changed
// (the userfaultfd handler thread, a freed buffer, a dead JS buffer) bumps the generation of every slot
// overlapping the range, and a lookup compares generations with two atomic loads.
//
// Invalidation is lock-free and allocation-free, so the userfaultfd handler can run it while the thread
// that unmapped memory waits in the kernel for the handler, whatever locks that thread holds. Only
// Publish/Retire take a mutex, and the handler never calls them.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace rdma {

struct Watch {
  uint32_t slot = UINT32_MAX;
  uint64_t generation = 0;
  uint64_t epoch = 0;
  bool active() const { return slot != UINT32_MAX; }
};

class WatchTable {
 public:
  static constexpr uint32_t kCapacity = 1u << 16;
  static WatchTable& Get();

  // Starts watching [start, end); false when the table is full or this is a fork()ed child.
  bool Publish(uintptr_t start, uintptr_t end, Watch* watch);
  // Stops watching; the slot's generation moves on, so nothing can match the old watch again.
  void Retire(Watch* watch);
  // True while nothing overlapping the range changed since Publish. Waits (without a system call) for
  // an invalidation batch that the handler has read from the kernel but not yet applied.
  bool Valid(const Watch& watch) const;

  // Every watch overlapping [start, end) becomes invalid.
  void InvalidateRange(uintptr_t start, uintptr_t end);
  // This one watch becomes invalid, if it still is the slot's current one.
  void Invalidate(const Watch& watch);
  // Every watch becomes invalid: what the monitor does when it may have lost track of changes.
  void InvalidateAll();

  // Brackets a batch of invalidations whose triggers (events read from userfaultfd) already released
  // the threads that caused them; Valid() waits for an open batch to close.
  void BeginBatch();
  void EndBatch();

  // Set in a fork()ed child: inherited entries are invalid and nothing new is watched there.
  bool forked() const { return forked_.load(std::memory_order_acquire); }
  uint32_t active_count() const;

 private:
  WatchTable();
  static void BeforeFork();
  static void AfterForkParent();
  static void AfterForkChild();

  struct alignas(32) Slot {
    std::atomic<uint64_t> generation{0};
    std::atomic<uintptr_t> start{0};
    std::atomic<uintptr_t> end{0};
    std::atomic<uint32_t> active{0};
  };

  Slot* slots_;  // kCapacity slots in our own anonymous mapping, so the handler never touches the heap
  std::atomic<uint32_t> high_water_{0};
  std::atomic<uint64_t> epoch_{0};
  std::atomic<uint64_t> batch_seq_{0};  // odd while a batch is open
  std::atomic<bool> forked_{false};
  mutable std::mutex mutex_;  // Publish/Retire only
  std::vector<uint32_t> free_;
  uint32_t active_ = 0;
};

}  // namespace rdma
