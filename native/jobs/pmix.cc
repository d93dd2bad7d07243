#include "jobs/pmix.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "addon/addon.h"
#include "addon/args.h"
#include "addon/errors.h"

#ifdef RDMA_NODE_HAVE_PMIX
#include <pmix.h>
#endif

namespace rdma {

// One fence in flight, shared with PMIx's thread: whoever comes second (the callback, or a close() that
// gave up on it) frees it.
struct FenceWait {
  int fd = -1;
  std::atomic<int> state{0};  // 0 pending, 1 completed, 2 abandoned
  int status = 0;
#ifdef RDMA_NODE_HAVE_PMIX
  pmix_info_t collect;
#endif
  void Free() {
    close(fd);
    delete this;
  }
};

Napi::Function PmixClient::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {InstanceAccessor<&PmixClient::Info>("info"), InstanceMethod<&PmixClient::Put>("put"),
                      InstanceMethod<&PmixClient::Commit>("commit"), InstanceMethod<&PmixClient::Fence>("fence"),
                      InstanceMethod<&PmixClient::Get>("get"), CloseMethod(), ClosedGetter()});
}

PmixClient::PmixClient(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PmixClient>(info), Resource(info.Env(), "PMIx client") {
  CheckConstructToken(info, "pmixInit()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

#ifdef RDMA_NODE_HAVE_PMIX

// PMIx statuses as the errno an RdmaError carries; the detail names PMIx's own.
static int ErrnoOf(pmix_status_t status) {
  switch (status) {
    case PMIX_ERR_TIMEOUT: return ETIMEDOUT;
    case PMIX_ERR_UNREACH: case PMIX_ERR_LOST_CONNECTION: return ECONNRESET;
    case PMIX_ERR_NOT_FOUND: return ENOENT;
    case PMIX_ERR_NOT_SUPPORTED: return EOPNOTSUPP;
    case PMIX_ERR_INIT: return ENOTCONN;
    default: return EPROTO;
  }
}

[[noreturn]] static void ThrowPmix(Napi::Env env, const char* verb, pmix_status_t status) {
  ThrowVerb(env, verb, ErrnoOf(status), PMIx_Error_string(status));
}

static pmix_proc_t Proc(const std::string& nspace, pmix_rank_t rank) {
  pmix_proc_t proc;
  PMIX_PROC_CONSTRUCT(&proc);
  PMIX_LOAD_PROCID(&proc, nspace.c_str(), rank);
  return proc;
}

// A number PMIx knows of `proc` (job size, local rank, …), or `fallback`.
static uint64_t Number(const pmix_proc_t& proc, const char* key, uint64_t fallback) {
  pmix_value_t* value = nullptr;
  if (PMIx_Get(&proc, key, nullptr, 0, &value) != PMIX_SUCCESS || value == nullptr) return fallback;
  uint64_t number = fallback;
  switch (value->type) {
    case PMIX_UINT16: number = value->data.uint16; break;
    case PMIX_UINT32: number = value->data.uint32; break;
    case PMIX_UINT64: number = value->data.uint64; break;
    case PMIX_PROC_RANK: number = value->data.rank; break;
    default: break;
  }
  PMIX_VALUE_RELEASE(value);
  return number;
}

Napi::Value PmixClient::Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pmix_proc_t me;
  pmix_status_t status = PMIx_Init(&me, nullptr, 0);
  if (status != PMIX_SUCCESS) ThrowPmix(env, "PMIx_Init", status);
  Napi::Object object = AddonData::Get(env).pmix_client_class.New({ConstructToken(env)});
  PmixClient* self = Unwrap(object);
  self->namespace_ = me.nspace;
  self->rank_ = me.rank;
  return object;
}

Napi::Value PmixClient::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  pmix_proc_t me = Proc(namespace_, rank_), job = Proc(namespace_, PMIX_RANK_WILDCARD);
  Napi::Object out = Napi::Object::New(env);
  out.Set("namespace", namespace_);
  out.Set("rank", static_cast<double>(rank_));
  out.Set("size", static_cast<double>(Number(job, PMIX_JOB_SIZE, 0)));
  out.Set("localRank", static_cast<double>(Number(me, PMIX_LOCAL_RANK, 0)));
  out.Set("localSize", static_cast<double>(Number(job, PMIX_LOCAL_SIZE, 1)));
  return out;
}

static std::string Key(Napi::Value value) {
  if (!value.IsString()) ThrowType(value.Env(), "a PMIx key is a string");
  std::string key = value.As<Napi::String>();
  if (key.empty() || key.size() > PMIX_MAX_KEYLEN) ThrowRange(value.Env(), "a PMIx key has 1 to " + std::to_string(PMIX_MAX_KEYLEN) + " characters");
  return key;
}

Napi::Value PmixClient::Put(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string key = Key(info[0]);
  ByteRange bytes = ToByteRange(info[1], info[2], info[3]);
  CheckOpen(env);
  pmix_value_t value;
  PMIX_VALUE_CONSTRUCT(&value);
  value.type = PMIX_BYTE_OBJECT;
  value.data.bo.bytes = reinterpret_cast<char*>(bytes.data);
  value.data.bo.size = bytes.length;
  pmix_status_t status = PMIx_Put(PMIX_GLOBAL, key.c_str(), &value);  // copies the bytes
  if (status != PMIX_SUCCESS) ThrowPmix(env, "PMIx_Put", status);
  return env.Undefined();
}

Napi::Value PmixClient::Commit(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  pmix_status_t status = PMIx_Commit();
  if (status != PMIX_SUCCESS) ThrowPmix(info.Env(), "PMIx_Commit", status);
  return info.Env().Undefined();
}

static void FenceCompleted(pmix_status_t status, void* data) {
  auto* wait = static_cast<FenceWait*>(data);
  wait->status = status;
  if (wait->state.exchange(1) == 2) return wait->Free();
  uint64_t one = 1;
  if (write(wait->fd, &one, sizeof one) < 0) return;  // cannot fail on a fresh eventfd
}

Napi::Value PmixClient::Fence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool collect = ToBool(info[0], "collect");
  if (!info[1].IsFunction()) ThrowType(env, "done must be a function");
  CheckOpen(env);
  if (fence_ != nullptr) ThrowVerb(env, "PMIx_Fence_nb", EBUSY, "a fence is already in flight");
  auto* wait = new FenceWait();
  wait->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wait->fd < 0) {
    int err = errno;
    delete wait;
    ThrowVerb(env, "eventfd", err);
  }
  PMIX_INFO_LOAD(&wait->collect, PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
  pmix_proc_t all = Proc(namespace_, PMIX_RANK_WILDCARD);
  pmix_status_t status = PMIx_Fence_nb(&all, 1, &wait->collect, 1, FenceCompleted, wait);
  if (status != PMIX_SUCCESS) {
    wait->Free();
    ThrowPmix(env, "PMIx_Fence_nb", status);
  }
  fence_ = wait;
  fence_done_ = Napi::Persistent(info[1].As<Napi::Function>());
  poller_ = std::make_unique<FdPoller>(env, wait->fd, [this] { OnFenceDone(); });
  poller_->Start();
  return env.Undefined();
}

void PmixClient::OnFenceDone() {
  int status = fence_->status;
  SettleFence(status == PMIX_SUCCESS ? 0 : ErrnoOf(status), status == PMIX_SUCCESS ? "" : PMIx_Error_string(status), true);
}

Napi::Value PmixClient::Get(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t rank = ToU32(info[0], "rank");
  std::string key = Key(info[1]);
  CheckOpen(env);
  pmix_proc_t proc = Proc(namespace_, rank);
  pmix_value_t* value = nullptr;
  pmix_status_t status = PMIx_Get(&proc, key.c_str(), nullptr, 0, &value);
  if (status == PMIX_ERR_NOT_FOUND) return env.Undefined();
  if (status != PMIX_SUCCESS) ThrowPmix(env, "PMIx_Get", status);
  Napi::Value out = env.Undefined();
  if (value->type == PMIX_BYTE_OBJECT) out = Napi::Buffer<char>::Copy(env, value->data.bo.bytes, value->data.bo.size);
  PMIX_VALUE_RELEASE(value);
  return out;
}

// A fence in flight is given up without a word: lib/ settles what waited for it, and teardown calls no JS.
int PmixClient::Destroy(CloseMode) {
  if (fence_ != nullptr) SettleFence(ECANCELED, "", false);
  PMIx_Finalize(nullptr, 0);
  return 0;
}

#else  // without libpmix

Napi::Value PmixClient::Init(const Napi::CallbackInfo& info) {
  ThrowVerb(info.Env(), "PMIx_Init", EOPNOTSUPP, "rdma-node was built without libpmix (install libpmix-dev and rebuild)");
}
Napi::Value PmixClient::Info(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
Napi::Value PmixClient::Put(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
Napi::Value PmixClient::Commit(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
Napi::Value PmixClient::Fence(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
Napi::Value PmixClient::Get(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
void PmixClient::OnFenceDone() {}
int PmixClient::Destroy(CloseMode) { return 0; }

#endif

// Ends the fence in flight; `tell`: its callback hears `err` (0: every rank arrived). A fence still running
// in PMIx is left to its completion callback to free.
void PmixClient::SettleFence(int err, const std::string& detail, bool tell) {
  FenceWait* wait = fence_;
  fence_ = nullptr;
  poller_.reset();
  if (wait->state.exchange(2) == 1) wait->Free();
  Napi::FunctionReference done = std::move(fence_done_);
  if (!tell || done.IsEmpty()) return;
  Napi::Env env = env_;
  CallFromLoop(env, [&] { done.Value().Call({Napi::Number::New(env, err), Napi::String::New(env, detail)}); });
}

}  // namespace rdma
