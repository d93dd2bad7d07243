// Posting work request lists: the JS array is turned into linked ibv_send_wr/ibv_recv_wr arrays and
// handed to the provider in one call. Every address is checked against the MR it claims to be in.
#include <arpa/inet.h>

#include <cerrno>
#include <string>
#include <vector>

#include "args.h"
#include "mr.h"
#include "pd.h"
#include "qp.h"

namespace rdma {

// The opcodes this binding can describe fully; the provider is never handed an opcode it may index
// a table with unchecked. (IBV_WR_BIND_MW needs a bind descriptor, which comes with memory windows.)
static bool KnownSendOpcode(uint32_t opcode) {
  switch (opcode) {
    case IBV_WR_RDMA_WRITE: case IBV_WR_RDMA_WRITE_WITH_IMM: case IBV_WR_SEND: case IBV_WR_SEND_WITH_IMM:
    case IBV_WR_RDMA_READ: case IBV_WR_ATOMIC_CMP_AND_SWP: case IBV_WR_ATOMIC_FETCH_AND_ADD:
    case IBV_WR_LOCAL_INV: case IBV_WR_SEND_WITH_INV:
      return true;
    default:
      return false;
  }
}

void Qp::HoldMr(Mr* mr, Napi::Object mr_js) {
  if (posted_mrs_.find(mr) == posted_mrs_.end()) posted_mrs_.emplace(mr, Napi::Persistent(mr_js));
}

// An SGE is {mr, offset?, length?} (checked against the MR), {addr, length, lkey} (raw: the device
// validates the lkey, so only for memory the device touches), or {buffer, offset, length} for inline
// data that the CPU copies at post time.
ibv_sge Qp::ToSge(Napi::Value value, bool cpu_reads) {
  Napi::Env env = value.Env();
  Napi::Object js = ToObject(value, "sge");
  ibv_sge sge = {};
  if (Has(js, "mr")) {
    Mr* mr = UnwrapTagged<Mr>(js.Get("mr"), "sge.mr");
    mr->CheckAttached(env);
    uint64_t size = mr->handle()->length;
    uint64_t offset = PropU64(js, "offset", 0);
    if (offset > size) ThrowRange(env, "sge.offset is beyond the end of the MR");
    uint64_t length = PropU64(js, "length", size - offset);
    if (length > size - offset || length > UINT32_MAX) ThrowRange(env, "sge range exceeds the MR");
    sge.addr = reinterpret_cast<uintptr_t>(mr->handle()->addr) + offset;
    sge.length = static_cast<uint32_t>(length);
    sge.lkey = PropU32(js, "lkey", mr->handle()->lkey);
    HoldMr(mr, js.Get("mr").As<Napi::Object>());
  } else if (Has(js, "buffer")) {
    if (!cpu_reads) ThrowType(env, "a {buffer} sge is only for inline sends; register memory for the device");
    ByteRange range = ToByteRange(js.Get("buffer"), js.Get("offset"), js.Get("length"));
    sge.addr = reinterpret_cast<uintptr_t>(range.data);
    sge.length = static_cast<uint32_t>(range.length);
  } else {
    if (cpu_reads) ThrowType(env, "inline data must come from an MR or a buffer, not a raw address");
    sge.addr = ToU64(js.Get("addr"), "sge.addr");
    sge.length = ToU32(js.Get("length"), "sge.length");
    sge.lkey = ToU32(js.Get("lkey"), "sge.lkey");
  }
  return sge;
}

static Napi::Array ToArray(Napi::Value value, const char* name) {
  if (!value.IsArray()) ThrowType(value.Env(), std::string(name) + " must be an array of work requests");
  return value.As<Napi::Array>();
}

// The provider rejects the list at `bad`: report which request it was.
[[noreturn]] static void ThrowPostError(Napi::Env env, const char* verb, int err, size_t index) {
  Napi::Error error = VerbError(env, verb, err);
  error.Set("index", Napi::Number::New(env, static_cast<double>(index)));
  throw error;
}

template <class Wr>
static std::vector<Wr> LinkedList(size_t count, std::vector<std::vector<ibv_sge>>& sges) {
  std::vector<Wr> wrs(count);
  for (size_t i = 0; i < count; i++) {
    wrs[i].next = i + 1 < count ? &wrs[i + 1] : nullptr;
    wrs[i].sg_list = sges[i].data();
    wrs[i].num_sge = static_cast<int>(sges[i].size());
  }
  return wrs;
}

// postSend([{wrId, opcode, sendFlags, sgList, immData, invalidateRkey, remoteAddr, rkey, compareAdd, swap}])
Napi::Value Qp::PostSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Array list = ToArray(info[0], "workRequests");
  size_t count = list.Length();
  if (count == 0) return env.Undefined();
  std::vector<std::vector<ibv_sge>> sges(count);
  std::vector<Napi::Object> items;
  items.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Object wr = ToObject(list.Get(i), "work request");
    items.push_back(wr);
    bool inline_data = (PropU32(wr, "sendFlags", 0) & IBV_SEND_INLINE) != 0;
    Napi::Value sg_list = wr.Get("sgList");
    if (!sg_list.IsUndefined()) {
      Napi::Array array = ToArray(sg_list, "sgList");
      for (uint32_t j = 0; j < array.Length(); j++) sges[i].push_back(ToSge(array.Get(j), inline_data));
    }
  }
  std::vector<ibv_send_wr> wrs = LinkedList<ibv_send_wr>(count, sges);
  for (size_t i = 0; i < count; i++) {
    Napi::Object js = items[i];
    ibv_send_wr& wr = wrs[i];
    wr.wr_id = PropU64(js, "wrId", 0);
    uint32_t opcode = ToU32(js.Get("opcode"), "opcode");
    if (!KnownSendOpcode(opcode)) ThrowRange(env, "opcode " + std::to_string(opcode) + " is not a supported ibv_wr_opcode");
    wr.opcode = static_cast<ibv_wr_opcode>(opcode);
    wr.send_flags = PropU32(js, "sendFlags", 0);
    if (opcode == IBV_WR_SEND_WITH_INV || opcode == IBV_WR_LOCAL_INV) {
      wr.invalidate_rkey = ToU32(js.Get("invalidateRkey"), "invalidateRkey");
    } else {
      wr.imm_data = htonl(PropU32(js, "immData", 0));
    }
    if (opcode == IBV_WR_ATOMIC_CMP_AND_SWP || opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
      wr.wr.atomic.remote_addr = ToU64(js.Get("remoteAddr"), "remoteAddr");
      wr.wr.atomic.rkey = ToU32(js.Get("rkey"), "rkey");
      wr.wr.atomic.compare_add = ToU64(js.Get("compareAdd"), "compareAdd");
      wr.wr.atomic.swap = PropU64(js, "swap", 0);
    } else if (opcode == IBV_WR_RDMA_WRITE || opcode == IBV_WR_RDMA_WRITE_WITH_IMM || opcode == IBV_WR_RDMA_READ) {
      wr.wr.rdma.remote_addr = ToU64(js.Get("remoteAddr"), "remoteAddr");
      wr.wr.rdma.rkey = ToU32(js.Get("rkey"), "rkey");
    }
  }
  ibv_send_wr* bad = nullptr;
  int err = ibv_post_send(qp_, wrs.data(), &bad);
  if (err != 0) ThrowPostError(env, "ibv_post_send", err, bad != nullptr ? static_cast<size_t>(bad - wrs.data()) : 0);
  return env.Undefined();
}

// postRecv([{wrId, sgList}])
Napi::Value Qp::PostRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Array list = ToArray(info[0], "workRequests");
  size_t count = list.Length();
  if (count == 0) return env.Undefined();
  std::vector<std::vector<ibv_sge>> sges(count);
  std::vector<uint64_t> ids(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Object wr = ToObject(list.Get(i), "work request");
    ids[i] = PropU64(wr, "wrId", 0);
    Napi::Value sg_list = wr.Get("sgList");
    if (sg_list.IsUndefined()) continue;
    Napi::Array array = ToArray(sg_list, "sgList");
    for (uint32_t j = 0; j < array.Length(); j++) sges[i].push_back(ToSge(array.Get(j), false));
  }
  std::vector<ibv_recv_wr> wrs = LinkedList<ibv_recv_wr>(count, sges);
  for (size_t i = 0; i < count; i++) wrs[i].wr_id = ids[i];
  ibv_recv_wr* bad = nullptr;
  int err = ibv_post_recv(qp_, wrs.data(), &bad);
  if (err != 0) ThrowPostError(env, "ibv_post_recv", err, bad != nullptr ? static_cast<size_t>(bad - wrs.data()) : 0);
  return env.Undefined();
}

}  // namespace rdma
