// Posting work request lists: the JS array is turned into linked ibv_send_wr/ibv_recv_wr arrays and
// handed to the provider in one call. Every address is checked against the MR it claims to be in.
#include <arpa/inet.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "verbs/post.h"

#include "addon/args.h"
#include "addon/keys.h"
#include "addon/resource.h"
#include "verbs/ah.h"
#include "verbs/context.h"
#include "verbs/mr.h"
#include "verbs/mw.h"
#include "verbs/qp.h"

namespace rdma {

// The opcodes this binding can describe fully; the provider is never handed an opcode it may index
// a table with unchecked.
static bool KnownSendOpcode(uint32_t opcode) {
  switch (opcode) {
    case IBV_WR_RDMA_WRITE: case IBV_WR_RDMA_WRITE_WITH_IMM: case IBV_WR_SEND: case IBV_WR_SEND_WITH_IMM:
    case IBV_WR_RDMA_READ: case IBV_WR_ATOMIC_CMP_AND_SWP: case IBV_WR_ATOMIC_FETCH_AND_ADD:
    case IBV_WR_LOCAL_INV: case IBV_WR_SEND_WITH_INV: case IBV_WR_BIND_MW:
      return true;
    default:
      return false;
  }
}

void HeldObjects::Hold(const std::vector<ObjectUse>& uses) {
  for (const ObjectUse& use : uses) {
    if (held_.find(use.object) == held_.end()) held_.emplace(use.object, Held{Napi::Persistent(use.js), use.mr});
  }
}

void HeldObjects::Check(Napi::Env env) const {
  for (const auto& [object, held] : held_) {
    if (held.mr != nullptr) held.mr->CheckAttached(env);
    else object->CheckOpen(env);
  }
}

void HeldObjects::Clear() { held_.clear(); }

void InFlight::Add(size_t index, bool signaled, const std::vector<ObjectUse>* uses, size_t* next_use) {
  Request request = {0, signaled};
  for (; uses != nullptr && *next_use < uses->size() && (*uses)[*next_use].request == index; ++*next_use) {
    const ObjectUse& use = (*uses)[*next_use];
    auto [it, added] = held_.try_emplace(use.object);
    if (added) it->second.reference = Napi::Persistent(use.js);
    it->second.requests++;
    objects_.push_back(use.object);
    request.objects++;
  }
  requests_.push_back(request);
  added_++;
}

void InFlight::Sent(const ibv_send_wr* wrs, size_t count, bool signal_all, const std::vector<ObjectUse>* uses,
                    std::vector<WindowBind>* binds) {
  uint64_t base = added_;
  size_t next_use = 0;
  for (size_t i = 0; i < count; i++) Add(i, signal_all || (wrs[i].send_flags & IBV_SEND_SIGNALED) != 0, uses, &next_use);
  if (binds == nullptr) return;
  for (WindowBind& bind : *binds) binds_.push_back({base + bind.request, std::move(bind.window), bind.generation});
}

void InFlight::Received(size_t count, const std::vector<ObjectUse>* uses) {
  size_t next_use = 0;
  for (size_t i = 0; i < count; i++) Add(i, true, uses, &next_use);
}

void InFlight::PopOldest() {
  for (uint32_t i = 0; i < requests_.front().objects; i++) {
    auto it = held_.find(objects_.front());
    if (--it->second.requests == 0) held_.erase(it);
    objects_.pop_front();
  }
  requests_.pop_front();
  popped_++;
  // Completed successfully (an error completion clears instead): rxe bound the windows of these binds.
  for (; !binds_.empty() && binds_.front().request < popped_; binds_.pop_front()) {
    WindowState& window = *binds_.front().window;
    if (window.generation != binds_.front().generation) continue;  // bound or invalidated again since
    window.bound = true;
    window.pending_qp = nullptr;
  }
}

void InFlight::SendCompleted() {
  while (!requests_.empty()) {
    bool signaled = requests_.front().signaled;
    PopOldest();
    if (signaled) break;
  }
}

void InFlight::ReceiveCompleted() {
  if (!requests_.empty()) PopOldest();
}

void InFlight::Clear() {
  // The device runs none of them any more: a bind not yet completed did not (or will not) bind its window.
  for (const PendingBind& bind : binds_) {
    if (bind.window->generation == bind.generation) bind.window->pending_qp = nullptr;
  }
  binds_.clear();
  popped_ = added_;
  requests_.clear();
  objects_.clear();
  held_.clear();
}

// An SGE is {mr, offset?, length?} (checked against the MR), {addr, length, lkey} (raw: the device
// validates the lkey, so only for memory the device touches), or {buffer, offset, length} for inline
// data that the CPU copies at post time. Each property is read once.
static ibv_sge ToSge(Keys& k, Napi::Value value, bool cpu_reads, size_t request, std::vector<ObjectUse>* uses,
                     std::vector<Napi::ArrayBuffer>* inline_buffers) {
  Napi::Env env = value.Env();
  Napi::Object js = ToObject(value, "sge");
  ibv_sge sge = {};
  Napi::Value mr_js = k.Get(js, Key::mr);
  if (!mr_js.IsUndefined()) {
    Mr* mr = UnwrapTagged<Mr>(mr_js, "sge.mr");
    uint64_t offset = PropU64(k, js, Key::offset, 0);
    Napi::Value length_js = k.Get(js, Key::length);
    Napi::Value lkey_js = k.Get(js, Key::lkey);
    mr->CheckAttached(env);
    uint64_t size = mr->handle()->length;
    if (offset > size) ThrowRange(env, "sge.offset is beyond the end of the MR");
    uint64_t length = length_js.IsUndefined() ? size - offset : ToU64(length_js, "length");
    if (length > size - offset || length > UINT32_MAX) ThrowRange(env, "sge range exceeds the MR");
    sge.addr = reinterpret_cast<uintptr_t>(mr->handle()->addr) + offset;
    sge.length = static_cast<uint32_t>(length);
    sge.lkey = lkey_js.IsUndefined() ? mr->handle()->lkey : ToU32(lkey_js, "lkey");
    uses->push_back({request, mr, mr_js.As<Napi::Object>(), mr});
    return sge;
  }
  Napi::Value buffer_js = k.Get(js, Key::buffer);
  if (!buffer_js.IsUndefined()) {
    if (!cpu_reads || inline_buffers == nullptr) {
      ThrowType(env, cpu_reads ? "prepared work requests take their inline data from an MR, not a buffer"
                               : "a {buffer} sge is only for inline sends; register memory for the device");
    }
    ByteRange range = ToByteRange(buffer_js, k.Get(js, Key::offset), k.Get(js, Key::length));
    sge.addr = reinterpret_cast<uintptr_t>(range.data);
    sge.length = static_cast<uint32_t>(range.length);
    inline_buffers->push_back(range.buffer);
    return sge;
  }
  if (cpu_reads) ThrowType(env, "inline data must come from an MR or a buffer, not a raw address");
  sge.addr = ToU64(k.Get(js, Key::addr), "sge.addr");
  sge.length = ToU32(k.Get(js, Key::length), "sge.length");
  sge.lkey = ToU32(k.Get(js, Key::lkey), "sge.lkey");
  return sge;
}

[[noreturn]] void ThrowPostError(Napi::Env env, const char* verb, int err, size_t index) {
  Napi::Error error = VerbError(env, verb, err);
  error.Set("index", Napi::Number::New(env, static_cast<double>(index)));
  throw error;
}

static void ParseSgList(Keys& k, Napi::Object wr, bool cpu_reads, size_t request, const QueueLimits& limits,
                        std::vector<ObjectUse>* uses, std::vector<Napi::ArrayBuffer>* inline_buffers,
                        std::vector<ibv_sge>* out) {
  Napi::Value sg_list = k.Get(wr, Key::sgList);
  if (sg_list.IsUndefined()) return;
  Napi::Array array = ToList(sg_list, "sgList", limits.max_sge, "request of this queue (maxSge)");
  out->reserve(array.Length());
  for (uint32_t j = 0; j < array.Length(); j++) out->push_back(ToSge(k, array.Get(j), cpu_reads, request, uses, inline_buffers));
}

void ParseRecvList(Napi::Value value, const QueueLimits& limits, RecvList* out) {
  Keys k(value.Env());
  Napi::Array list = ToList(value, "workRequests", limits.max_wr, "post to this receive queue");
  size_t count = list.Length();
  out->sges.resize(count);
  out->wrs.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Object js = ToObject(list.Get(i), "work request");
    ParseSgList(k, js, false, i, limits, &out->uses, nullptr, &out->sges[i]);
    ibv_recv_wr& wr = out->wrs[i];
    wr.wr_id = PropU64(k, js, Key::wrId, 0);
    wr.next = i + 1 < count ? &out->wrs[i + 1] : nullptr;
    wr.sg_list = out->sges[i].data();
    wr.num_sge = static_cast<int>(out->sges[i].size());
  }
}

// The type-2 window bind of an IBV_WR_BIND_MW request: {mw, rkey, mr, offset, length, access}.
static void ParseBind(Keys& k, Napi::Object js, size_t request, SendList* out, ibv_send_wr* wr) {
  Napi::Object bind = ToObject(k.Get(js, Key::bind), "bind");
  Napi::Value mw_js = k.Get(bind, Key::mw);
  Napi::Value mr_js = k.Get(bind, Key::mr);
  uint64_t offset = PropU64(k, bind, Key::offset, 0);
  Napi::Value length_js = k.Get(bind, Key::length);
  uint32_t rkey = ToU32(k.Get(bind, Key::rkey), "bind.rkey");
  uint32_t access = PropU32(k, bind, Key::access, 0);
  Mw* mw = UnwrapOpen<Mw>(mw_js, "bind.mw");
  Mr* mr = UnwrapOpen<Mr>(mr_js, "bind.mr");
  uint64_t size = mr->handle()->length;
  uint64_t length = length_js.IsUndefined() ? (offset <= size ? size - offset : 0) : ToU64(length_js, "bind.length");
  if (offset > size || length > size - offset) ThrowRange(js.Env(), "the window exceeds the MR");
  wr->bind_mw.mw = mw->handle();
  wr->bind_mw.rkey = rkey;
  wr->bind_mw.bind_info.mr = mr->handle();
  wr->bind_mw.bind_info.addr = reinterpret_cast<uintptr_t>(mr->handle()->addr) + offset;
  wr->bind_mw.bind_info.length = length;
  wr->bind_mw.bind_info.mw_access_flags = access;
  out->uses.push_back({request, mw, mw_js.As<Napi::Object>(), nullptr});
  out->uses.push_back({request, mr, mr_js.As<Napi::Object>(), mr});
  out->binds.push_back({request, mw, rkey, mr});
}

uint64_t ExtendedSendOps(ibv_qp_type type) {
  constexpr uint64_t unreliable = IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM;
  // No LOCAL_INV on UC: rxe (kernel and provider) has none there, and asking for it fails the QP's
  // creation with EOPNOTSUPP (found by test/device/wr-fuzz.test.ts).
  constexpr uint64_t connected = unreliable | IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
                                 IBV_QP_EX_WITH_BIND_MW | IBV_QP_EX_WITH_SEND_WITH_INV;
  switch (type) {
    case IBV_QPT_RC: case IBV_QPT_XRC_SEND:
      return connected | IBV_QP_EX_WITH_LOCAL_INV | IBV_QP_EX_WITH_RDMA_READ | IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP | IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD;
    case IBV_QPT_UC: return connected;
    default: return unreliable;
  }
}

// The ibv_wr_* operation bit of a known opcode (enum ibv_wr_opcode and IBV_QP_EX_WITH_* share their order).
static uint64_t ExtendedOpBit(uint32_t opcode) { return 1ULL << opcode; }
static_assert(IBV_QP_EX_WITH_RDMA_WRITE == 1ULL << IBV_WR_RDMA_WRITE && IBV_QP_EX_WITH_BIND_MW == 1ULL << IBV_WR_BIND_MW &&
                  IBV_QP_EX_WITH_SEND_WITH_INV == 1ULL << IBV_WR_SEND_WITH_INV,
              "IBV_QP_EX_WITH_* follows enum ibv_wr_opcode");

// [{wrId, opcode, sendFlags, sgList, immData, invalidateRkey, remoteAddr, rkey, compareAdd, swap, ah, remoteQpn,
//   remoteQkey, remoteSrqn, bind}] → a linked list ready for ibv_post_send.
void ParseSendList(Napi::Value value, const QueueLimits& limits, SendList* out, bool prepared) {
  Napi::Env env = value.Env();
  Keys k(env);
  Napi::Array list = ToList(value, "workRequests", limits.max_wr, "post to this send queue");
  size_t count = list.Length();
  out->sges.resize(count);
  out->wrs.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Object js = ToObject(list.Get(i), "work request");
    ibv_send_wr& wr = out->wrs[i];
    wr.wr_id = PropU64(k, js, Key::wrId, 0);
    uint32_t opcode = ToU32(k.Get(js, Key::opcode), "opcode");
    if (!KnownSendOpcode(opcode)) ThrowRange(env, "opcode " + std::to_string(opcode) + " is not a supported ibv_wr_opcode");
    if (limits.extended_ops != 0 && (limits.extended_ops & ExtendedOpBit(opcode)) == 0) {
      // ibv_wr_* has no entry for it: the provider's function pointer would be null.
      ThrowVerb(env, "ibv_wr_start", EOPNOTSUPP, "this QP type has no opcode " + std::to_string(opcode) + " in the extended post API");
    }
    wr.opcode = static_cast<ibv_wr_opcode>(opcode);
    wr.send_flags = PropU32(k, js, Key::sendFlags, 0);
    bool inline_data = (wr.send_flags & IBV_SEND_INLINE) != 0;
    if (inline_data && (opcode == IBV_WR_RDMA_READ || opcode == IBV_WR_ATOMIC_CMP_AND_SWP || opcode == IBV_WR_ATOMIC_FETCH_AND_ADD)) {
      // The reply lands where the SGEs say; rxe's provider copies inline bytes over them, and rxe then places
      // the reply by those bytes (LOC_PROT_ERR at best).
      ThrowVerb(env, "ibv_post_send", EINVAL, "an RDMA read or atomic cannot be inline: its reply lands in its sgList");
    }
    // Inline data is copied when posted; a prepared request is posted again later, from memory the MR
    // keeps alive, never from a bare buffer.
    ParseSgList(k, js, inline_data, i, limits, &out->uses, prepared ? nullptr : &out->inline_buffers, &out->sges[i]);
    if (inline_data) {
      uint64_t total = 0;
      for (const ibv_sge& sge : out->sges[i]) total += sge.length;
      if (total > limits.max_inline) {
        ThrowRange(env, "inline data of " + std::to_string(total) + " bytes exceeds the QP's maxInlineData (" +
                            std::to_string(limits.max_inline) + ")");
      }
    }
    wr.next = i + 1 < count ? &out->wrs[i + 1] : nullptr;
    wr.sg_list = out->sges[i].data();
    wr.num_sge = static_cast<int>(out->sges[i].size());
    if (opcode == IBV_WR_SEND_WITH_INV || opcode == IBV_WR_LOCAL_INV) {
      wr.invalidate_rkey = ToU32(k.Get(js, Key::invalidateRkey), "invalidateRkey");
    } else {
      wr.imm_data = htonl(PropU32(k, js, Key::immData, 0));
    }
    switch (opcode) {
      case IBV_WR_ATOMIC_CMP_AND_SWP: case IBV_WR_ATOMIC_FETCH_AND_ADD:
        wr.wr.atomic.remote_addr = ToU64(k.Get(js, Key::remoteAddr), "remoteAddr");
        wr.wr.atomic.rkey = ToU32(k.Get(js, Key::rkey), "rkey");
        wr.wr.atomic.compare_add = ToU64(k.Get(js, Key::compareAdd), "compareAdd");
        wr.wr.atomic.swap = PropU64(k, js, Key::swap, 0);
        break;
      case IBV_WR_RDMA_WRITE: case IBV_WR_RDMA_WRITE_WITH_IMM: case IBV_WR_RDMA_READ:
        wr.wr.rdma.remote_addr = ToU64(k.Get(js, Key::remoteAddr), "remoteAddr");
        wr.wr.rdma.rkey = ToU32(k.Get(js, Key::rkey), "rkey");
        break;
      case IBV_WR_BIND_MW:
        ParseBind(k, js, i, out, &wr);
        break;
      default:
        break;
    }
    Napi::Value srqn_js = k.Get(js, Key::remoteSrqn);
    if (limits.qp_type == IBV_QPT_XRC_SEND) {
      wr.qp_type.xrc.remote_srqn = ToU32(srqn_js, "remoteSrqn", 0xffffff);
    } else if (!srqn_js.IsUndefined()) {
      ThrowType(env, "remoteSrqn (the XRC SRQ to receive a request) is only for XRC_SEND QPs");
    }
    if (limits.qp_type == IBV_QPT_UD) {
      Napi::Value ah_js = k.Get(js, Key::ah);
      uint32_t remote_qpn = ToU32(k.Get(js, Key::remoteQpn), "remoteQpn", 0xffffff);
      uint32_t remote_qkey = ToU32(k.Get(js, Key::remoteQkey), "remoteQkey");
      Ah* ah = UnwrapOpen<Ah>(ah_js, "ah");
      wr.wr.ud.ah = ah->handle();
      wr.wr.ud.remote_qpn = remote_qpn;
      wr.wr.ud.remote_qkey = remote_qkey;
      out->uses.push_back({i, ah, ah_js.As<Napi::Object>(), nullptr});
    }
  }
  // Checked at each post (CheckInvalidations): a prepared list is posted when the windows' state may differ.
  for (size_t i = 0; i < count; i++) {
    const ibv_send_wr& wr = out->wrs[i];
    if (wr.opcode == IBV_WR_LOCAL_INV || wr.opcode == IBV_WR_SEND_WITH_INV) out->invalidations.emplace_back(i, wr.invalidate_rkey);
  }
}

// Calls on_bind(bind) and on_invalidation(request, rkey) for the binds and invalidations among the first
// `end` requests of the list, in request order.
template <class OnBind, class OnInvalidation>
static void ForEachWindowEvent(const SendList& list, size_t end, OnBind&& on_bind, OnInvalidation&& on_invalidation) {
  size_t b = 0, v = 0;
  while (b < list.binds.size() || v < list.invalidations.size()) {
    bool bind = v == list.invalidations.size() || (b < list.binds.size() && list.binds[b].request < list.invalidations[v].first);
    if ((bind ? list.binds[b].request : list.invalidations[v].first) >= end) return;
    if (bind) {
      on_bind(list.binds[b++]);
    } else {
      on_invalidation(list.invalidations[v].first, list.invalidations[v].second);
      v++;
    }
  }
}

void CheckInvalidations(Napi::Env env, const SendList& list, size_t first, size_t count, Context* context, const Resource* qp) {
  if (context == nullptr) return;
  for (const auto& [request, rkey] : list.invalidations) {
    if (request < first || request >= first + count) continue;
    Mw* mw = context->WindowAt(rkey);
    if (mw == nullptr || mw->handle() == nullptr) continue;
    // A SEND_WITH_INV the receiver cannot honour is acknowledged by rxe, which then puts the receiving QP in
    // the error state without telling the sender: the sender's next request never completes.
    bool send = list.wrs[request].opcode == IBV_WR_SEND_WITH_INV;
    if (mw->handle()->type != IBV_MW_TYPE_2) {
      if (send) ThrowVerb(env, "ibv_post_send", EINVAL, "rkey " + std::to_string(rkey) + " names a type-1 window, which SEND_WITH_INV cannot invalidate");
      continue;
    }
    // The last bind (its key) or invalidation (none) of this window earlier in the slice decides, if any.
    std::optional<std::optional<uint32_t>> earlier;
    ForEachWindowEvent(
        list, request, [&](const SendList::Bind& bind) { if (bind.request >= first && bind.mw == mw) earlier = bind.rkey; },
        [&](size_t other, uint32_t other_rkey) { if (other >= first && context->WindowAt(other_rkey) == mw) earlier = std::optional<uint32_t>(); });
    std::optional<uint32_t> key = earlier.has_value() ? *earlier : mw->MayInvalidate(qp) ? std::optional<uint32_t>(mw->current_rkey()) : std::nullopt;
    if (!key.has_value()) {
      ThrowVerb(env, "ibv_post_send", EINVAL,
                "rkey " + std::to_string(rkey) + " names a type-2 window that is not bound, or whose bind has not completed");
    }
    if (send && *key != rkey) ThrowVerb(env, "ibv_post_send", EINVAL, "rkey " + std::to_string(rkey) + " is not the key of its window's binding (" + std::to_string(*key) + ")");
  }
}

void CheckUses(Napi::Env env, const std::vector<ObjectUse>& uses) {
  for (const ObjectUse& use : uses) {
    if (use.mr != nullptr) use.mr->CheckAttached(env);
    else use.object->CheckOpen(env);
  }
}

void CheckParsed(Napi::Env env, const SendList& list) {
  CheckUses(env, list.uses);
  for (const Napi::ArrayBuffer& buffer : list.inline_buffers) {
    if (buffer.IsDetached()) ThrowType(env, "the buffer of an inline sge was detached (freed) while the work requests were read");
  }
}

std::vector<WindowBind> RecordWindows(const SendList& list, size_t first, size_t posted, Context* context, Resource* qp, Napi::Object qp_js) {
  std::vector<WindowBind> binds;
  // In posting order: a bind's generation tells whether anything happened to its window after it.
  ForEachWindowEvent(
      list, first + posted,
      [&](const SendList::Bind& bind) {
        if (bind.request < first) return;
        uint64_t generation = bind.mw->BindPosted(bind.rkey, bind.mr->Value(), bind.mr, qp_js, qp);
        if (bind.mw->handle()->type == IBV_MW_TYPE_2) binds.push_back({bind.request - first, bind.mw->state(), generation});
      },
      [&](size_t request, uint32_t rkey) {
        Mw* mw = request >= first && context != nullptr ? context->WindowAt(rkey) : nullptr;
        if (mw != nullptr) mw->Invalidated();
      });
  return binds;
}

// Posts a parsed list through the extended API: the same requests, as ibv_wr_* calls in one batch.
// The provider reports a bad request only for the batch as a whole (at ibv_wr_complete).
int PostWithWrApi(ibv_qp_ex* qpx, ibv_send_wr* first, size_t count) {
  ibv_wr_start(qpx);
  for (size_t n = 0; n < count; n++) {
    ibv_send_wr& wr = first[n];
    qpx->wr_id = wr.wr_id;
    qpx->wr_flags = wr.send_flags;
    switch (wr.opcode) {
      case IBV_WR_RDMA_WRITE: ibv_wr_rdma_write(qpx, wr.wr.rdma.rkey, wr.wr.rdma.remote_addr); break;
      case IBV_WR_RDMA_WRITE_WITH_IMM: ibv_wr_rdma_write_imm(qpx, wr.wr.rdma.rkey, wr.wr.rdma.remote_addr, wr.imm_data); break;
      case IBV_WR_SEND: ibv_wr_send(qpx); break;
      case IBV_WR_SEND_WITH_IMM: ibv_wr_send_imm(qpx, wr.imm_data); break;
      case IBV_WR_RDMA_READ: ibv_wr_rdma_read(qpx, wr.wr.rdma.rkey, wr.wr.rdma.remote_addr); break;
      case IBV_WR_ATOMIC_CMP_AND_SWP:
        ibv_wr_atomic_cmp_swp(qpx, wr.wr.atomic.rkey, wr.wr.atomic.remote_addr, wr.wr.atomic.compare_add, wr.wr.atomic.swap);
        break;
      case IBV_WR_ATOMIC_FETCH_AND_ADD:
        ibv_wr_atomic_fetch_add(qpx, wr.wr.atomic.rkey, wr.wr.atomic.remote_addr, wr.wr.atomic.compare_add);
        break;
      case IBV_WR_LOCAL_INV: ibv_wr_local_inv(qpx, wr.invalidate_rkey); break;
      case IBV_WR_SEND_WITH_INV: ibv_wr_send_inv(qpx, wr.invalidate_rkey); break;
      case IBV_WR_BIND_MW: ibv_wr_bind_mw(qpx, wr.bind_mw.mw, wr.bind_mw.rkey, &wr.bind_mw.bind_info); break;
      default: ibv_wr_abort(qpx); return EOPNOTSUPP;
    }
    if (qpx->qp_base.qp_type == IBV_QPT_UD) ibv_wr_set_ud_addr(qpx, wr.wr.ud.ah, wr.wr.ud.remote_qpn, wr.wr.ud.remote_qkey);
    if (qpx->qp_base.qp_type == IBV_QPT_XRC_SEND) ibv_wr_set_xrc_srqn(qpx, wr.qp_type.xrc.remote_srqn);
    if (wr.opcode == IBV_WR_LOCAL_INV || wr.opcode == IBV_WR_BIND_MW) continue;
    if (wr.send_flags & IBV_SEND_INLINE) {
      // Gathered into one buffer: rxe's ibv_wr_set_inline_data_list (rdma-core 44) loses the total length.
      std::vector<uint8_t> data;
      for (int i = 0; i < wr.num_sge; i++) {
        auto* bytes = reinterpret_cast<const uint8_t*>(wr.sg_list[i].addr);
        data.insert(data.end(), bytes, bytes + wr.sg_list[i].length);
      }
      ibv_wr_set_inline_data(qpx, data.data(), data.size());
    } else if (wr.num_sge == 1) {
      ibv_wr_set_sge(qpx, wr.sg_list[0].lkey, wr.sg_list[0].addr, wr.sg_list[0].length);
    } else {
      // rxe before rdma-core PR #1744 counts the first SGE's length once per SGE here.
      ibv_wr_set_sge_list(qpx, static_cast<size_t>(wr.num_sge), wr.sg_list);
    }
  }
  return ibv_wr_complete(qpx);
}

// postSend([...]): see ParseSendList.
Napi::Value Qp::PostSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SendList list;
  ParseSendList(info[0], send_limits_, &list, false);
  // Reading the list may have run JS: only now is the QP's (and everything named's) state checked.
  CheckOpen(env);
  CheckParsed(env, list);
  CheckInvalidations(env, list, 0, list.wrs.size(), send_limits_.context, this);
  if (list.wrs.empty()) return env.Undefined();
  int err;
  size_t posted = list.wrs.size();
  if (qpx_ != nullptr) {
    err = PostWithWrApi(qpx_, list.wrs.data(), list.wrs.size());  // all or nothing
    if (err != 0) posted = 0;
  } else {
    ibv_send_wr* bad = nullptr;
    err = ibv_post_send(qp_, list.wrs.data(), &bad);
    // The requests before a rejected one were posted.
    if (err != 0) posted = bad != nullptr ? static_cast<size_t>(bad - list.wrs.data()) : 0;
  }
  std::vector<WindowBind> binds = RecordWindows(list, 0, posted, send_limits_.context, this, Value());
  sends_.Sent(list.wrs.data(), posted, signal_all_, &list.uses, &binds);
  if (err != 0 && qpx_ != nullptr) ThrowVerb(env, "ibv_wr_complete", err);
  if (err != 0) ThrowPostError(env, "ibv_post_send", err, posted);
  return env.Undefined();
}

// postRecv([{wrId, sgList}])
Napi::Value Qp::PostRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOwnReceiveQueue(env);
  RecvList list;
  ParseRecvList(info[0], recv_limits_, &list);
  CheckOpen(env);
  CheckNoRing(env);
  CheckUses(env, list.uses);
  if (list.wrs.empty()) return env.Undefined();
  ibv_recv_wr* bad = nullptr;
  int err = ibv_post_recv(qp_, list.wrs.data(), &bad);
  size_t posted = err == 0 ? list.wrs.size() : bad != nullptr ? static_cast<size_t>(bad - list.wrs.data()) : 0;
  receives_.Received(posted, &list.uses);
  if (err != 0) ThrowPostError(env, "ibv_post_recv", err, posted);
  return env.Undefined();
}

}  // namespace rdma
