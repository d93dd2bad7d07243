// Prepared work requests: a send or receive list marshalled once (qp.prepareSend/prepareRecv) and posted
// many times, a slice at a time, with no per-post conversion. The hot path for TypeScript loops that
// repost the same requests (benchmarks, receive rings): one call with two integers per post.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/resource.h"
#include "verbs/post.h"

namespace rdma {

class Qp;

class PreparedWorkRequests : public Napi::ObjectWrap<PreparedWorkRequests>, public Resource, public Lifecycle<PreparedWorkRequests> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'000cULL, 0x7072'6570'6172'6564ULL};
  static constexpr const char* kName = "PreparedWorkRequests";
  static Napi::Function Define(Napi::Env env);
  // qp.prepareSend(list) / qp.prepareRecv(list)
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object qp_js, Qp* qp, bool send);

  explicit PreparedWorkRequests(const Napi::CallbackInfo& info);
  ~PreparedWorkRequests() override { Close(CloseMode::kQuiet); }

 private:
  int Destroy(CloseMode mode) override;
  // post(first, count): posts requests [first, first + count) as one list.
  Napi::Value Post(const Napi::CallbackInfo& info);
  Napi::Value Length(const Napi::CallbackInfo& info);

  Qp* owner_ = nullptr;
  ibv_qp* qp_ = nullptr;
  ibv_qp_ex* qpx_ = nullptr;  // the QP posts through ibv_wr_*: so do its prepared sends
  bool send_ = true;
  SendList send_list_;
  RecvList recv_list_;
  HeldObjects held_;  // the MRs, AHs and MWs the requests name stay alive as long as the requests do
};

}  // namespace rdma
