#include "core/uffd_monitor.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>

#include "core/watch_table.h"

namespace rdma {

namespace {

constexpr uintptr_t kPage = 4096;
constexpr uintptr_t kHugePage = 2u << 20;
constexpr uintptr_t kFaultRun = 16 * kPage;
constexpr uint64_t kRequiredFeatures = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_REMAP;
constexpr uint64_t kOptionalFeatures = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MISSING_HUGETLBFS;

struct State {
  std::mutex mutex;  // Acquire/Release only; the handler never takes it
  int users = 0;
  std::atomic<int> uffd{-1};
  int wake_fd = -1;
  pthread_t thread{};
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> lost_track_requests{0};
  // The source for UFFDIO_COPY into hugetlbfs: read-only anonymous memory, zeros without using any.
  const void* zero_huge = nullptr;
  std::atomic<uint64_t> unmap_events{0}, remove_events{0}, remap_events{0}, faults{0}, lost_track{0};
};

State& S() {
  static State* state = new State();  // never destroyed: the handler may outlive static destructors
  return *state;
}

int OpenUffd() {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd >= 0 || errno != EPERM) return fd;
  // Without CAP_SYS_PTRACE and with vm.unprivileged_userfaultfd=0, /dev/userfaultfd may still be open to
  // us. (UFFD_USER_MODE_ONLY would be accepted too, but kernel-mode faults in registered ranges, as from
  // read(2) or ibv_reg_mr, would then fail: not a monitor we can use.)
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) {
    errno = EPERM;
    return -1;
  }
  fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
  int err = errno;
  close(dev);
  errno = err;
  return fd;
}

// Opens a userfaultfd and enables the events; returns the fd or -errno.
int OpenMonitorFd() {
  for (uint64_t features : {kRequiredFeatures | kOptionalFeatures, kRequiredFeatures}) {
    int fd = OpenUffd();
    if (fd < 0) return -errno;
    uffdio_api api = {};
    api.api = UFFD_API;
    api.features = features;
    if (ioctl(fd, UFFDIO_API, &api) == 0) return fd;
    int err = errno;
    close(fd);
    if (err != EINVAL) return -err;
  }
  return -EOPNOTSUPP;
}

void CloseUffd() {
  int fd = S().uffd.exchange(-1);
  // Closing unregisters every range and wakes every waiting fault and event producer.
  if (fd >= 0) close(fd);
}

void Ring(int fd) {
  uint64_t one = 1;
  ssize_t written = write(fd, &one, sizeof one);  // an eventfd counter cannot overflow from a few writes
  (void)written;
}

void LoseTrack() {
  WatchTable::Get().InvalidateAll();
  S().lost_track.fetch_add(1, std::memory_order_relaxed);
}

int CopyZeros(int uffd, uintptr_t dst, const void* src, uintptr_t length) {
  uffdio_copy copy = {};
  copy.dst = dst;
  copy.src = reinterpret_cast<uintptr_t>(src);
  copy.len = length;
  return ioctl(uffd, UFFDIO_COPY, &copy) == 0 ? 0 : errno;
}

// Maps the zero page over up to `length` bytes from dst; returns 0 when dst's page got it, else errno.
int ZeroPages(int uffd, uintptr_t dst, uintptr_t length) {
  uffdio_zeropage zero = {};
  zero.range.start = dst;
  zero.range.len = length;
  if (ioctl(uffd, UFFDIO_ZEROPAGE, &zero) == 0) return 0;
  // Stopped early at a present page (EAGAIN with progress): the faulting page is among those done.
  return errno == EAGAIN && zero.zeropage >= static_cast<int64_t>(kPage) ? 0 : errno;
}

void Wake(int uffd, uintptr_t start, uintptr_t length) {
  uffdio_range range = {start, length};
  ioctl(uffd, UFFDIO_WAKE, &range);
}

// Gives the faulting thread what the kernel would have: zeros. A missing page rarely comes alone (a fresh
// or discarded range is usually touched in order), and every fault costs a round trip through this thread,
// so the zero page is mapped over the next missing pages too, up to a run of kFaultRun bytes (a write to
// them later breaks the zero page as usual, without us). hugetlbfs has no UFFDIO_ZEROPAGE: a zeroed huge
// page is copied there.
void ResolveFault(int uffd, uintptr_t address) {
  S().faults.fetch_add(1, std::memory_order_relaxed);
  uintptr_t page = address & ~(kPage - 1);
  uintptr_t start = page, length = kPage;
  int err = ZeroPages(uffd, page, kFaultRun);
  if (err == ENOENT) err = ZeroPages(uffd, page, kPage);  // the run crossed the end of the mapping
  if (err == EINVAL) {
    start = address & ~(kHugePage - 1);
    length = kHugePage;
    err = CopyZeros(uffd, start, S().zero_huge, kHugePage);
  }
  switch (err) {
    case 0:
      return;
    case EEXIST:  // resolved meanwhile (another thread's fault, or populated)
    case ENOENT:  // the mapping went away
    case ESRCH:   // so did the process
      Wake(uffd, start, length);
      return;
    case EAGAIN:
      // The mapping is changing under an event we have read; its producer clears that as soon as it runs.
      // The woken thread faults again and we get another try.
      sched_yield();
      Wake(uffd, start, length);
      return;
    default: {
      // Unexpected (a page size we cannot fill): stop serving the range so the thread is not stuck, and
      // since it is no longer watched, trust nothing.
      uffdio_range range = {page, kPage};
      ioctl(uffd, UFFDIO_UNREGISTER, &range);
      LoseTrack();
      Wake(uffd, start, length);
    }
  }
}

void* HandlerMain(void*) {
  State& s = S();
  WatchTable& table = WatchTable::Get();
  int uffd = s.uffd.load();
  uffd_msg messages[64];
  uintptr_t faults[64];
  pollfd fds[2] = {{uffd, POLLIN, 0}, {s.wake_fd, POLLIN, 0}};
  while (!s.stop.load(std::memory_order_acquire)) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      LoseTrack();
      break;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t value;
      ssize_t consumed = read(s.wake_fd, &value, sizeof value);  // only a doorbell: the flags say why
      (void)consumed;
      if (s.stop.load(std::memory_order_acquire)) break;
    }
    table.BeginBatch();
    for (uint32_t n = s.lost_track_requests.exchange(0); n > 0; n--) LoseTrack();
    ssize_t bytes = read(uffd, messages, sizeof messages);
    bool broken = bytes < 0 && errno != EAGAIN && errno != EINTR;
    size_t count = bytes > 0 ? static_cast<size_t>(bytes) / sizeof(uffd_msg) : 0, nfaults = 0;
    for (size_t i = 0; i < count; i++) {
      const uffd_msg& m = messages[i];
      switch (m.event) {
        case UFFD_EVENT_UNMAP:
          table.InvalidateRange(m.arg.remove.start, m.arg.remove.end);
          s.unmap_events.fetch_add(1, std::memory_order_relaxed);
          break;
        case UFFD_EVENT_REMOVE:
          table.InvalidateRange(m.arg.remove.start, m.arg.remove.end);
          s.remove_events.fetch_add(1, std::memory_order_relaxed);
          break;
        case UFFD_EVENT_REMAP:
          table.InvalidateRange(m.arg.remap.from, m.arg.remap.from + m.arg.remap.len);
          table.InvalidateRange(m.arg.remap.to, m.arg.remap.to + m.arg.remap.len);
          s.remap_events.fetch_add(1, std::memory_order_relaxed);
          break;
        case UFFD_EVENT_PAGEFAULT:
          faults[nfaults++] = static_cast<uintptr_t>(m.arg.pagefault.address);
          break;
        default:
          LoseTrack();
      }
    }
    if (broken) LoseTrack();
    table.EndBatch();
    // Faults are resolved outside the batch: UFFDIO_COPY may wait for the mmap lock.
    for (size_t i = 0; i < nfaults; i++) ResolveFault(uffd, faults[i]);
    if (broken) break;
  }
  // Leaving with ranges still registered would stall their faults and unmaps: let them go.
  CloseUffd();
  return nullptr;
}

const void* ZeroSource(size_t length) {
  void* memory = mmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return memory == MAP_FAILED ? nullptr : memory;
}

}  // namespace

int UffdMonitor::Availability() {
  static int error = [] {
    int fd = OpenMonitorFd();
    if (fd < 0) return -fd;
    close(fd);
    return 0;
  }();
  return error;
}

int UffdMonitor::Acquire() {
  State& s = S();
  // In a fork()ed child the lock may have been inherited held, and nothing can be watched anyway.
  if (WatchTable::Get().forked()) return ECHILD;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.users > 0) {
    s.users++;
    return 0;
  }
  if (s.zero_huge == nullptr) s.zero_huge = ZeroSource(kHugePage);
  if (s.zero_huge == nullptr) return ENOMEM;
  int fd = OpenMonitorFd();
  if (fd < 0) return -fd;
  s.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s.wake_fd < 0) {
    int err = errno;
    close(fd);
    return err;
  }
  s.uffd.store(fd);
  s.stop.store(false);
  // The handler must never run a signal handler (which could touch anything): block them all in it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&s.thread, nullptr, HandlerMain, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) {
    CloseUffd();
    close(s.wake_fd);
    return err;
  }
  s.users = 1;
  return 0;
}

void UffdMonitor::Release() {
  State& s = S();
  if (WatchTable::Get().forked()) {
    // A fork()ed child has no handler thread (and a single thread: no lock needed); only the fds are left.
    if (s.users > 0 && --s.users == 0) {
      CloseUffd();
      close(s.wake_fd);
    }
    return;
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.users == 0 || --s.users > 0) return;
  s.stop.store(true, std::memory_order_release);
  Ring(s.wake_fd);
  pthread_join(s.thread, nullptr);
  CloseUffd();
  close(s.wake_fd);
  s.wake_fd = -1;
  // Nothing is watched by the kernel any more.
  WatchTable::Get().InvalidateAll();
}

int UffdMonitor::Register(uintptr_t start, uintptr_t end) {
  int fd = S().uffd.load();
  if (fd < 0) return ENODEV;  // the handler has failed and let everything go
  uffdio_register reg = {};
  reg.range.start = start;
  reg.range.len = end - start;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  return ioctl(fd, UFFDIO_REGISTER, &reg) == 0 ? 0 : errno;
}

// Why WatchTable::Valid() is not enough. munmap (and mmap or mremap over a range) removes the mapping and
// releases the mmap lock *before* it queues the UNMAP event and waits for it to be read
// (userfaultfd_unmap_complete runs after mmap_write_unlock). In that window the address range is free: another
// thread can map new memory there, and its lookup would find the old entry's generation untouched, the
// event not even read (the handler's batch is not open yet). Unmaps by the looking-up thread itself are
// safe (its munmap returned only after the read); those of V8's background threads, workers and native
// threads are not. Measured on rxe before this check: 31 of 158 fresh 4 MiB Buffers that landed where a
// collected one had been hit its registration, and 27 of 200 lookups racing a native thread's mmap.
//
// What closes the window: the kernel counts, per userfaultfd, the non-cooperative events in flight
// (ctx->mmap_changing). It is raised under the mmap write lock before the mapping is removed (UNMAP, REMAP)
// or the pages dropped (REMOVE), and lowered only after the event has been read; while it is raised, every
// UFFDIO_ZEROPAGE/COPY on the fd fails with EAGAIN. So a ZEROPAGE (or a COPY, in hugetlbfs) on a page of the
// entry that does not fail with EAGAIN proves:
// - every change made before our call has had its event read (the new memory we are looking up was mapped
//   after the unmap that freed its address, under the same mmap lock, so that unmap is "before");
// - every such read happened after the handler's BeginBatch (it opens the batch before read()), so the
//   Valid() that follows waits for that batch and sees its invalidation (the store order through the kernel's
//   wait-queue lock and the counter is x86-64 TSO's; this is the only architecture rdma_rxe is tested on here);
// - and the VMA at `address` is still registered with us (ENOENT when it was replaced: a stale entry).
// The page is present (pinned) in a valid entry, so the ioctl answers EEXIST and changes nothing; if it is
// missing, a zero page is mapped, which is what the process would have read there anyway.
bool UffdMonitor::CaughtUp(uintptr_t address) {
  State& s = S();
  int uffd = s.uffd.load(std::memory_order_acquire);
  if (uffd < 0 || WatchTable::Get().forked()) return false;  // a child's fd would act on the parent's mm
  uintptr_t page = address & ~(kPage - 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  for (;;) {
    int err = ZeroPages(uffd, page, kPage);
    if (err == EINVAL) err = CopyZeros(uffd, address & ~(kHugePage - 1), s.zero_huge, kHugePage);  // hugetlbfs
    if (err == 0 || err == EEXIST) return true;
    // EAGAIN: some change is in flight (not necessarily to this range); the handler reads it within
    // moments. Waiting beats dropping a valid entry, up to a bound: the handler may be gone.
    if (err != EAGAIN || std::chrono::steady_clock::now() > deadline) return false;
    sched_yield();
  }
}

MonitorStats UffdMonitor::Stats() {
  State& s = S();
  MonitorStats stats;
  stats.running = s.uffd.load() >= 0;
  stats.error = Availability();
  stats.unmap_events = s.unmap_events.load();
  stats.remove_events = s.remove_events.load();
  stats.remap_events = s.remap_events.load();
  stats.faults = s.faults.load();
  stats.lost_track = s.lost_track.load();
  return stats;
}

void UffdMonitor::SimulateLostTrack() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.users == 0) return;
  s.lost_track_requests.fetch_add(1);
  Ring(s.wake_fd);
}

}  // namespace rdma
