#include "core/watch_table.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace rdma {

WatchTable& WatchTable::Get() {
  // Never destroyed: caches in other threads may still check validity while the process exits.
  static WatchTable* table = new WatchTable();
  return *table;
}

WatchTable::WatchTable() {
  void* memory = mmap(nullptr, sizeof(Slot) * kCapacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) abort();  // 2 MiB of address space at load time; nothing sensible to do without
  slots_ = new (memory) Slot[kCapacity];
  pthread_atfork(BeforeFork, AfterForkParent, AfterForkChild);
}

// fork() keeps only the calling thread: the table lock must not be inherited held by a thread that is gone.
void WatchTable::BeforeFork() { Get().mutex_.lock(); }
void WatchTable::AfterForkParent() { Get().mutex_.unlock(); }

// The child has no monitor thread, and its mappings lost their userfaultfd registration (we do not ask
// for UFFD_FEATURE_EVENT_FORK): nothing it inherited can be trusted and nothing new can be watched.
void WatchTable::AfterForkChild() {
  WatchTable& table = Get();
  table.forked_.store(true, std::memory_order_release);
  table.epoch_.fetch_add(1, std::memory_order_acq_rel);
  table.batch_seq_.store(0, std::memory_order_release);  // a batch open at fork time has no handler here
  table.mutex_.unlock();
}

bool WatchTable::Publish(uintptr_t start, uintptr_t end, Watch* watch) {
  if (forked()) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = high_water_.load(std::memory_order_relaxed);
    if (index == kCapacity) return false;
  }
  Slot& slot = slots_[index];
  slot.start.store(start, std::memory_order_relaxed);
  slot.end.store(end, std::memory_order_relaxed);
  slot.active.store(1, std::memory_order_release);
  if (index == high_water_.load(std::memory_order_relaxed)) high_water_.store(index + 1, std::memory_order_release);
  active_++;
  // The epoch is read last: an InvalidateAll() racing with this Publish leaves the watch invalid, never
  // valid across it.
  watch->slot = index;
  watch->generation = slot.generation.load(std::memory_order_acquire);
  watch->epoch = epoch_.load(std::memory_order_acquire);
  return true;
}

void WatchTable::Retire(Watch* watch) {
  if (!watch->active()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  Slot& slot = slots_[watch->slot];
  slot.active.store(0, std::memory_order_release);
  slot.generation.fetch_add(1, std::memory_order_acq_rel);
  free_.push_back(watch->slot);
  active_--;
  watch->slot = UINT32_MAX;
}

bool WatchTable::Valid(const Watch& watch) const {
  uint64_t seq = batch_seq_.load(std::memory_order_acquire);
  if (seq & 1) {
    // The handler never blocks inside a batch, so this wait is short; yield in case it was preempted.
    for (int spins = 0; batch_seq_.load(std::memory_order_acquire) == seq; spins++) {
      if (spins > 64) sched_yield();
    }
  }
  return epoch_.load(std::memory_order_acquire) == watch.epoch &&
         slots_[watch.slot].generation.load(std::memory_order_acquire) == watch.generation;
}

void WatchTable::InvalidateRange(uintptr_t start, uintptr_t end) {
  uint32_t count = high_water_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < count; i++) {
    Slot& slot = slots_[i];
    if (slot.active.load(std::memory_order_acquire) == 0) continue;
    // A slot republished concurrently may be read torn: that can only bump it needlessly. A watch that
    // matters for this range was published before the change that caused this call.
    if (slot.start.load(std::memory_order_relaxed) < end && slot.end.load(std::memory_order_relaxed) > start) {
      slot.generation.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

void WatchTable::Invalidate(const Watch& watch) {
  if (!watch.active()) return;
  uint64_t expected = watch.generation;
  slots_[watch.slot].generation.compare_exchange_strong(expected, expected + 1, std::memory_order_acq_rel);
}

void WatchTable::InvalidateAll() { epoch_.fetch_add(1, std::memory_order_acq_rel); }

void WatchTable::BeginBatch() {
  batch_seq_.fetch_add(1, std::memory_order_seq_cst);
}

void WatchTable::EndBatch() { batch_seq_.fetch_add(1, std::memory_order_release); }

uint32_t WatchTable::active_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return active_;
}

}  // namespace rdma
