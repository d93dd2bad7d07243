// A memory region over a JS ArrayBuffer. The MR holds a strong reference to the buffer, so the memory
// the device may read or write cannot be collected while it is registered.
//
// An MR either owns its registration (pd.registerMemory(), or an uncached one from a registration cache)
// or is the region of a cache entry: one object per cached registration, handed out on every hit (the
// TypeScript region of a hit is a light view of it with its own range), so a hit allocates nothing here.
// An entry's region holds its buffer weakly (a cache keeps no memory alive) and has no parents: the cache
// revokes it when the entry goes. handle() is the registration as seen through this MR.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/args.h"
#include "addon/resource.h"

namespace rdma {

class Pd;
struct RegEntry;

// What lends an MR a registration the MR does not own: a registration cache (memory layer), told when a
// user of the entry lets go of it, and when the entry's region is closed by other means (teardown).
class RegistrationLender {
 public:
  virtual void Release(RegEntry* entry) = 0;
  virtual void RegionClosed(RegEntry* entry) = 0;

 protected:
  ~RegistrationLender() = default;
};

// The object whose mapped pages hold [data, data + length), if any (a mapped buffer): registering the range
// makes the MR its dependent, so freeing the memory closes the MR first. Defined by the memory layer, which
// verbs does not include.
Resource* MemoryHolder(Napi::Env env, const void* data, size_t length, Napi::Object* holder_js);

class Mr : public Napi::ObjectWrap<Mr>, public Resource, public Lifecycle<Mr> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0003ULL, 0x6d65'6d72'6567'0000ULL};
  static constexpr const char* kName = "MemoryRegion";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, Napi::Object pd_js, Pd* pd, const ByteRange& range, uint32_t access);
  // An MR for `range` under `registration`: owned (lender == nullptr) or `entry` lent by `lender`. Its
  // parent is `owner` (the PD or the cache), and the mapped buffer holding the range if there is one.
  static Napi::Object Wrap(Napi::Env env, Napi::Object owner_js, Resource* owner, Pd* pd, const ByteRange& range,
                           ibv_mr* registration);
  // The region of a cache entry (see above). The lender still owns `registration`.
  static Napi::Object WrapEntry(Napi::Env env, Pd* pd, const ByteRange& range, ibv_mr* registration,
                                RegistrationLender* lender, RegEntry* entry);

  explicit Mr(const Napi::CallbackInfo& info);
  ~Mr() override { Close(CloseMode::kQuiet); }
  ibv_mr* handle() { return &view_; }
  Pd* pd() const { return pd_; }
  // The cache entry this MR uses (nullptr when it owns its registration).
  RegEntry* entry() const { return entry_; }
  // Throws if the buffer was detached (transferred) since registration: posting would touch freed memory.
  void CheckAttached(Napi::Env env);
  // The lender took the entry back: closes this region without telling it.
  void Revoke();
  // A hit on the entry, for `buffer` over its addresses: the region follows the buffer now mapped there
  // when the one it was made for is gone (collected, or detached by an unmap or remap under ODP).
  void Follow(Napi::ArrayBuffer buffer);

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Lkey(const Napi::CallbackInfo& info);
  Napi::Value Rkey(const Napi::CallbackInfo& info);
  Napi::Value Addr(const Napi::CallbackInfo& info);
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value Cached(const Napi::CallbackInfo& info);
  Napi::Value Advise(const Napi::CallbackInfo& info);
  // release(): a user of an entry's region lets go of it (a cached region's close()).
  Napi::Value Release(const Napi::CallbackInfo& info);
  static Mr* New(Napi::Env env, Napi::Object* object);

  ibv_mr* owned_ = nullptr;
  RegistrationLender* lender_ = nullptr;
  RegEntry* entry_ = nullptr;
  ibv_mr view_ = {};
  Pd* pd_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
};

}  // namespace rdma
