// Work-request marshalling shared by QPs and SRQs: JS arrays become linked ibv_*_wr arrays, and every
// object a posted request names (MRs, AHs, MWs) is kept alive by its queue.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <unordered_map>
#include <vector>

namespace rdma {

// Work requests name MRs, AHs and MWs by key or pointer only: the queue holds every object it has
// posted with until it closes, so GC cannot free them under an outstanding request.
class PostedRefs {
 public:
  void Hold(const void* object, Napi::Object js);
  void Clear();

 private:
  std::unordered_map<const void*, Napi::ObjectReference> refs_;
};

// Resolves a scatter/gather entry given from JS; `cpu_reads` when the CPU (not the device) reads the
// memory, as for inline data, where only memory this process owns is acceptable.
ibv_sge ToSge(Napi::Value value, bool cpu_reads, PostedRefs& refs);

struct RecvList {
  std::vector<std::vector<ibv_sge>> sges;
  std::vector<ibv_recv_wr> wrs;
};
// [{wrId, sgList}] → a linked list ready for ibv_post_recv / ibv_post_srq_recv.
void ParseRecvList(Napi::Value list, PostedRefs& refs, RecvList* out);

struct SendList {
  std::vector<std::vector<ibv_sge>> sges;
  std::vector<ibv_send_wr> wrs;
};
// [{wrId, opcode, sendFlags, sgList, ...}] → a linked list ready for ibv_post_send on `qp`. `prepared`: the
// list is kept and posted again later (qp.prepareSend), so inline data must come from an MR.
void ParseSendList(Napi::Value list, ibv_qp* qp, PostedRefs& refs, SendList* out, bool prepared);

// Posts `count` parsed requests through the extended API (ibv_wr_*) in one batch; returns 0 or an errno.
int PostWithWrApi(ibv_qp_ex* qpx, ibv_send_wr* first, size_t count);

// The provider rejected the list at `index`: throws an RdmaError carrying it.
[[noreturn]] void ThrowPostError(Napi::Env env, const char* verb, int err, size_t index);

}  // namespace rdma
