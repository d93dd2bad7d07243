// PMIx, the interface Open MPI's mpirun and Slurm's srun --mpi=pmix serve to their ranks: the real
// libpmix client (PMIx_Init, Put, Commit, Fence, Get, Finalize), as Open MPI and UCX use it to exchange
// addresses. A fence waits for every rank, so it runs non-blocking (PMIx_Fence_nb): PMIx's own thread
// reports completion through an eventfd the event loop polls. Built only where libpmix's headers were
// found (RDMA_NODE_HAVE_PMIX); without them pmixInit() fails with EOPNOTSUPP.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "addon/poller.h"
#include "addon/resource.h"

namespace rdma {

struct FenceWait;

class PmixClient : public Napi::ObjectWrap<PmixClient>, public Resource, public Lifecycle<PmixClient> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0005'0001ULL, 0x706d'6978'636c'6e74ULL};
  static constexpr const char* kName = "PmixClient";
  static Napi::Function Define(Napi::Env env);
  // pmixInit() → the client: namespace, rank, size, localRank, localSize, hostname
  static Napi::Value Init(const Napi::CallbackInfo& info);

  explicit PmixClient(const Napi::CallbackInfo& info);
  ~PmixClient() override { Close(CloseMode::kQuiet); }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Put(const Napi::CallbackInfo& info);       // put(key, bytes): PMIX_GLOBAL, a byte object
  Napi::Value Commit(const Napi::CallbackInfo& info);
  Napi::Value Fence(const Napi::CallbackInfo& info);     // fence(collect, done(errno, detail))
  Napi::Value Get(const Napi::CallbackInfo& info);       // get(rank, key) → Buffer | undefined
  void OnFenceDone();
  void SettleFence(int err, const std::string& detail, bool tell);

  std::string namespace_;
  uint32_t rank_ = 0;
  FenceWait* fence_ = nullptr;  // the fence in flight
  std::unique_ptr<FdPoller> poller_;
  Napi::FunctionReference fence_done_;
};

}  // namespace rdma
