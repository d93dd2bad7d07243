// A memory region over a JS ArrayBuffer. The MR holds a strong reference to the buffer, so the memory
// the device may read or write cannot be collected while it is registered.
//
// An MR either owns its registration (pd.registerMemory(), or an uncached one from a registration cache)
// or uses a cache entry, whose registration may cover more than this MR's range; handle() is the
// registration as seen through this MR: its range, the registration's keys.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "args.h"
#include "resource.h"

namespace rdma {

class Pd;
class Regcache;
struct RegEntry;

class Mr : public Napi::ObjectWrap<Mr>, public Resource, public Lifecycle<Mr> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0003ULL, 0x6d65'6d72'6567'0000ULL};
  static constexpr const char* kName = "MemoryRegion";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, Napi::Object pd_js, Pd* pd, const ByteRange& range, uint32_t access);
  // An MR for `range` under `registration`: owned (entry == nullptr) or the cache's `entry`. Its parent is
  // `owner` (the PD or the cache), and the mapped buffer holding the range if there is one.
  static Napi::Object Wrap(Napi::Env env, Napi::Object owner_js, Resource* owner, Pd* pd, const ByteRange& range,
                           ibv_mr* registration, RegEntry* entry);

  explicit Mr(const Napi::CallbackInfo& info);
  ~Mr() override { Close(CloseMode::kQuiet); }
  ibv_mr* handle() { return &view_; }
  Pd* pd() const { return pd_; }
  // The cache entry this MR uses (nullptr when it owns its registration).
  RegEntry* entry() const { return entry_; }
  // Throws if the buffer was detached (transferred) since registration: posting would touch freed memory.
  void CheckAttached(Napi::Env env);

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Lkey(const Napi::CallbackInfo& info);
  Napi::Value Rkey(const Napi::CallbackInfo& info);
  Napi::Value Addr(const Napi::CallbackInfo& info);
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value Cached(const Napi::CallbackInfo& info);
  Napi::Value Advise(const Napi::CallbackInfo& info);

  ibv_mr* owned_ = nullptr;
  Regcache* cache_ = nullptr;
  RegEntry* entry_ = nullptr;
  ibv_mr view_ = {};
  Pd* pd_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
};

}  // namespace rdma
