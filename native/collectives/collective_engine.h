// The JS face of the collectives' engine (engine.h): binding.createCollectiveEngine(pd, cq, qps, rank,
// {slots, chunk}) over RC queue pairs lib/collectives made and connected, then setPeers(inboxes) and
// run(spec) → a promise per collective, executed on a libuv worker thread.
//
// User buffers are copied into the engine's registered work area on the loop thread when run() is called,
// and the result out of it when the collective settles: no buffer of the caller is touched off the loop
// thread, so a buffer the caller detaches or drops during a collective can never be read or written
// after it is gone.
#pragma once
#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "addon/resource.h"
#include "collectives/engine.h"

namespace rdma {

class Qp;
class CollectiveRun;

class CollectiveEngine : public Napi::ObjectWrap<CollectiveEngine>, public Resource, public Lifecycle<CollectiveEngine> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0006'0001ULL, 0x636f'6c6c'6563'7476ULL};
  static constexpr const char* kName = "CollectiveEngine";
  static Napi::Function Define(Napi::Env env);
  static Napi::Value Create(const Napi::CallbackInfo& info);

  explicit CollectiveEngine(const Napi::CallbackInfo& info);
  ~CollectiveEngine() override { Close(CloseMode::kQuiet); }

 private:
  friend class CollectiveRun;
  // A registered, page-aligned mapping.
  struct Area {
    uint8_t* data = nullptr;
    size_t size = 0;
    ibv_mr* mr = nullptr;
  };
  int Destroy(CloseMode mode) override;
  Napi::Value Inbox(const Napi::CallbackInfo& info);     // {addr, rkey}
  Napi::Value SetPeers(const Napi::CallbackInfo& info);  // setPeers([{addr, rkey} | null per rank])
  Napi::Value Run(const Napi::CallbackInfo& info);       // run(spec) → Promise<void>
  Napi::Value Abort(const Napi::CallbackInfo& info);     // abort(): ends the collective in flight with ECANCELED
  Napi::Value PeerLost(const Napi::CallbackInfo& info);  // peerLost(rank): ECONNRESET, now and for every later one
  int MapArea(Area* area, size_t size, int access);
  void UnmapArea(Area* area);

  ibv_pd* pd_ = nullptr;
  ibv_cq* cq_ = nullptr;
  std::vector<Qp*> qps_;
  uint32_t rank_ = 0, slots_ = 0, chunk_ = 0;
  Area inbox_, work_;
  std::unique_ptr<collectives::Engine> engine_;
  bool busy_ = false;  // a run() not yet settled
  // Shared with the worker thread: whether it runs the engine now, and whether the engine is going.
  std::mutex mutex_;
  std::condition_variable idle_;
  bool running_ = false, closing_ = false;
};

}  // namespace rdma
