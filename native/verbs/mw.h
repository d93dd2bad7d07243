// A memory window: a remotely accessible view of part of an MR, bound (type 1: ibv_bind_mw; type 2: a
// BIND_MW work request) and revoked (rebinding, LOCAL_INV, SEND_WITH_INV) without re-registering.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/resource.h"

namespace rdma {

class Pd;

class Mw : public Napi::ObjectWrap<Mw>, public Resource, public Lifecycle<Mw> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0009ULL, 0x6d65'6d77'696e'646fULL};
  static constexpr const char* kName = "MemoryWindow";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd);

  explicit Mw(const Napi::CallbackInfo& info);
  ~Mw() override { Close(CloseMode::kQuiet); }
  ibv_mw* handle() const { return mw_; }
  // A bound window holds the MR it exposes (the device reaches the MR's memory through it): until it is
  // bound again or closed.
  void BindTo(Napi::Object mr_js) { bound_mr_ = Napi::Persistent(mr_js); }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Rkey(const Napi::CallbackInfo& info);
  Napi::Value Type(const Napi::CallbackInfo& info);

  ibv_mw* mw_ = nullptr;
  Napi::ObjectReference bound_mr_;
};

}  // namespace rdma
