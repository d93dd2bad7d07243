// A registration cache: a child of a PD that hands out memory regions for byte ranges, reusing a cached
// registration that covers the range when one is still valid. Entries live in an interval tree keyed by
// their exact byte range (never widened: a cached rkey must not reach bytes the caller did not register),
// unused ones on an LRU list, within limits on count and bytes.
//
// Validity is the WatchTable's: each entry watches its pages, and the strategy decides who invalidates:
// - monitor: the userfaultfd monitor (unmap, remove, remap events), plus freed or dead buffers;
// - odp: registrations are On-Demand Paging MRs, which follow whatever is mapped at their addresses, so
//   only freed or dead buffers invalidate (to let go of memory, not for correctness);
// - uncached: nothing is cached, every register() is a fresh registration;
// - unmonitored: caches without the monitor. Unsafe by design: it demonstrates the stale-registration
//   failure the other strategies prevent.
// Memory that cannot be watched (userfaultfd refuses the range) is registered uncached and counted.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <memory>
#include <unordered_set>

#include "addon/args.h"
#include "addon/resource.h"
#include "core/interval_tree.h"
#include "core/watch_table.h"
#include "verbs/mr.h"

namespace rdma {

class Pd;

struct RegEntry {
  IntervalNode node;  // first member: a node pointer is an entry pointer
  ibv_mr* mr = nullptr;
  Mr* region = nullptr;            // the entry's memory region, handed out on every hit
  Napi::ObjectReference region_js;  // held by the cache for as long as the entry exists
  uint32_t access = 0;
  Watch watch;
  uint32_t users = 0;   // memory-region handles using it
  bool cached = true;   // in the tree; false once invalidated or evicted (freed when unused)
  RegEntry* newer = nullptr;  // LRU links, only while cached and unused
  RegEntry* older = nullptr;
};

class RegistrationCache : public Napi::ObjectWrap<RegistrationCache>, public Resource, public Lifecycle<RegistrationCache>, public RegistrationLender {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0004'0002ULL, 0x7265'6763'6163'6865ULL};
  static constexpr const char* kName = "RegistrationCache";
  enum class Strategy { kOdp, kMonitor, kUncached, kUnmonitored };

  static Napi::Function Define(Napi::Env env);
  // createRegistrationCache(pd, {strategy, maxEntries, maxBytes})
  static Napi::Value Create(const Napi::CallbackInfo& info);

  explicit RegistrationCache(const Napi::CallbackInfo& info);
  ~RegistrationCache() override { Close(CloseMode::kQuiet); }

  // A valid cached entry covering [start, end) with at least `access`, or nullptr (dropping stale ones met).
  RegEntry* Find(uintptr_t start, uintptr_t end, uint32_t access);
  // A handle starts / stops using the entry.
  void Acquire(RegEntry* entry);
  void Release(RegEntry* entry) override;
  void RegionClosed(RegEntry* entry) override;
  // The memory [start, end) is about to be unmapped: its entries go now, in use or not (their regions
  // are revoked: the memory they name is going).
  void DropRange(uintptr_t start, uintptr_t end);

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Register(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  Napi::Value StrategyName(const Napi::CallbackInfo& info);

  Napi::Value Uncached(Napi::Env env, const ByteRange& range, uint32_t access, double* base);
  // A new entry for the range, or nullptr when it cannot be cached (limits, unwatchable memory).
  RegEntry* Insert(Napi::Env env, const ByteRange& range, uint32_t access);
  bool WatchRange(uintptr_t start, uintptr_t end, Watch* watch);
  bool Current(const RegEntry& entry) const;
  // Drops the entries overlapping [start, end) that are no longer valid.
  void DropInvalid(uintptr_t start, uintptr_t end);
  // Takes the entry out of the cache (counting it in `counter`); frees it once unused.
  void Drop(RegEntry* entry, uint64_t* counter);
  void Free(RegEntry* entry);
  // Takes the entry out of the cache now, whoever uses it.
  void Discard(RegEntry* entry);
  void LruPush(RegEntry* entry);
  void LruRemove(RegEntry* entry);
  bool OverLimits(size_t extra_bytes) const;

  Pd* pd_ = nullptr;
  Strategy strategy_ = Strategy::kUncached;
  bool monitor_acquired_ = false;
  uint32_t max_entries_ = 0;
  uint64_t max_bytes_ = 0;
  IntervalTree tree_;
  std::unordered_set<RegEntry*> entries_;  // every entry, cached or still in use after it was dropped
  RegEntry* newest_ = nullptr;
  RegEntry* oldest_ = nullptr;
  uint64_t bytes_ = 0;
  uint64_t in_use_ = 0;
  uint64_t hits_ = 0, misses_ = 0, invalidations_ = 0, evictions_ = 0, uncached_ = 0;
  std::shared_ptr<MemoryRegistry> registry_;
};

// Drops the entries over [start, end) in every cache of the environment (memory about to be unmapped).
void DropCachedRegistrations(MemoryRegistry& registry, uintptr_t start, uintptr_t end);

// monitorStatus(): the monitor's availability and counters.
Napi::Value MonitorStatus(const Napi::CallbackInfo& info);

}  // namespace rdma
