#include "memory/registration_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/uffd_monitor.h"
#include "core/vma.h"
#include "memory/alloc.h"
#include "verbs/mr.h"
#include "verbs/pd.h"

namespace rdma {

constexpr uintptr_t kPage = 4096;
constexpr uintptr_t kHugePage = 2u << 20;

static RegEntry* EntryOf(IntervalNode* node) { return reinterpret_cast<RegEntry*>(node); }

Napi::Function RegistrationCache::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {InstanceMethod<&RegistrationCache::Register>("register"),
                      InstanceMethod<&RegistrationCache::Stats>("stats"),
                      InstanceMethod<&RegistrationCache::Flush>("flush"),
                      InstanceAccessor<&RegistrationCache::StrategyName>("strategy"),
                      CloseMethod(),
                      ClosedGetter()});
}

RegistrationCache::RegistrationCache(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RegistrationCache>(info), Resource(info.Env(), "registration cache") {
  CheckConstructToken(info, "pd.createRegistrationCache()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

static RegistrationCache::Strategy ParseStrategy(Napi::Env env, Napi::Value value) {
  std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (name == "odp") return RegistrationCache::Strategy::kOdp;
  if (name == "monitor") return RegistrationCache::Strategy::kMonitor;
  if (name == "uncached") return RegistrationCache::Strategy::kUncached;
  if (name == "unsafe-unmonitored") return RegistrationCache::Strategy::kUnmonitored;
  ThrowType(env, "strategy must be 'odp', 'monitor', 'uncached' or 'unsafe-unmonitored'");
}

Napi::Value RegistrationCache::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pd* pd = UnwrapOpen<Pd>(info[0], "pd");
  Napi::Object options = ToObject(info[1], "options");
  Strategy strategy = ParseStrategy(env, options.Get("strategy"));
  uint32_t max_entries = PropU32(options, "maxEntries", 1024, WatchTable::kCapacity);
  uint64_t max_bytes = PropU64(options, "maxBytes", uint64_t{1} << 30);
  if (max_entries == 0) ThrowRange(env, "maxEntries must be at least 1");
  if (strategy == Strategy::kMonitor) {
    int err = UffdMonitor::Acquire();
    if (err != 0) ThrowVerb(env, "userfaultfd", err);
  }
  Napi::Object object = AddonData::Get(env).registration_cache_class.New({ConstructToken(env)});
  RegistrationCache* self = Unwrap(object);
  self->pd_ = pd;
  self->strategy_ = strategy;
  self->monitor_acquired_ = strategy == Strategy::kMonitor;
  self->max_entries_ = max_entries;
  self->max_bytes_ = max_bytes;
  self->registry_ = AddonData::Get(env).memory;
  self->registry_->caches.push_back(self);
  self->DependOn(info[0].As<Napi::Object>(), pd);
  return object;
}

int RegistrationCache::Destroy(CloseMode) {
  if (registry_ == nullptr) return 0;
  while (!entries_.empty()) Discard(*entries_.begin());
  auto& caches = registry_->caches;
  caches.erase(std::remove(caches.begin(), caches.end(), this), caches.end());
  registry_.reset();
  if (monitor_acquired_) UffdMonitor::Release();
  monitor_acquired_ = false;
  return 0;
}

// storage (a Float64Array of at least one element) for what register() says besides its region.
static double* RegisterOut(Napi::Env env, Napi::Value value) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_float64_array || length < 1 || data == nullptr) {
    ThrowType(env, "out must be a Float64Array of at least one element");
  }
  return static_cast<double*>(data);
}

// register(arrayBuffer, offset, length, access, out: Float64Array) → a memory region. out[0] is the
// range's offset in the region when it is a cache entry's (shared by every user of the entry), or -1 for
// a region of its own (uncached), which close() deregisters.
Napi::Value RegistrationCache::Register(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteRange range = ToByteRange(info[0], info[1], info[2]);
  uint32_t access = ToU32(info[3], "access");
  double* base = RegisterOut(env, info[4]);
  CheckOpen(env);
  if (strategy_ == Strategy::kOdp) access |= IBV_ACCESS_ON_DEMAND;
  if (strategy_ == Strategy::kUncached || range.length == 0) return Uncached(env, range, access, base);
  uintptr_t start = reinterpret_cast<uintptr_t>(range.data), end = start + range.length;
  RegEntry* entry = Find(start, end, access);
  if (entry != nullptr) {
    hits_++;
  } else {
    misses_++;
    entry = Insert(env, range, access);
    if (entry == nullptr) return Uncached(env, range, access, base);
  }
  Acquire(entry);
  entry->region->Follow(range.buffer);
  *base = static_cast<double>(start - entry->node.start);
  return entry->region_js.Value();
}

RegEntry* RegistrationCache::Find(uintptr_t start, uintptr_t end, uint32_t access) {
  RegEntry* hit = nullptr;
  std::vector<RegEntry*> stale;
  WatchTable& table = WatchTable::Get();
  tree_.ForEachCovering(start, end, [&](IntervalNode* node) {
    RegEntry* entry = EntryOf(node);
    if (!table.Valid(entry->watch)) {
      stale.push_back(entry);
      return true;
    }
    if ((entry->access & access) != access) return true;
    if (!Current(*entry)) {
      stale.push_back(entry);
      return true;
    }
    hit = entry;
    return false;
  });
  for (RegEntry* entry : stale) Drop(entry, &invalidations_);
  return hit;
}

// A candidate for a hit, checked again after making sure no unmap is still on its way to the monitor
// (Valid() alone misses those; see UffdMonitor::CaughtUp). One system call per hit, none per miss.
bool RegistrationCache::Current(const RegEntry& entry) const {
  if (strategy_ != Strategy::kMonitor) return true;
  return UffdMonitor::CaughtUp(entry.node.start) && WatchTable::Get().Valid(entry.watch);
}

Napi::Value RegistrationCache::Uncached(Napi::Env env, const ByteRange& range, uint32_t access, double* base) {
  uncached_++;
  *base = -1;
  ibv_mr* mr = ibv_reg_mr(pd_->handle(), range.data, range.length, static_cast<int>(access));
  if (mr == nullptr) ThrowVerb(env, "ibv_reg_mr", errno);
  return Mr::Wrap(env, Value(), this, pd_, range, mr);
}

void RegistrationCache::Acquire(RegEntry* entry) {
  if (entry->users++ == 0) {
    LruRemove(entry);
    in_use_++;
  }
}

void RegistrationCache::Release(RegEntry* entry) {
  if (entry->users == 0 || --entry->users > 0) return;
  in_use_--;
  if (!entry->cached) {
    Free(entry);
  } else if (!WatchTable::Get().Valid(entry->watch)) {
    Drop(entry, &invalidations_);  // stale pages stay pinned until this deregisters them
  } else {
    LruPush(entry);
    while (OverLimits(0) && oldest_ != nullptr) Drop(oldest_, &evictions_);
  }
}

bool RegistrationCache::OverLimits(size_t extra_bytes) const {
  return tree_.size() + (extra_bytes > 0 ? 1 : 0) > max_entries_ || bytes_ + extra_bytes > max_bytes_;
}

RegEntry* RegistrationCache::Insert(Napi::Env env, const ByteRange& range, uint32_t access) {
  uintptr_t start = reinterpret_cast<uintptr_t>(range.data), end = start + range.length;
  // Stale entries over the range first: they hold pinned pages and count against the limits.
  DropInvalid(start, end);
  if (range.length > max_bytes_) return nullptr;
  while (OverLimits(range.length) && oldest_ != nullptr) Drop(oldest_, &evictions_);
  if (OverLimits(range.length)) return nullptr;  // everything left is in use

  auto entry = std::make_unique<RegEntry>();
  WatchTable& table = WatchTable::Get();
  if (!WatchRange(start, end, &entry->watch)) return nullptr;
  ibv_mr* mr = ibv_reg_mr(pd_->handle(), range.data, range.length, static_cast<int>(access));
  if (mr == nullptr) {
    int err = errno;
    table.Retire(&entry->watch);
    ThrowVerb(env, "ibv_reg_mr", err);
  }
  if (!table.Valid(entry->watch)) {
    // The mapping changed while it was being pinned: what the MR holds may already be gone. Register the
    // memory as it is now, uncached.
    ibv_dereg_mr(mr);
    table.Retire(&entry->watch);
    return nullptr;
  }
  Napi::Object region;
  try {
    region = Mr::WrapEntry(env, pd_, range, mr, this, entry.get());
  } catch (...) {
    ibv_dereg_mr(mr);
    table.Retire(&entry->watch);
    throw;
  }
  entry->region = Mr::Unwrap(region);
  entry->region_js = Napi::Persistent(region);
  entry->mr = mr;
  entry->access = access;
  entry->node.start = start;
  entry->node.end = end;
  tree_.Insert(&entry->node);
  entries_.insert(entry.get());
  bytes_ += range.length;
  // When the JS buffer dies its memory may be reused for anything: this entry goes with it.
  range.buffer.AddFinalizer([](Napi::Env, Watch* watch) {
    WatchTable::Get().Invalidate(*watch);
    delete watch;
  }, new Watch(entry->watch));
  return entry.release();
}

// Watches the pages under [start, end): for the monitor, registered with userfaultfd, which needs whole
// pages of the mapping's page size (hugetlbfs: 2 MiB). False when the range cannot be watched.
bool RegistrationCache::WatchRange(uintptr_t start, uintptr_t end, Watch* watch) {
  WatchTable& table = WatchTable::Get();
  MappedBuffer* ours = MappedBuffer::Containing(env_, reinterpret_cast<void*>(start), end - start);
  uintptr_t page = ours != nullptr ? ours->page_size() : kPage;
  for (;;) {
    uintptr_t first = start & ~(page - 1), last = (end + page - 1) & ~(page - 1);
    // Registering part of a mapping splits it in the kernel (and mremap cannot move a split mapping):
    // our own buffers are registered whole. Only the published range invalidates this entry.
    uintptr_t from = ours != nullptr ? ours->address() : first;
    uintptr_t to = ours != nullptr ? ours->address() + ours->map_length() : last;
    if (strategy_ == Strategy::kMonitor) {
      // Present pages neither fault through the handler thread later nor while being pinned (an
      // optimisation: errors are harmless, e.g. for read-only memory).
      madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE);
    }
    if (!table.Publish(first, last, watch)) return false;
    if (strategy_ != Strategy::kMonitor) return true;
    // Shared memory can change through its file descriptor without an event: not ours to vouch for,
    // unless it is one of our buffers over a memfd sealed against shrinking (a shareable buffer, a segment
    // attachment): no one can truncate it, and unmaps here are events like any. What stays unseen is a
    // hole punched through a writable descriptor (fallocate, or MADV_REMOVE in another process): peers
    // given write access are trusted not to; read-only peers hold read-only descriptors and cannot.
    bool watchable = PrivatelyMapped(first, last) || (ours != nullptr && ours->SealedFile());
    int err = watchable ? UffdMonitor::Register(from, to) : EINVAL;
    if (err == 0) return true;
    table.Retire(watch);
    // Memory of another allocator may be hugetlbfs: try its alignment once.
    if (err != EINVAL || page == kHugePage) return false;
    page = kHugePage;
  }
}

void RegistrationCache::Drop(RegEntry* entry, uint64_t* counter) {
  if (entry->cached) {
    tree_.Erase(&entry->node);
    bytes_ -= entry->node.end - entry->node.start;
    entry->cached = false;
    (*counter)++;
  }
  if (entry->users == 0) {
    LruRemove(entry);
    Free(entry);
  }
}

void RegistrationCache::Free(RegEntry* entry) {
  entries_.erase(entry);
  if (Mr* region = entry->region) {
    entry->region = nullptr;
    region->Revoke();
  }
  entry->region_js.Reset();
  ibv_dereg_mr(entry->mr);
  WatchTable::Get().Retire(&entry->watch);
  delete entry;
}

void RegistrationCache::LruPush(RegEntry* entry) {
  entry->older = newest_;
  entry->newer = nullptr;
  if (newest_ != nullptr) newest_->newer = entry;
  newest_ = entry;
  if (oldest_ == nullptr) oldest_ = entry;
}

void RegistrationCache::LruRemove(RegEntry* entry) {
  if (entry->newer != nullptr) entry->newer->older = entry->older;
  else if (newest_ == entry) newest_ = entry->older;
  if (entry->older != nullptr) entry->older->newer = entry->newer;
  else if (oldest_ == entry) oldest_ = entry->newer;
  entry->newer = entry->older = nullptr;
}

void RegistrationCache::DropInvalid(uintptr_t start, uintptr_t end) {
  std::vector<RegEntry*> stale;
  WatchTable& table = WatchTable::Get();
  tree_.ForEachOverlap(start, end, [&](IntervalNode* node) {
    if (!table.Valid(EntryOf(node)->watch)) stale.push_back(EntryOf(node));
    return true;
  });
  for (RegEntry* entry : stale) Drop(entry, &invalidations_);
}

void RegistrationCache::DropRange(uintptr_t start, uintptr_t end) {
  std::vector<RegEntry*> overlapping;
  for (RegEntry* entry : entries_) {
    if (entry->node.start < end && start < entry->node.end) overlapping.push_back(entry);
  }
  for (RegEntry* entry : overlapping) Discard(entry);
}

void RegistrationCache::RegionClosed(RegEntry* entry) {
  entry->region = nullptr;  // closing already
  Discard(entry);
}

void RegistrationCache::Discard(RegEntry* entry) {
  if (entry->users > 0) {
    entry->users = 0;
    in_use_--;
  } else if (entry->cached) {
    LruRemove(entry);  // unused and cached: on the LRU list
  }
  if (entry->cached) {
    tree_.Erase(&entry->node);
    bytes_ -= entry->node.end - entry->node.start;
    entry->cached = false;
    invalidations_++;
  }
  Free(entry);
}

void DropCachedRegistrations(MemoryRegistry& registry, uintptr_t start, uintptr_t end) {
  for (RegistrationCache* cache : registry.caches) cache->DropRange(start, end);
}

// stats(): counters, after dropping the entries found invalid (so `entries` and `bytes` are what is usable).
Napi::Value RegistrationCache::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  DropInvalid(0, UINTPTR_MAX);
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("hits", static_cast<double>(hits_));
  stats.Set("misses", static_cast<double>(misses_));
  stats.Set("invalidations", static_cast<double>(invalidations_));
  stats.Set("evictions", static_cast<double>(evictions_));
  stats.Set("uncached", static_cast<double>(uncached_));
  stats.Set("entries", static_cast<double>(tree_.size()));
  stats.Set("bytes", static_cast<double>(bytes_));
  stats.Set("inUse", static_cast<double>(in_use_));
  return stats;
}

// flush(): deregisters every unused entry.
Napi::Value RegistrationCache::Flush(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  while (oldest_ != nullptr) Drop(oldest_, &evictions_);
  return info.Env().Undefined();
}

Napi::Value RegistrationCache::StrategyName(const Napi::CallbackInfo& info) {
  static const char* const names[] = {"odp", "monitor", "uncached", "unsafe-unmonitored"};
  return Napi::String::New(info.Env(), names[static_cast<int>(strategy_)]);
}

Napi::Value MonitorStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MonitorStats stats = UffdMonitor::Stats();
  Napi::Object result = Napi::Object::New(env);
  result.Set("available", stats.error == 0);
  if (stats.error != 0) result.Set("error", ErrnoName(stats.error));
  result.Set("running", stats.running);
  result.Set("unmapEvents", static_cast<double>(stats.unmap_events));
  result.Set("removeEvents", static_cast<double>(stats.remove_events));
  result.Set("remapEvents", static_cast<double>(stats.remap_events));
  result.Set("faults", static_cast<double>(stats.faults));
  result.Set("lostTrack", static_cast<double>(stats.lost_track));
  result.Set("watched", static_cast<double>(WatchTable::Get().active_count()));
  return result;
}

}  // namespace rdma
