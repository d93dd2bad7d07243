// A memory window: a remotely accessible view of part of an MR, bound (type 1: ibv_bind_mw; type 2: a
// BIND_MW work request) and revoked (rebinding, LOCAL_INV, SEND_WITH_INV) without re-registering.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <memory>

#include "addon/resource.h"

namespace rdma {

class Context;
class Pd;

// What the binding knows of a window's state in rxe, shared with the queues whose binds of it are still
// outstanding (they may outlive the window object). rxe oopses invalidating a type-2 window it has not bound
// (see the README), and a posted bind may yet fail or be flushed: only a completion says rxe bound it.
struct WindowState {
  bool bound = false;                // a bind completed (its own completion or a later one of its QP), none invalidated it since
  uint64_t generation = 0;           // binds and invalidations posted so far
  const void* pending_qp = nullptr;  // the QP through which the latest bind is outstanding
};

class Mw : public Napi::ObjectWrap<Mw>, public Resource, public Lifecycle<Mw> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0009ULL, 0x6d65'6d77'696e'646fULL};
  static constexpr const char* kName = "MemoryWindow";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd);

  explicit Mw(const Napi::CallbackInfo& info);
  ~Mw() override { Close(CloseMode::kQuiet); }
  ibv_mw* handle() const { return mw_; }
  // A bind was posted: the window now uses `mr` (the device reaches its memory through the window), so it
  // holds it and closes before it, and a type-2 window closes before the QP it was bound through (a QP
  // destroyed under a bound type-2 window blocks in rxe for ~50 s). Returns the bind's generation: the queue
  // confirms it (WindowState) when the request completes successfully.
  uint64_t BindPosted(uint32_t rkey, Napi::Object mr_js, Resource* mr, Napi::Object qp_js, Resource* qp);
  // A LOCAL_INV was posted for it, or a SEND_WITH_INV naming it was posted or arrived.
  void Invalidated();
  // Whether rxe will find it bound when an invalidation posted now through `qp` runs: a bind completed, or
  // one is outstanding on that same QP (which runs it first, or fails and flushes what follows).
  bool MayInvalidate(const void* qp) const { return state_->bound || (qp != nullptr && state_->pending_qp == qp); }
  const std::shared_ptr<WindowState>& state() const { return state_; }
  uint32_t current_rkey() const { return rkey_; }  // of the latest bind posted

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Rkey(const Napi::CallbackInfo& info);
  Napi::Value Type(const Napi::CallbackInfo& info);

  ibv_mw* mw_ = nullptr;
  Context* context_ = nullptr;
  std::shared_ptr<WindowState> state_ = std::make_shared<WindowState>();
  uint32_t rkey_ = 0;  // of the current binding: a type-2 bind's rkey is the poster's, not in ibv_mw
  Resource* mr_ = nullptr;  // what it was last bound to
  Resource* qp_ = nullptr;
};

}  // namespace rdma
