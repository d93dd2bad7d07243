// Tests of the C core of the registration cache that need no RDMA device: the interval tree against a
// brute-force model, and the userfaultfd monitor with the watch table against real mapping changes.
// Built and run by test/unit/native-core.test.ts; prints one line per check, exits non-zero on failure.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "core/interval_tree.h"
#include "core/uffd_monitor.h"
#include "core/vma.h"
#include "core/watch_table.h"

using namespace rdma;

static int failures = 0;
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
      failures++;                                                                \
    }                                                                            \
  } while (0)

constexpr size_t kPage = 4096;

static void TestIntervalTree() {
  std::mt19937_64 rng(42);
  IntervalTree tree;
  std::vector<IntervalNode> nodes(2000);
  std::set<IntervalNode*> live;
  for (int round = 0; round < 20000; round++) {
    IntervalNode* n = &nodes[rng() % nodes.size()];
    if (live.count(n)) {
      tree.Erase(n);
      live.erase(n);
    } else {
      n->start = rng() % 100000;
      n->end = n->start + 1 + rng() % 5000;
      tree.Insert(n);
      live.insert(n);
    }
    CHECK(tree.size() == live.size());
    uintptr_t a = rng() % 105000, b = a + 1 + rng() % 3000;
    std::set<IntervalNode*> covering, overlapping, expect_cover, expect_overlap;
    tree.ForEachCovering(a, b, [&](IntervalNode* x) { return covering.insert(x).second; });
    tree.ForEachOverlap(a, b, [&](IntervalNode* x) { return overlapping.insert(x).second; });
    for (IntervalNode* x : live) {
      if (x->start <= a && x->end >= b) expect_cover.insert(x);
      if (x->start < b && x->end > a) expect_overlap.insert(x);
    }
    CHECK(covering == expect_cover);
    CHECK(overlapping == expect_overlap);
  }
  int visited = 0;  // early stop
  tree.ForEachOverlap(0, 200000, [&](IntervalNode*) { return ++visited < 3; });
  CHECK(visited == 3 || tree.size() < 3);
  std::printf("ok interval tree: covering and overlap queries match a brute-force model over 20000 changes\n");
}

static uint8_t* MapPages(size_t pages, void* at = nullptr) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (at != nullptr ? MAP_FIXED : 0);
  void* p = mmap(at, pages * kPage, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(2);
  }
  return static_cast<uint8_t*>(p);
}

// Publishes and registers a range as the cache does; returns the watch.
static Watch WatchRange(uint8_t* p, size_t length) {
  Watch w;
  uintptr_t start = reinterpret_cast<uintptr_t>(p);
  if (!WatchTable::Get().Publish(start, start + length, &w)) std::exit(3);
  int err = UffdMonitor::Register(start, start + length);
  if (err != 0) {
    std::printf("FAIL UFFDIO_REGISTER: %s\n", std::strerror(err));
    std::exit(3);
  }
  return w;
}

static void TestEvents() {
  WatchTable& table = WatchTable::Get();
  // munmap: invalid as soon as munmap returns (the handler may not have applied it yet: Valid waits).
  uint8_t* a = MapPages(4);
  uint8_t* b = MapPages(4);
  Watch wa = WatchRange(a, 4 * kPage), wb = WatchRange(b, 4 * kPage);
  CHECK(table.Valid(wa) && table.Valid(wb));
  munmap(a + kPage, kPage);
  CHECK(!table.Valid(wa));
  CHECK(table.Valid(wb));
  table.Retire(&wa);
  // mmap MAP_FIXED over a watched range is an unmap too.
  MapPages(4, b);
  CHECK(!table.Valid(wb));
  table.Retire(&wb);
  // madvise(DONTNEED): REMOVE.
  uint8_t* c = MapPages(4);
  std::memset(c, 7, 4 * kPage);
  Watch wc = WatchRange(c, 4 * kPage);
  madvise(c + 2 * kPage, kPage, MADV_DONTNEED);
  CHECK(!table.Valid(wc));
  table.Retire(&wc);
  // mremap moving: REMAP.
  uint8_t* d = MapPages(4);
  std::memset(d, 9, 4 * kPage);
  Watch wd = WatchRange(d, 4 * kPage);
  uint8_t* target = MapPages(4);
  void* moved = mremap(d, 4 * kPage, 4 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  CHECK(moved == target);
  CHECK(!table.Valid(wd));
  CHECK(static_cast<uint8_t*>(moved)[0] == 9);
  table.Retire(&wd);
  munmap(moved, 4 * kPage);
  munmap(c, 4 * kPage);
  munmap(b, 4 * kPage);
  munmap(a, 4 * kPage);
  MonitorStats stats = UffdMonitor::Stats();
  CHECK(stats.unmap_events >= 2 && stats.remove_events >= 1 && stats.remap_events >= 1);
  std::printf("ok events: munmap, mmap MAP_FIXED, madvise DONTNEED and mremap invalidate watched ranges, only those\n");
}

static void TestFaults() {
  // A registered range with missing pages: reads and writes from this thread and from others, and a
  // syscall writing into it, are all served by the handler with zeros.
  uint8_t* p = MapPages(16);
  Watch w = WatchRange(p, 16 * kPage);
  CHECK(p[0] == 0 && p[5 * kPage + 1] == 0);
  p[kPage] = 1;
  CHECK(p[kPage] == 1);
  std::thread other([&] {
    for (size_t i = 2; i < 16; i++) p[i * kPage + 3] = static_cast<uint8_t>(i);
  });
  other.join();
  for (size_t i = 2; i < 16; i++) CHECK(p[i * kPage + 3] == i && p[i * kPage] == 0);
  int fds[2];
  CHECK(pipe(fds) == 0);
  CHECK(write(fds[1], "abc", 3) == 3);
  madvise(p, kPage, MADV_DONTNEED);  // missing again; read(2) faults in kernel mode
  CHECK(read(fds[0], p, 3) == 3 && std::memcmp(p, "abc", 3) == 0);
  close(fds[0]);
  close(fds[1]);
  uint64_t faults = UffdMonitor::Stats().faults;
  CHECK(faults >= 2 && faults < 16);  // one fault maps a run of zero pages
  WatchTable::Get().Retire(&w);
  munmap(p, 16 * kPage);
  // A fault near the end of a mapping: the run would cross it and is cut to the one page.
  uint8_t* q = MapPages(3);
  Watch wq = WatchRange(q, 3 * kPage);
  q[2 * kPage + 7] = 5;
  CHECK(q[2 * kPage + 7] == 5 && q[0] == 0);
  WatchTable::Get().Retire(&wq);
  munmap(q, 3 * kPage);
  std::printf("ok faults: missing pages in registered ranges are filled with zeros for user and kernel accesses\n");
}

// The race the batch sequence closes: munmap returns once the handler has read the event, maybe before it
// applied it. Many threads unmap and immediately check; no check may see the old watch as valid.
static void TestUnmapThenCheck() {
  std::atomic<int> stale{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; i++) {
        uint8_t* p = MapPages(2);
        p[0] = 1;
        Watch w = WatchRange(p, 2 * kPage);
        munmap(p, 2 * kPage);
        if (WatchTable::Get().Valid(w)) stale++;
        WatchTable::Get().Retire(&w);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(stale.load() == 0);
  std::printf("%s 2000 unmaps from 4 threads: %d left their watch valid after munmap returned\n",
              stale.load() == 0 ? "ok" : "FAIL", stale.load());
}

static void TestForkAndLostTrack() {
  uint8_t* p = MapPages(2);
  Watch w = WatchRange(p, 2 * kPage);
  pid_t child = fork();
  if (child == 0) {
    Watch other;
    bool refused = !WatchTable::Get().Valid(w) && !WatchTable::Get().Publish(1 << 20, 2 << 20, &other) &&
                   UffdMonitor::Acquire() != 0;
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(WatchTable::Get().Valid(w));  // the parent is unaffected
  UffdMonitor::SimulateLostTrack();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (WatchTable::Get().Valid(w) && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(!WatchTable::Get().Valid(w));
  WatchTable::Get().Retire(&w);
  munmap(p, 2 * kPage);
  std::printf("ok fork: the child trusts nothing and watches nothing; losing track invalidates everything\n");
}

static void TestMappingKinds() {
  uint8_t* p = MapPages(4);
  auto at = [](void* q) { return reinterpret_cast<uintptr_t>(q); };
  CHECK(PrivatelyMapped(at(p), at(p) + 4 * kPage));
  void* shared = mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(!PrivatelyMapped(at(shared), at(shared) + kPage));
  munmap(p + kPage, kPage);  // a hole
  CHECK(!PrivatelyMapped(at(p), at(p) + 4 * kPage));
  CHECK(PrivatelyMapped(at(p) + 2 * kPage, at(p) + 4 * kPage));
  munmap(shared, 2 * kPage);
  munmap(p, 4 * kPage);
  std::printf("ok mapping kinds: private ranges pass, shared ones and holes do not\n");
}

int main() {
  TestIntervalTree();
  TestMappingKinds();
  int err = UffdMonitor::Availability();
  if (err != 0) {
    std::printf("userfaultfd unavailable here (%s): monitor checks not run\n", std::strerror(err));
    return failures == 0 ? 77 : 1;
  }
  CHECK(UffdMonitor::Acquire() == 0);
  CHECK(UffdMonitor::Acquire() == 0);  // reference-counted
  UffdMonitor::Release();
  TestEvents();
  TestFaults();
  TestUnmapThenCheck();
  TestForkAndLostTrack();
  UffdMonitor::Release();
  CHECK(!UffdMonitor::Stats().running);
  CHECK(WatchTable::Get().active_count() == 0);
  return failures == 0 ? 0 : 1;
}
