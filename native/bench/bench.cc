// binding.benchRun(spec, progress?): runs one C-core measurement loop (bench_loops.cc) over verbs objects
// from JS and returns the raw timestamps. Synchronous, like perftest: the loop owns the thread while it
// runs; `progress` is called about every 200 ms with the iterations done.
#include <napi.h>

#include <string>
#include <vector>

#include "addon/args.h"
#include "bench/bench.h"
#include "verbs/ah.h"
#include "verbs/cq.h"
#include "verbs/mr.h"
#include "verbs/qp.h"

namespace rdma {

namespace {

constexpr uint64_t kMs = 1'000'000;

// An {mr, offset, length} range of a registered buffer, bounds-checked.
struct Range {
  Mr* mr;
  uint64_t addr;
  uint64_t length;
};

Range ToRange(Napi::Value value, const std::string& name, uint64_t default_length) {
  Napi::Env env = value.Env();
  Napi::Object js = ToObject(value, name);
  Mr* mr = UnwrapOpen<Mr>(js.Get("mr"), name + ".mr");
  mr->CheckAttached(env);
  uint64_t size = mr->handle()->length;
  uint64_t offset = PropU64(js, "offset", 0);
  uint64_t length = PropU64(js, "length", default_length);
  if (offset > size || length > size - offset) ThrowRange(env, name + " exceeds its MR");
  return {mr, reinterpret_cast<uintptr_t>(mr->handle()->addr) + offset, length};
}

// Everything the loop touches, kept to re-check after each progress callback (JS could close it there).
struct Held {
  std::vector<Resource*> objects;
  void Check(Napi::Env env) const {
    for (Resource* object : objects) {
      if (object->closed()) ThrowType(env, std::string(object->kind()) + " was closed during the benchmark");
    }
  }
};

// spec.send: {opcode, local: {mr, offset, length}, sendFlags, remotes: [{addr, rkey}] (one per QP),
// compareAdd, swap, ah, remoteQpn, remoteQkey}
void ParseSend(Napi::Object js, bench::Spec* spec, Held* held) {
  Napi::Env env = js.Env();
  uint32_t opcode = ToU32(js.Get("opcode"), "send.opcode");
  if (opcode != IBV_WR_SEND && opcode != IBV_WR_RDMA_WRITE && opcode != IBV_WR_RDMA_READ &&
      opcode != IBV_WR_ATOMIC_FETCH_AND_ADD && opcode != IBV_WR_ATOMIC_CMP_AND_SWP) {
    ThrowRange(env, "send.opcode must be SEND, RDMA_WRITE, RDMA_READ or an atomic");
  }
  Range local = ToRange(js.Get("local"), "send.local", 0);
  held->objects.push_back(local.mr);
  bool rdma = opcode != IBV_WR_SEND;
  Napi::Array remotes = rdma ? js.Get("remotes").As<Napi::Array>() : Napi::Array::New(env);
  if (rdma && (!js.Get("remotes").IsArray() || remotes.Length() != spec->qps.size())) {
    ThrowType(env, "send.remotes must give one {addr, rkey} per QP");
  }
  Ah* ah = nullptr;
  if (spec->qps[0]->qp_type == IBV_QPT_UD) {
    if (spec->qps.size() != 1) ThrowType(env, "a UD benchmark runs on one QP");
    ah = UnwrapOpen<Ah>(js.Get("ah"), "send.ah");
    held->objects.push_back(ah);
  }
  for (size_t q = 0; q < spec->qps.size(); q++) {
    ibv_sge sge = {local.addr, static_cast<uint32_t>(local.length), local.mr->handle()->lkey};
    ibv_send_wr wr = {};
    wr.opcode = static_cast<ibv_wr_opcode>(opcode);
    wr.num_sge = local.length > 0 || opcode != IBV_WR_SEND ? 1 : 0;
    wr.send_flags = PropU32(js, "sendFlags", 0) & IBV_SEND_INLINE;
    if (rdma) {
      Napi::Object remote = ToObject(remotes.Get(static_cast<uint32_t>(q)), "send.remotes[]");
      uint64_t addr = ToU64(remote.Get("addr"), "remote.addr");
      uint32_t rkey = ToU32(remote.Get("rkey"), "remote.rkey");
      if (opcode == IBV_WR_ATOMIC_FETCH_AND_ADD || opcode == IBV_WR_ATOMIC_CMP_AND_SWP) {
        wr.wr.atomic.remote_addr = addr;
        wr.wr.atomic.rkey = rkey;
        wr.wr.atomic.compare_add = PropU64(js, "compareAdd", 0);
        wr.wr.atomic.swap = PropU64(js, "swap", 0);
      } else {
        wr.wr.rdma.remote_addr = addr;
        wr.wr.rdma.rkey = rkey;
      }
    }
    if (ah != nullptr) {
      wr.wr.ud.ah = ah->handle();
      wr.wr.ud.remote_qpn = ToU32(js.Get("remoteQpn"), "send.remoteQpn", 0xffffff);
      wr.wr.ud.remote_qkey = ToU32(js.Get("remoteQkey"), "send.remoteQkey");
    }
    spec->send_wrs.push_back(wr);
    spec->send_sges.push_back(sge);
  }
}

Napi::Value ToJs(Napi::Env env, const bench::Result& r, Napi::Value posted, Napi::Value completed) {
  Napi::Object js = Napi::Object::New(env);
  js.Set("posted", posted);
  js.Set("completed", completed);
  js.Set("first", r.first);
  js.Set("last", r.last);
  js.Set("sampleStart", r.sample_start);
  js.Set("sampleEnd", r.sample_end);
  js.Set("sampleIters", static_cast<double>(r.sample_iters));
  js.Set("scnt", static_cast<double>(r.scnt));
  js.Set("ccnt", static_cast<double>(r.ccnt));
  js.Set("rcnt", static_cast<double>(r.rcnt));
  js.Set("ticksPerUsec", r.ticks_per_usec);
  return js;
}

[[noreturn]] void ThrowFailure(Napi::Env env, const bench::Failure& failure) {
  Napi::Error error = VerbError(env, failure.verb, failure.err);
  error.Set("message", Napi::String::New(env, failure.what()));
  if (failure.status >= 0) {
    error.Set("status", Napi::Number::New(env, failure.status));
    error.Set("statusName", Napi::String::New(env, ibv_wc_status_str(static_cast<ibv_wc_status>(failure.status))));
    error.Set("vendorErr", Napi::Number::New(env, failure.vendor_err));
  }
  throw error;
}

}  // namespace

Napi::Value BenchRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object js = ToObject(info[0], "spec");
  bench::Spec spec;
  Held held;
  spec.loop = static_cast<bench::Loop>(ToU32(js.Get("loop"), "loop", static_cast<uint32_t>(bench::Loop::kBwRecv)));
  spec.initiator = PropBool(js, "initiator", false);

  if (!js.Get("qps").IsArray()) ThrowType(env, "qps must be an array of queue pairs");
  Napi::Array qps = js.Get("qps").As<Napi::Array>();
  if (qps.Length() == 0) ThrowType(env, "qps must not be empty");
  Cq* send_cq = UnwrapOpen<Cq>(js.Get("sendCq"), "sendCq");
  Cq* recv_cq = UnwrapOpen<Cq>(js.Get("recvCq"), "recvCq");
  held.objects.push_back(send_cq);
  held.objects.push_back(recv_cq);
  spec.send_cq = send_cq->handle();
  spec.recv_cq = recv_cq->handle();
  for (uint32_t i = 0; i < qps.Length(); i++) {
    Qp* qp = UnwrapOpen<Qp>(qps.Get(i), "qps[]");
    if (qp->handle()->send_cq != spec.send_cq || qp->handle()->recv_cq != spec.recv_cq) {
      ThrowType(env, "every QP must use sendCq and recvCq");
    }
    held.objects.push_back(qp);
    spec.qps.push_back(qp->handle());
  }
  spec.events = PropBool(js, "events", false);
  if (spec.events && (spec.send_cq->channel == nullptr || spec.recv_cq->channel == nullptr)) {
    ThrowType(env, "events need CQs with completion channels");
  }

  bool lat = spec.loop != bench::Loop::kBwPost && spec.loop != bench::Loop::kBwRecv;
  if (spec.loop != bench::Loop::kBwRecv) ParseSend(ToObject(js.Get("send"), "send"), &spec, &held);
  if (spec.loop == bench::Loop::kBwRecv || spec.loop == bench::Loop::kLatSend) {
    Range recv = ToRange(js.Get("recv"), "recv", 0);
    held.objects.push_back(recv.mr);
    spec.recv_sge = {recv.addr, static_cast<uint32_t>(recv.length), recv.mr->handle()->lkey};
    spec.rx_posted = PropU64(js, "rxPosted", 0);
  }
  if (spec.loop == bench::Loop::kLatWrite) {
    Range post = ToRange(js.Get("postByte"), "postByte", 1);
    Range poll = ToRange(js.Get("pollByte"), "pollByte", 1);
    if (post.length < 1 || poll.length < 1) ThrowRange(env, "postByte and pollByte need one byte");
    held.objects.push_back(post.mr);
    held.objects.push_back(poll.mr);
    spec.post_byte = reinterpret_cast<volatile uint8_t*>(post.addr);
    spec.poll_byte = reinterpret_cast<volatile uint8_t*>(poll.addr);
  }

  spec.iters = PropU64(js, "iters", 0);
  spec.duration_ns = PropU64(js, "durationMs", 0) * kMs;
  spec.margin_ns = PropU64(js, "marginMs", 0) * kMs;
  if (spec.iters == 0 && (spec.duration_ns == 0 || spec.duration_ns <= 2 * spec.margin_ns)) {
    ThrowRange(env, "give iters, or a durationMs longer than twice marginMs");
  }
  spec.tx_depth = PropU32(js, "txDepth", 1);
  spec.rx_depth = PropU32(js, "rxDepth", 1);
  spec.cq_mod = PropU32(js, "cqMod", 1);
  spec.post_list = PropU32(js, "postList", 1);
  if (spec.cq_mod == 0 || spec.post_list == 0 || spec.tx_depth < spec.post_list) {
    ThrowRange(env, "cqMod and postList must be positive and postList at most txDepth");
  }
  spec.record = PropBool(js, "record", false) && spec.iters > 0;
  spec.stall_ns = PropU64(js, "stallMs", 0) * kMs;
  spec.idle_ns = PropU64(js, "idleMs", 0) * kMs;

  // Timestamps land straight in typed arrays handed back to JS.
  size_t samples = spec.iters * spec.qps.size();
  Napi::Value posted = env.Undefined(), completed = env.Undefined();
  bench::Result result;
  if (spec.iters > 0 && (lat || spec.record)) {
    auto array = Napi::Float64Array::New(env, samples);
    result.posted = array.Data();
    posted = array;
  }
  if (spec.record && !lat) {
    auto array = Napi::Float64Array::New(env, samples);
    result.completed = array.Data();
    completed = array;
  }

  if (info[1].IsFunction()) {
    Napi::Function progress = info[1].As<Napi::Function>();
    spec.progress = [env, progress, &held](uint64_t done) {
      progress.Call({Napi::Number::New(env, static_cast<double>(done))});
      held.Check(env);
    };
  }
  try {
    bench::Run(spec, &result);
  } catch (const bench::Failure& failure) {
    ThrowFailure(env, failure);
  }
  return ToJs(env, result, posted, completed);
}

}  // namespace rdma
