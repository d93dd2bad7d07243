#include "collectives/collective_engine.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "addon/args.h"
#include "verbs/cq.h"
#include "verbs/pd.h"
#include "verbs/qp.h"

namespace rdma {

using collectives::DataType;
using collectives::Op;
using collectives::OpKind;
using collectives::ReduceOp;

namespace {

constexpr uint32_t kFieldsPerOp = 7;  // kind, peer, region, offset, length, region2, offset2
constexpr uint32_t kNoReduce = 0xffff'ffff;
constexpr uint64_t kMaxInbox = 1ULL << 30;

uint64_t Align(uint64_t value, uint64_t to) { return (value + to - 1) / to * to; }

bool IsDetached(Napi::Env env, Napi::TypedArray view) {
  bool detached = false;
  napi_is_detached_arraybuffer(env, view.ArrayBuffer(), &detached);
  return detached;
}

// An optional Uint8Array property: empty when absent.
Napi::Uint8Array OptionalBytes(Napi::Object spec, const char* key) {
  Napi::Value value = spec.Get(key);
  if (value.IsUndefined()) return Napi::Uint8Array();
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(spec.Env(), std::string(key) + " must be a Uint8Array");
  }
  return value.As<Napi::Uint8Array>();
}

}  // namespace

// One collective on the libuv thread pool; holds the engine's JS object (and so the engine) and the
// caller's output buffer only until it settles.
class CollectiveRun : public Napi::AsyncWorker {
 public:
  CollectiveRun(Napi::Env env, CollectiveEngine* engine, collectives::Plan plan, Napi::Uint8Array output, uint64_t output_at)
      : Napi::AsyncWorker(env, "rdma-node:collective"),
        deferred_(Napi::Promise::Deferred::New(env)),
        engine_(engine),
        engine_js_(Napi::Persistent(engine->Value())),
        plan_(std::move(plan)),
        output_at_(output_at) {
    if (!output.IsEmpty()) output_ = Napi::Persistent(output.As<Napi::Object>());
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    {
      std::lock_guard<std::mutex> lock(engine_->mutex_);
      if (engine_->closing_) return;
      engine_->running_ = true;
    }
    ok_ = engine_->engine_->Run(plan_, &failure_);
    {
      std::lock_guard<std::mutex> lock(engine_->mutex_);
      engine_->running_ = false;
    }
    engine_->idle_.notify_all();
  }
  void OnOK() override { Settle(); }
  void OnError(const Napi::Error&) override { Settle(); }

 private:
  void Settle() {
    Napi::Env env = Env();
    engine_->busy_ = false;
    if (engine_->closed()) return deferred_.Reject(VerbError(env, "collective", ECANCELED, "the communicator was closed").Value());
    if (!ok_) return deferred_.Reject(VerbError(env, failure_.verb.c_str(), failure_.err, failure_.detail).Value());
    if (!output_.IsEmpty()) {
      Napi::Uint8Array output = output_.Value().As<Napi::Uint8Array>();
      if (IsDetached(env, output)) {
        return deferred_.Reject(Napi::TypeError::New(env, "the output buffer was detached during the collective").Value());
      }
      // An empty array's Data() is null, which memcpy must not get even for 0 bytes.
      if (output.ByteLength() > 0) memcpy(output.Data(), engine_->work_.data + output_at_, output.ByteLength());
    }
    deferred_.Resolve(env.Undefined());
  }

  Napi::Promise::Deferred deferred_;
  CollectiveEngine* engine_;
  Napi::ObjectReference engine_js_, output_;
  collectives::Plan plan_;
  uint64_t output_at_;
  bool ok_ = false;
  collectives::Failure failure_{ECANCELED, "collective", "the communicator was closed"};
};

Napi::Function CollectiveEngine::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {InstanceAccessor<&CollectiveEngine::Inbox>("inbox"), InstanceMethod<&CollectiveEngine::SetPeers>("setPeers"),
                      InstanceMethod<&CollectiveEngine::Run>("run"), InstanceMethod<&CollectiveEngine::Abort>("abort"),
                      InstanceMethod<&CollectiveEngine::PeerLost>("peerLost"), CloseMethod(), ClosedGetter()});
}

CollectiveEngine::CollectiveEngine(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CollectiveEngine>(info), Resource(info.Env(), "collective engine") {
  CheckConstructToken(info, "createCollectiveEngine()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

// createCollectiveEngine(pd, cq, qps (null at rank), rank, {slots, chunk})
Napi::Value CollectiveEngine::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pd* pd = UnwrapTagged<Pd>(info[0], "pd");
  Cq* cq = UnwrapTagged<Cq>(info[1], "cq");
  if (!info[2].IsArray()) ThrowType(env, "qps must be an array with a queue pair per rank");
  Napi::Array qps_js = info[2].As<Napi::Array>();
  uint32_t rank = ToU32(info[3], "rank");
  Napi::Object options = info[4].IsUndefined() ? Napi::Object::New(env) : ToObject(info[4], "options");
  uint32_t slots = PropU32(options, "slots", 16);
  uint32_t chunk = PropU32(options, "chunk", 64 << 10);
  uint32_t size = qps_js.Length();
  std::vector<Napi::Value> qp_values;
  for (uint32_t i = 0; i < size; i++) qp_values.push_back(qps_js.Get(i));
  std::vector<Qp*> qps(size, nullptr);
  for (uint32_t i = 0; i < size; i++) {
    if (i != rank) qps[i] = UnwrapTagged<Qp>(qp_values[i], "qps[" + std::to_string(i) + "]");
  }
  if (size < 1 || size > collectives::Failure::kNoRank) ThrowRange(env, "a communicator has 1 to 4095 ranks");
  if (rank >= size) ThrowRange(env, "rank must be below the number of queue pairs");
  if (slots < 2 || slots > 1024) ThrowRange(env, "slots must be 2 to 1024");
  if (chunk < 64 || chunk > (8u << 20) || chunk % 64 != 0) ThrowRange(env, "chunk must be a multiple of 64 bytes up to 8 MiB");
  if (static_cast<uint64_t>(size) * slots * chunk > kMaxInbox) ThrowRange(env, "ranks x slots x chunk exceeds the 1 GiB inbox limit");
  // Everything read: now the objects' state (a getter above could have closed them).
  pd->CheckOpen(env);
  cq->CheckOpen(env);
  if (cq->handle()->channel == nullptr) ThrowType(env, "cq needs a completion channel");
  for (uint32_t i = 0; i < size; i++) {
    if (i == rank) continue;
    qps[i]->CheckOpen(env);
    ibv_qp* qp = qps[i]->handle();
    if (qp->qp_type != IBV_QPT_RC || qp->send_cq != cq->handle() || qp->recv_cq != cq->handle() || qp->pd != pd->handle()) {
      ThrowType(env, "every queue pair must be RC, on pd, completing on cq");
    }
  }

  Napi::Object object = AddonData::Get(env).collective_engine_class.New({ConstructToken(env)});
  CollectiveEngine* self = Unwrap(object);
  self->pd_ = pd->handle();
  self->cq_ = cq->handle();
  self->qps_ = qps;
  self->rank_ = rank;
  self->slots_ = slots;
  self->chunk_ = chunk;
  self->DependOn(info[0].As<Napi::Object>(), pd);
  self->DependOn(info[1].As<Napi::Object>(), cq);
  for (uint32_t i = 0; i < size; i++) {
    if (i != rank) self->DependOn(qp_values[i].As<Napi::Object>(), qps[i]);
  }
  int err = self->MapArea(&self->inbox_, static_cast<size_t>(size) * slots * chunk, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
  if (err != 0) ThrowVerb(env, "ibv_reg_mr", err, "the collectives' inbox");
  return object;
}

int CollectiveEngine::MapArea(Area* area, size_t size, int access) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size = Align(std::max<size_t>(size, page), page);
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) return errno;
  ibv_mr* mr = ibv_reg_mr(pd_, data, size, access);
  if (mr == nullptr) {
    int err = errno;
    munmap(data, size);
    return err;
  }
  *area = {static_cast<uint8_t*>(data), size, mr};
  return 0;
}

void CollectiveEngine::UnmapArea(Area* area) {
  if (area->mr != nullptr) ibv_dereg_mr(area->mr);
  if (area->data != nullptr) munmap(area->data, area->size);
  *area = {};
}

int CollectiveEngine::Destroy(CloseMode) {
  if (engine_) engine_->Fail(ECANCELED, "the communicator was closed");
  {
    // The engine polls its failure flag between completions: this wait is short.
    std::unique_lock<std::mutex> lock(mutex_);
    closing_ = true;
    idle_.wait(lock, [this] { return !running_; });
  }
  engine_.reset();
  UnmapArea(&work_);
  UnmapArea(&inbox_);
  return 0;
}

Napi::Value CollectiveEngine::Inbox(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("addr", FromU64(env, reinterpret_cast<uintptr_t>(inbox_.data)));
  out.Set("rkey", Napi::Number::New(env, inbox_.mr->rkey));
  return out;
}

Napi::Value CollectiveEngine::SetPeers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) ThrowType(env, "inboxes must be an array with one {addr, rkey} per rank");
  Napi::Array inboxes = info[0].As<Napi::Array>();
  std::vector<collectives::PeerLink> links(inboxes.Length());
  for (uint32_t p = 0; p < inboxes.Length(); p++) {
    if (p == rank_) continue;
    Napi::Object inbox = ToObject(inboxes.Get(p), "inboxes[" + std::to_string(p) + "]");
    uint64_t base = ToU64(inbox.Get("addr"), "inbox.addr");
    links[p].inbox_rkey = ToU32(inbox.Get("rkey"), "inbox.rkey");
    links[p].inbox_addr = base + static_cast<uint64_t>(rank_) * slots_ * chunk_;  // our region of its inbox
  }
  CheckOpen(env);
  if (links.size() != qps_.size()) ThrowType(env, "inboxes must have one entry per rank");
  if (engine_) ThrowType(env, "the peers are already set");
  for (uint32_t p = 0; p < links.size(); p++) {
    if (p != rank_) links[p].qp = qps_[p]->handle();
  }
  auto engine = std::make_unique<collectives::Engine>(rank_, std::move(links), cq_, inbox_.data, slots_, chunk_);
  collectives::Failure failure;
  if (!engine->Start(&failure)) ThrowVerb(env, failure.verb.c_str(), failure.err, failure.detail);
  engine_ = std::move(engine);
  return env.Undefined();
}

// run({plan: Float64Array, srcBytes, dstBytes, tmpBytes, dtype, op, timeoutMs,
//      input?: Uint8Array, inputRegion, inputOffset, output?: Uint8Array, outputRegion, outputOffset})
Napi::Value CollectiveEngine::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object spec = ToObject(info[0], "spec");
  Napi::Value plan_js = spec.Get("plan");
  if (!plan_js.IsTypedArray() || plan_js.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowType(env, "plan must be a Float64Array");
  }
  uint64_t region_bytes[3] = {PropU64(spec, "srcBytes", 0), PropU64(spec, "dstBytes", 0), PropU64(spec, "tmpBytes", 0)};
  uint32_t dtype = PropU32(spec, "dtype", 0, static_cast<uint32_t>(DataType::kCount) - 1);
  uint32_t op = PropU32(spec, "op", kNoReduce);
  uint64_t timeout_ms = PropU64(spec, "timeoutMs", 0);
  Napi::Uint8Array input = OptionalBytes(spec, "input");
  uint32_t input_region = PropU32(spec, "inputRegion", 0, 2);
  uint64_t input_offset = PropU64(spec, "inputOffset", 0);
  Napi::Uint8Array output = OptionalBytes(spec, "output");
  uint32_t output_region = PropU32(spec, "outputRegion", 1, 2);
  uint64_t output_offset = PropU64(spec, "outputOffset", 0);
  CheckOpen(env);
  if (!engine_) ThrowType(env, "setPeers() comes before run()");
  if (busy_) ThrowVerb(env, "collective", EBUSY, "one collective at a time per communicator");

  // The work area: [src | dst | tmp], each 64-byte aligned.
  uint64_t base[3] = {0, 0, 0};
  base[1] = Align(region_bytes[0], 64);
  base[2] = Align(base[1] + region_bytes[1], 64);
  uint64_t total = base[2] + region_bytes[2];
  collectives::Plan plan;
  plan.element_size = collectives::ElementSize(static_cast<DataType>(dtype));
  if (op != kNoReduce) {
    plan.reduce = op < static_cast<uint32_t>(ReduceOp::kCount) ? collectives::FindReduce(static_cast<DataType>(dtype), static_cast<ReduceOp>(op)) : nullptr;
    if (plan.reduce == nullptr) ThrowType(env, "this reduction does not apply to this data type");
  }
  plan.timeout_ns = timeout_ms * 1'000'000;
  Napi::Float64Array fields = plan_js.As<Napi::Float64Array>();
  if (fields.ElementLength() % kFieldsPerOp != 0) ThrowRange(env, "plan has 7 numbers per operation");
  auto place = [&](double region, double offset, double length) -> uint64_t {
    if (!(region >= 0 && region <= 2) || !(offset >= 0) || !(length >= 0)) ThrowRange(env, "plan: a region is 0 to 2, offsets and lengths are not negative");
    auto r = static_cast<uint32_t>(region);
    auto off = static_cast<uint64_t>(offset), len = static_cast<uint64_t>(length);
    if (off > region_bytes[r] || len > region_bytes[r] - off) ThrowRange(env, "plan: an operation exceeds its region");
    return base[r] + off;
  };
  for (size_t i = 0; i < fields.ElementLength(); i += kFieldsPerOp) {
    const double* f = fields.Data() + i;
    Op o = {static_cast<OpKind>(static_cast<uint32_t>(f[0])), static_cast<uint32_t>(f[1]), 0, static_cast<uint64_t>(f[4]), 0};
    if (!(f[0] >= 0 && f[0] <= 5)) ThrowRange(env, "plan: unknown operation kind");
    if (o.kind == OpKind::kStepEnd) {
      plan.ops.push_back(o);
      continue;
    }
    o.off = place(f[2], f[3], f[4]);
    bool remote = o.kind == OpKind::kSend || o.kind == OpKind::kRecv || o.kind == OpKind::kRecvReduce;
    if (remote && (!(f[1] >= 0) || o.peer >= qps_.size() || o.peer == rank_)) ThrowRange(env, "plan: a peer is another rank");
    if (o.kind == OpKind::kCopy || o.kind == OpKind::kReduce) o.off2 = place(f[5], f[6], f[4]);
    bool reduces = o.kind == OpKind::kRecvReduce || o.kind == OpKind::kReduce;
    if (reduces && (plan.reduce == nullptr || o.len % plan.element_size != 0)) ThrowRange(env, "plan: a reduction needs an op and whole elements");
    plan.ops.push_back(o);
  }
  if (!plan.ops.empty() && plan.ops.back().kind != OpKind::kStepEnd) ThrowRange(env, "plan ends with a step end");
  if (!input.IsEmpty()) {
    if (IsDetached(env, input)) ThrowType(env, "input is detached");
    if (input_offset > region_bytes[input_region] || input.ByteLength() > region_bytes[input_region] - input_offset) ThrowRange(env, "input exceeds its region");
  }
  if (!output.IsEmpty()) {
    if (IsDetached(env, output)) ThrowType(env, "output is detached");
    if (output_offset > region_bytes[output_region] || output.ByteLength() > region_bytes[output_region] - output_offset) ThrowRange(env, "output exceeds its region");
  }

  // Mapped (at least a page) before the first collective, a barrier included: its plan needs an lkey too.
  if (work_.mr == nullptr || total > work_.size) {
    size_t grown = std::max<uint64_t>(total, 2 * work_.size);
    UnmapArea(&work_);
    int err = MapArea(&work_, grown, IBV_ACCESS_LOCAL_WRITE);
    if (err != 0) ThrowVerb(env, "ibv_reg_mr", err, "the collectives' work area");
  }
  if (!input.IsEmpty() && input.ByteLength() > 0) memcpy(work_.data + base[input_region] + input_offset, input.Data(), input.ByteLength());
  plan.work = work_.data;
  plan.work_lkey = work_.mr->lkey;
  auto* run = new CollectiveRun(env, this, std::move(plan), output, base[output_region] + output_offset);
  Napi::Promise promise = run->Promise();
  busy_ = true;
  run->Queue();
  return promise;
}

Napi::Value CollectiveEngine::Abort(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  if (busy_) engine_->Fail(ECANCELED, "aborted at rank " + std::to_string(rank_));
  return info.Env().Undefined();
}

Napi::Value CollectiveEngine::PeerLost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t peer = ToU32(info[0], "rank");
  CheckOpen(env);
  if (peer >= qps_.size() || peer == rank_) ThrowRange(env, "rank is another rank of the communicator");
  if (engine_) engine_->Fail(ECONNRESET, "rank " + std::to_string(peer) + " is gone: its connection closed", peer);
  return env.Undefined();
}

}  // namespace rdma
