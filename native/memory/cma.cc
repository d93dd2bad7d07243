#include "memory/cma.h"

#include <limits.h>
#include <sys/prctl.h>
#include <sys/uio.h>

#include <cerrno>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/errors.h"

namespace rdma {

// The remote ranges, read before anything else: at most IOV_MAX of them (the kernel's limit).
static std::vector<iovec> RemoteRanges(Napi::Value value) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) ThrowType(env, "remote must be an array of {addr, length}");
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() == 0 || array.Length() > IOV_MAX) ThrowRange(env, "remote takes 1 to " + std::to_string(IOV_MAX) + " ranges");
  std::vector<iovec> ranges(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Object range = ToObject(array.Get(i), "remote range");
    uint64_t addr = ToU64(range.Get("addr"), "remote addr");
    uint64_t length = ToU64(range.Get("length"), "remote length");
    if (length > SSIZE_MAX || addr > UINTPTR_MAX - length) ThrowRange(env, "a remote range wraps the address space");
    ranges[i] = {reinterpret_cast<void*>(static_cast<uintptr_t>(addr)), static_cast<size_t>(length)};
  }
  return ranges;
}

static Napi::Value Transfer(const Napi::CallbackInfo& info, bool read) {
  Napi::Env env = info.Env();
  int32_t pid = ToI32(info[0], "pid", 1, INT32_MAX);
  std::vector<iovec> remote = RemoteRanges(info[1]);
  ByteRange local = ToByteRange(info[2], info[3], info[4]);  // last: no JS runs after it
  iovec mine = {local.data, local.length};
  ssize_t copied = read ? process_vm_readv(pid, &mine, 1, remote.data(), remote.size(), 0)
                        : process_vm_writev(pid, &mine, 1, remote.data(), remote.size(), 0);
  if (copied < 0) ThrowVerb(env, read ? "process_vm_readv" : "process_vm_writev", errno);
  return Napi::Number::New(env, static_cast<double>(copied));
}

Napi::Value ProcessRead(const Napi::CallbackInfo& info) { return Transfer(info, true); }
Napi::Value ProcessWrite(const Napi::CallbackInfo& info) { return Transfer(info, false); }

Napi::Value AllowPtracer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid = ToI32(info[0], "pid", -1, INT32_MAX);
  unsigned long who = pid == -1 ? PR_SET_PTRACER_ANY : static_cast<unsigned long>(pid);
  // Without Yama the call fails with EINVAL and nothing needs granting.
  if (prctl(PR_SET_PTRACER, who, 0, 0, 0) != 0 && errno != EINVAL) ThrowVerb(env, "prctl(PR_SET_PTRACER)", errno);
  return env.Undefined();
}

Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  ByteRange range = ToByteRange(info[0], info[1], Napi::Number::New(info.Env(), 0));
  return FromU64(info.Env(), reinterpret_cast<uintptr_t>(range.data));
}

}  // namespace rdma
