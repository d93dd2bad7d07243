// Module entry: defines the classes, keeps them per environment, and closes every live verbs object
// when the environment (main thread or worker) is torn down.
#include <napi.h>

#include <vector>

#include "addon/addon.h"
#include "addon/errors.h"
#include "addon/rdma_link.h"
#include "cm/cm.h"
#include "memory/alloc.h"
#include "memory/cma.h"
#include "memory/segment.h"
#include "collectives/collective_engine.h"
#include "jobs/pmix.h"
#include "memory/registration_cache.h"
#include "testing/hooks.h"
#include "verbs/ah.h"
#include "verbs/completion_channel.h"
#include "verbs/context.h"
#include "verbs/cq.h"
#include "verbs/flow.h"
#include "verbs/flow_counters.h"
#include "verbs/mr.h"
#include "verbs/mw.h"
#include "verbs/pd.h"
#include "verbs/prepared.h"
#include "verbs/qp.h"
#include "verbs/srq.h"
#include "verbs/xrcd.h"

namespace rdma {

Napi::Value ListDevices(const Napi::CallbackInfo& info);
Napi::Value BenchRun(const Napi::CallbackInfo& info);

// init({RdmaError}): lib/ hands over its error class once, before anything else is called.
static Napi::Value InitBinding(const Napi::CallbackInfo& info) {
  Napi::Object options = info[0].As<Napi::Object>();
  Napi::Value error_class = options.Get("RdmaError");
  if (!error_class.IsFunction()) ThrowType(info.Env(), "init() needs the RdmaError class");
  AddonData::Get(info.Env()).error_class = Napi::Persistent(error_class.As<Napi::Function>());
  return info.Env().Undefined();
}

// The environment reaper: closes what GC has not, before any finalizer runs. Closing an object closes
// its dependents too; closed objects stay in the set until their finalizers run.
static void CloseAll(void* arg) {
  LiveSet& live = *static_cast<AddonData*>(arg)->live;
  std::vector<Resource*> snapshot(live.begin(), live.end());
  for (Resource* resource : snapshot) resource->Close(CloseMode::kQuiet);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData(env);
  env.SetInstanceData(data);
  data->context_class = Napi::Persistent(Context::Define(env));
  data->pd_class = Napi::Persistent(Pd::Define(env));
  data->mr_class = Napi::Persistent(Mr::Define(env));
  data->completion_channel_class = Napi::Persistent(CompletionChannel::Define(env));
  data->cq_class = Napi::Persistent(Cq::Define(env));
  data->qp_class = Napi::Persistent(Qp::Define(env));
  data->ah_class = Napi::Persistent(Ah::Define(env));
  data->srq_class = Napi::Persistent(Srq::Define(env));
  data->mw_class = Napi::Persistent(Mw::Define(env));
  data->cm_channel_class = Napi::Persistent(CmChannel::Define(env));
  data->cm_id_class = Napi::Persistent(CmId::Define(env));
  data->mapped_buffer_class = Napi::Persistent(MappedBuffer::Define(env));
  data->registration_cache_class = Napi::Persistent(RegistrationCache::Define(env));
  data->segment_class = Napi::Persistent(Segment::Define(env));
  data->segment_access_class = Napi::Persistent(SegmentAccess::Define(env));
  data->pmix_client_class = Napi::Persistent(PmixClient::Define(env));
  data->collective_engine_class = Napi::Persistent(CollectiveEngine::Define(env));
  data->prepared_class = Napi::Persistent(PreparedWorkRequests::Define(env));
  data->flow_class = Napi::Persistent(Flow::Define(env));
  data->flow_counters_class = Napi::Persistent(FlowCounters::Define(env));
  data->xrcd_class = Napi::Persistent(Xrcd::Define(env));
  napi_add_env_cleanup_hook(env, CloseAll, data);

  exports.Set("init", Napi::Function::New(env, InitBinding, "init"));
  exports.Set("listDevices", Napi::Function::New(env, ListDevices, "listDevices"));
  exports.Set("openContext", Napi::Function::New(env, Context::Open, "openContext"));
  exports.Set("benchRun", Napi::Function::New(env, BenchRun, "benchRun"));
  exports.Set("createCmChannel", Napi::Function::New(env, CmChannel::Create, "createCmChannel"));
  exports.Set("syncCmDevices", Napi::Function::New(env, SyncCmDevices, "syncCmDevices"));
  exports.Set("allocate", Napi::Function::New(env, MappedBuffer::Allocate, "allocate"));
  exports.Set("createRegistrationCache", Napi::Function::New(env, RegistrationCache::Create, "createRegistrationCache"));
  exports.Set("monitorStatus", Napi::Function::New(env, MonitorStatus, "monitorStatus"));
  exports.Set("makeSegment", Napi::Function::New(env, Segment::Make, "makeSegment"));
  exports.Set("getSegment", Napi::Function::New(env, SegmentAccess::Get, "getSegment"));
  exports.Set("processRead", Napi::Function::New(env, ProcessRead, "processRead"));
  exports.Set("processWrite", Napi::Function::New(env, ProcessWrite, "processWrite"));
  exports.Set("allowPtracer", Napi::Function::New(env, AllowPtracer, "allowPtracer"));
  exports.Set("pmixInit", Napi::Function::New(env, PmixClient::Init, "pmixInit"));
  exports.Set("createCollectiveEngine", Napi::Function::New(env, CollectiveEngine::Create, "createCollectiveEngine"));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf, "addressOf"));
  exports.Set("rdmaLinkAdd", Napi::Function::New(env, RdmaLinkAdd, "rdmaLinkAdd"));
  exports.Set("rdmaLinkDelete", Napi::Function::New(env, RdmaLinkDelete, "rdmaLinkDelete"));
  exports.Set("rdmaLinkList", Napi::Function::New(env, RdmaLinkList, "rdmaLinkList"));
  exports.Set("rdmaGsiQpState", Napi::Function::New(env, RdmaGsiQpState, "rdmaGsiQpState"));
  exports.Set("testing", TestingExports(env));
  return exports;
}

}  // namespace rdma

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rdma::Init(env, exports); }

NODE_API_MODULE(rdma_native, InitModule)
