// The memory monitor: one userfaultfd per process, shared (reference-counted) by every registration cache
// of every JS thread, with one handler thread. Ranges the caches watch are registered with the uffd in
// MISSING mode, which is what makes the kernel report UNMAP (munmap, mmap MAP_FIXED over them, mremap
// shrinking), REMOVE (madvise DONTNEED/REMOVE) and REMAP (mremap moving) events for them; the handler
// turns each event into an invalidation of the WatchTable.
//
// Rules the handler keeps, because the thread that changed the mapping sleeps in the kernel until the
// handler has read its event, holding whatever locks it holds:
// - it takes no lock and allocates nothing (its buffers are on its stack, the table is lock-free);
// - it never blocks while a batch of events is read but not applied (see WatchTable::BeginBatch);
// - it resolves every page fault in a registered range with zeros (the zero page; a zeroed copy in
//   hugetlbfs), as the kernel would have, so no thread stalls; a fault it cannot resolve is unregistered
//   and everything is invalidated.
// The kernel never drops an event (the producer waits until it is read); anything the handler cannot make
// sense of (a read error, an unknown message) invalidates every watch instead of risking a stale one.
#pragma once
#include <cstdint>

namespace rdma {

struct MonitorStats {
  bool running;
  int error;  // why the monitor is unavailable (errno), 0 when it can run
  uint64_t unmap_events, remove_events, remap_events, faults, lost_track;
};

class UffdMonitor {
 public:
  // 0 when a userfaultfd with the events above can be opened here, else the errno that prevents it.
  static int Availability();
  // Starts the handler for the first user; 0 or errno. Thread-safe.
  static int Acquire();
  static void Release();
  // Registers [start, end) (page-aligned) for events; 0 or errno (EINVAL: not anonymous, shmem or
  // hugetlbfs memory, or not aligned to its huge pages; EBUSY: another userfaultfd has it).
  static int Register(uintptr_t start, uintptr_t end);
  // Returns once the handler has been handed every change to this process's mappings made before the call
  // (so WatchTable::Valid() afterwards sees them applied), with whether the page at `address`, in a range
  // registered here, still belongs to that registration. False also when it cannot tell: trust nothing.
  static bool CaughtUp(uintptr_t address);
  static MonitorStats Stats();
  // Test hook: makes the handler take the path it takes when it loses track of events.
  static void SimulateLostTrack();
};

}  // namespace rdma
