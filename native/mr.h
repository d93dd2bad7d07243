// A memory region over a JS ArrayBuffer. The MR holds a strong reference to the buffer, so the memory
// the device may read or write cannot be collected while it is registered.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "args.h"
#include "resource.h"

namespace rdma {

class Pd;

class Mr : public Napi::ObjectWrap<Mr>, public Resource, public Lifecycle<Mr> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0003ULL, 0x6d65'6d72'6567'0000ULL};
  static constexpr const char* kName = "MemoryRegion";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, Napi::Object pd_js, Pd* pd, const ByteRange& range, uint32_t access);

  explicit Mr(const Napi::CallbackInfo& info);
  ~Mr() override { Close(CloseMode::kQuiet); }
  ibv_mr* handle() const { return mr_; }
  Pd* pd() const { return pd_; }
  // Throws if the buffer was detached (transferred) since registration: posting would touch freed memory.
  void CheckAttached(Napi::Env env);

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Lkey(const Napi::CallbackInfo& info);
  Napi::Value Rkey(const Napi::CallbackInfo& info);
  Napi::Value Addr(const Napi::CallbackInfo& info);
  Napi::Value Length(const Napi::CallbackInfo& info);

  ibv_mr* mr_ = nullptr;
  Pd* pd_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
};

}  // namespace rdma
