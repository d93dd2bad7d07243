// Work-request marshalling shared by QPs, SRQs and prepared lists: JS arrays become linked ibv_*_wr
// arrays, with the objects each request names (MRs, AHs, MWs), which must stay alive while the device may
// use them.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

namespace rdma {

class Context;
class Mr;
class Mw;
class Resource;
struct WindowState;

// A type-2 bind among posted requests (`request` counts from the first one posted): rxe has bound the window
// once that request completes successfully, unless the window was bound or invalidated again since.
struct WindowBind {
  size_t request;
  std::shared_ptr<WindowState> window;
  uint64_t generation;
};

// Work requests name MRs, AHs and MWs by key or pointer only; parsing records which request names which.
struct ObjectUse {
  size_t request;  // index in the parsed list
  Resource* object;
  Napi::Object js;  // valid for the call that parsed the list
  Mr* mr;           // set when the object is an MR (its buffer must still be attached)
};

// What a queue accepts, checked before anything is allocated for a list: a list longer than the queue,
// an SGE list longer than a request may have or inline data beyond the QP's inline size is a RangeError.
struct QueueLimits {
  uint32_t max_wr = 0, max_sge = 0, max_inline = 0;
  ibv_qp_type qp_type = IBV_QPT_RC;
  uint64_t extended_ops = 0;  // the ibv_wr_* operations an extended QP was created for (0: not extended)
  Context* context = nullptr;
};

// The IBV_QP_EX_WITH_* operations an extended QP of `type` is created for.
uint64_t ExtendedSendOps(ibv_qp_type type);

// Objects held for as long as something lives: a prepared list holds what its requests name.
class HeldObjects {
 public:
  void Hold(const std::vector<ObjectUse>& uses);
  // Each must still be usable (it may have been closed since: an MR by freeing its mapped buffer).
  void Check(Napi::Env env) const;
  void Clear();

 private:
  struct Held {
    Napi::ObjectReference reference;
    Mr* mr;
  };
  std::unordered_map<Resource*, Held> held_;
};

// What a queue's outstanding requests use, held only while they are outstanding (as node-usb holds a
// transfer's buffers): one reference per object with a count of the requests naming it, and the requests
// in posting order. A queue completes in order: a send completion also ends the unsignaled sends posted
// before it, every receive completes, and after an error completion the device touches none of the
// queue's requests again (the QP is in the error state; the rest only flush). So the oldest requests are
// let go as completions are polled, and at most a queue's depth of requests is ever held. An SRQ's
// receives are consumed in posting order but may be polled out of it across QPs and CQs; letting go of
// the oldest one then may free an object a consumed receive still names, which costs that receive a
// protection error (deregistration is synchronous), never memory.
class InFlight {
 public:
  // The first `count` requests of a parsed list were handed to the device (prepared lists pass no uses:
  // they hold their own objects).
  // `binds` (from RecordWindows) are confirmed to their windows as the requests complete successfully.
  void Sent(const ibv_send_wr* wrs, size_t count, bool signal_all, const std::vector<ObjectUse>* uses,
            std::vector<WindowBind>* binds = nullptr);
  void Received(size_t count, const std::vector<ObjectUse>* uses);
  // One completion polled for this queue.
  void SendCompleted();
  void ReceiveCompleted();
  void Clear();
  size_t held_objects() const { return held_.size(); }
  size_t outstanding() const { return requests_.size(); }

 private:
  struct Request {
    uint32_t objects;
    bool signaled;
  };
  struct Held {
    Napi::ObjectReference reference;
    size_t requests;
  };
  struct PendingBind {
    uint64_t request;  // in added_ numbering
    std::shared_ptr<WindowState> window;
    uint64_t generation;
  };
  void Add(size_t index, bool signaled, const std::vector<ObjectUse>* uses, size_t* next_use);
  void PopOldest();

  std::deque<Request> requests_;
  std::deque<PendingBind> binds_;  // type-2 binds among requests_, oldest first
  uint64_t added_ = 0, popped_ = 0;  // requests ever added, and let go in order after completing
  std::deque<const void*> objects_;  // the objects of requests_, in order
  std::unordered_map<const void*, Held> held_;
};

// Resolves a scatter/gather entry given from JS; `cpu_reads` when the CPU (not the device) reads the
// memory, as for inline data, where only memory this process owns is acceptable.
ibv_sge ToSge(Napi::Value value, bool cpu_reads, size_t request, std::vector<ObjectUse>* uses);

struct RecvList {
  std::vector<std::vector<ibv_sge>> sges;
  std::vector<ibv_recv_wr> wrs;
  std::vector<ObjectUse> uses;
};
// [{wrId, sgList}] → a linked list ready for ibv_post_recv / ibv_post_srq_recv.
void ParseRecvList(Napi::Value list, const QueueLimits& limits, RecvList* out);

struct SendList {
  std::vector<std::vector<ibv_sge>> sges;
  std::vector<ibv_send_wr> wrs;
  std::vector<ObjectUse> uses;
  std::vector<Napi::ArrayBuffer> inline_buffers;  // {buffer} SGEs the CPU reads at post time
  struct Bind {
    size_t request;
    Mw* mw;
    uint32_t rkey;
    Mr* mr;
  };
  std::vector<Bind> binds;
  std::vector<std::pair<size_t, uint32_t>> invalidations;  // LOCAL_INV and SEND_WITH_INV requests and their rkeys
};
// [{wrId, opcode, sendFlags, sgList, ...}] → a linked list ready for ibv_post_send. `prepared`: the list is
// kept and posted again later (qp.prepareSend), so inline data must come from an MR.
void ParseSendList(Napi::Value list, const QueueLimits& limits, SendList* out, bool prepared);

// Reading the list ran JS (getters, Proxies), which may have closed what it names or detached its
// buffers: each must still be usable. Called after parsing, right before posting.
void CheckUses(Napi::Env env, const std::vector<ObjectUse>& uses);
void CheckParsed(Napi::Env env, const SendList& list);
// Before requests [first, first + count) of the list go to the device through `qp`: each LOCAL_INV and
// SEND_WITH_INV naming a type-2 window of `context` must find it bound when it runs (rxe oopses otherwise):
// bound and confirmed, or by a bind outstanding on this QP or earlier in the slice, and not invalidated
// earlier in the slice. RdmaError EINVAL otherwise.
void CheckInvalidations(Napi::Env env, const SendList& list, size_t first, size_t count, Context* context, const Resource* qp);
// After requests [first, first + posted) went to the device: windows record their binds and invalidations,
// in posting order. Returns the type-2 binds for the queue to confirm at completion (InFlight::Sent).
std::vector<WindowBind> RecordWindows(const SendList& list, size_t first, size_t posted, Context* context, Resource* qp, Napi::Object qp_js);

// Posts `count` parsed requests through the extended API (ibv_wr_*) in one batch; returns 0 or an errno.
int PostWithWrApi(ibv_qp_ex* qpx, ibv_send_wr* first, size_t count);

// The provider rejected the list at `index`: throws an RdmaError carrying it.
[[noreturn]] void ThrowPostError(Napi::Env env, const char* verb, int err, size_t index);

}  // namespace rdma
