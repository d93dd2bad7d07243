#include "testing/hooks.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "core/uffd_monitor.h"
#include "memory/registration_cache.h"
#include "verbs/flow.h"
#include "verbs/mr.h"
#include "verbs/pd.h"
#include "verbs/qp.h"

namespace rdma {

static uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// forkProbe(mr): fork()s; the child reports whether the cached registration behind `mr` still looked
// valid to it, and whether it could watch memory or start a monitor, then exits at once.
static Napi::Value ForkProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mr* mr = UnwrapOpen<Mr>(info[0], "mr");
  if (mr->entry() == nullptr) ThrowType(env, "mr must be a cached registration");
  const Watch watch_of_entry = mr->entry()->watch;
  const uintptr_t start = mr->entry()->node.start, end = mr->entry()->node.end;
  WatchTable& table = WatchTable::Get();
  bool parent_valid = table.Valid(watch_of_entry);
  pid_t child = fork();
  if (child < 0) ThrowVerb(env, "fork", errno);
  if (child == 0) {
    // Only async-signal-safe work here: the other threads of the process do not exist in the child.
    Watch watch;
    int code = (table.Valid(watch_of_entry) ? 1 : 0) | (table.Publish(start, end, &watch) ? 2 : 0) |
               (UffdMonitor::Acquire() == 0 ? 4 : 0);
    _exit(code);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status)) ThrowVerb(env, "waitpid", ECHILD);
  int code = WEXITSTATUS(status);
  Napi::Object result = Napi::Object::New(env);
  result.Set("parentValid", parent_valid);
  result.Set("childValid", (code & 1) != 0);
  result.Set("childCouldWatch", (code & 2) != 0);
  result.Set("childCouldMonitor", (code & 4) != 0);
  return result;
}

// simulateLostTrack(): the monitor's handler invalidates everything, as when it cannot trust its events.
static Napi::Value SimulateLostTrack(const Napi::CallbackInfo& info) {
  UffdMonitor::SimulateLostTrack();
  return info.Env().Undefined();
}

// An ArrayBuffer over 4096 bytes of `fd` mapped with `prot`/`flags`, unmapped when it is collected.
static Napi::Value MapForTest(Napi::Env env, int fd, int prot, int flags) {
  void* memory = mmap(nullptr, 4096, prot, flags, fd, 0);
  int err = errno;
  close(fd);
  if (memory == MAP_FAILED) ThrowVerb(env, "mmap", err);
  napi_value view;
  auto unmap = [](napi_env, void* data, void*) { munmap(data, 4096); };
  if (napi_create_external_arraybuffer(env, memory, 4096, unmap, nullptr, &view) != napi_ok) {
    munmap(memory, 4096);
    throw Napi::Error::New(env);
  }
  return Napi::Value(env, view);
}

// mapFile(path): the file's first page, mapped private and read-only: file-backed memory, which
// userfaultfd cannot watch.
static Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "path must be a string");
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowVerb(env, "open", errno);
  return MapForTest(env, fd, PROT_READ, MAP_PRIVATE);
}

// mapShared(): a page of a memfd mapped shared: memory whose pages its fd can change without an event.
static Napi::Value MapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = memfd_create("rdma-node-test", MFD_CLOEXEC);
  if (fd < 0) ThrowVerb(env, "memfd_create", errno);
  if (ftruncate(fd, 4096) != 0) {
    int err = errno;
    close(fd);
    ThrowVerb(env, "ftruncate", err);
  }
  return MapForTest(env, fd, PROT_READ | PROT_WRITE, MAP_SHARED);
}

// remapOnThread(address, length): a thread of its own maps fresh pages over [address, address + length)
// (mmap MAP_FIXED), as a native library's thread could, and the call returns at once. The caller sees the
// new pages (zeros) as soon as the old ones are gone, while that thread may still wait in the kernel for
// the monitor to read its UNMAP event: the window a cache lookup must not hit a stale entry in.
static Napi::Value RemapOnThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t address = ToU64(info[0], "address"), length = ToU64(info[1], "length");
  if (address % 4096 != 0 || length % 4096 != 0 || length == 0) ThrowRange(env, "address and length must be whole pages");
  struct Range {
    uintptr_t address, length;
  };
  auto* range = new Range{static_cast<uintptr_t>(address), static_cast<uintptr_t>(length)};
  auto remap = [](void* arg) -> void* {
    auto* r = static_cast<Range*>(arg);
    void* mapped = mmap(reinterpret_cast<void*>(r->address), r->length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    // Nobody to return an error to, and a test must not pass over pages that were never replaced.
    if (mapped == MAP_FAILED) {
      std::perror("remapOnThread: mmap");
      std::abort();
    }
    delete r;
    return nullptr;
  };
  pthread_t thread;
  int err = pthread_create(&thread, nullptr, remap, range);
  if (err != 0) {
    delete range;
    ThrowVerb(env, "pthread_create", err);
  }
  pthread_detach(thread);
  return env.Undefined();
}

// registerUntracked(pd, arrayBuffer, offset, length): an ibv_reg_mr the binding never hears of (it is never deregistered),
// so that destroying the PD fails as it would under memory registered by other code.
static Napi::Value RegisterUntracked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteRange range = ToByteRange(info[1], info[2], info[3]);
  Pd* pd = UnwrapOpen<Pd>(info[0], "pd");
  if (ibv_reg_mr(pd->handle(), range.data, range.length, IBV_ACCESS_LOCAL_WRITE) == nullptr) ThrowVerb(env, "ibv_reg_mr", errno);
  return env.Undefined();
}

// inFlight(qp) → {requests, objects}: the outstanding requests the QP counts (sends and its own receives)
// and the objects they hold.
static Napi::Value InFlightOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Qp* qp = UnwrapOpen<Qp>(info[0], "qp");
  Napi::Object out = Napi::Object::New(env);
  InFlight& receives = qp->receives();
  out.Set("requests", Napi::Number::New(env, static_cast<double>(qp->sends().outstanding() + receives.outstanding())));
  out.Set("objects", Napi::Number::New(env, static_cast<double>(qp->sends().held_objects() + receives.held_objects())));
  return out;
}

// benchRegDereg(pd, arrayBuffer, offset, length, access, iterations) -> ns per ibv_reg_mr + ibv_dereg_mr
static Napi::Value BenchRegDereg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pd* pd = UnwrapOpen<Pd>(info[0], "pd");
  ByteRange range = ToByteRange(info[1], info[2], info[3]);
  int access = static_cast<int>(ToU32(info[4], "access"));
  uint32_t iterations = ToU32(info[5], "iterations");
  uint64_t start = NowNs();
  for (uint32_t i = 0; i < iterations; i++) {
    ibv_mr* mr = ibv_reg_mr(pd->handle(), range.data, range.length, access);
    if (mr == nullptr) ThrowVerb(env, "ibv_reg_mr", errno);
    ibv_dereg_mr(mr);
  }
  return Napi::Number::New(env, static_cast<double>(NowNs() - start) / iterations);
}

// benchCacheHits(cache, arrayBuffer, offset, length, access, iterations) -> ns per hit (lookup with its
// validity check, taking and returning the entry); the range must be cached already.
static Napi::Value BenchCacheHits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RegistrationCache* cache = UnwrapOpen<RegistrationCache>(info[0], "cache");
  ByteRange range = ToByteRange(info[1], info[2], info[3]);
  uint32_t access = ToU32(info[4], "access");
  uint32_t iterations = ToU32(info[5], "iterations");
  uintptr_t first = reinterpret_cast<uintptr_t>(range.data), last = first + range.length;
  uint64_t start = NowNs();
  for (uint32_t i = 0; i < iterations; i++) {
    RegEntry* entry = cache->Find(first, last, access);
    if (entry == nullptr) ThrowType(env, "the range is not cached");
    cache->Acquire(entry);
    cache->Release(entry);
  }
  return Napi::Number::New(env, static_cast<double>(NowNs() - start) / iterations);
}

// benchCatchUp(arrayBuffer, offset, length, iterations) -> ns per UffdMonitor::CaughtUp on the range's first
// page (the system call every monitored hit makes); the range must be cached already.
static Napi::Value BenchCatchUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteRange range = ToByteRange(info[0], info[1], info[2]);
  uint32_t iterations = ToU32(info[3], "iterations");
  auto address = reinterpret_cast<uintptr_t>(range.data);
  uint64_t start = NowNs();
  for (uint32_t i = 0; i < iterations; i++) {
    if (!UffdMonitor::CaughtUp(address)) ThrowType(env, "the range is not watched by the monitor");
  }
  return Napi::Number::New(env, static_cast<double>(NowNs() - start) / iterations);
}

// benchMunmap(size, monitored, iterations) -> ns per munmap of `size` populated bytes, with the range
// registered with the monitor's userfaultfd (and watched) or not.
static Napi::Value BenchMunmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size = ToU64(info[0], "size");
  bool monitored = ToBool(info[1], "monitored");
  uint32_t iterations = ToU32(info[2], "iterations");
  if (monitored) {
    int err = UffdMonitor::Acquire();
    if (err != 0) ThrowVerb(env, "userfaultfd", err);
  }
  uint64_t total = 0;
  int err = 0;
  for (uint32_t i = 0; i < iterations && err == 0; i++) {
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (memory == MAP_FAILED) {
      err = errno;
      break;
    }
    auto start = reinterpret_cast<uintptr_t>(memory);
    Watch watch;
    if (monitored) {
      if (!WatchTable::Get().Publish(start, start + size, &watch)) err = ENOSPC;
      else err = UffdMonitor::Register(start, start + size);
    }
    uint64_t before = NowNs();
    munmap(memory, size);
    total += NowNs() - before;
    WatchTable::Get().Retire(&watch);
  }
  if (monitored) UffdMonitor::Release();
  if (err != 0) ThrowVerb(env, "benchMunmap", err);
  return Napi::Number::New(env, static_cast<double>(total) / iterations);
}

Napi::Object TestingExports(Napi::Env env) {
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("forkProbe", Napi::Function::New(env, ForkProbe, "forkProbe"));
  testing.Set("simulateLostTrack", Napi::Function::New(env, SimulateLostTrack, "simulateLostTrack"));
  testing.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  testing.Set("mapShared", Napi::Function::New(env, MapShared, "mapShared"));
  testing.Set("remapOnThread", Napi::Function::New(env, RemapOnThread, "remapOnThread"));
  testing.Set("registerUntracked", Napi::Function::New(env, RegisterUntracked, "registerUntracked"));
  testing.Set("inFlight", Napi::Function::New(env, InFlightOf, "inFlight"));
  testing.Set("benchRegDereg", Napi::Function::New(env, BenchRegDereg, "benchRegDereg"));
  testing.Set("benchCacheHits", Napi::Function::New(env, BenchCacheHits, "benchCacheHits"));
  testing.Set("benchCatchUp", Napi::Function::New(env, BenchCatchUp, "benchCatchUp"));
  testing.Set("benchMunmap", Napi::Function::New(env, BenchMunmap, "benchMunmap"));
  testing.Set("packFlow", Napi::Function::New(env, PackFlow, "packFlow"));
  return testing;
}

}  // namespace rdma
