// An XRC domain (ibv_open_xrcd): the scope in which XRC SRQs and XRC target QPs are shared. Processes that
// open it through the same file (an fd on it) share one domain; without a file it is private. XRC target
// QPs are made (ibv_create_qp_ex with the XRCD) or opened by number (ibv_open_qp) here: they have no PD,
// CQs or queues of their own, and receive into the XRC SRQ each sender names.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/resource.h"

namespace rdma {

class Context;

class Xrcd : public Napi::ObjectWrap<Xrcd>, public Resource, public Lifecycle<Xrcd> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'000eULL, 0x7872'6364'6f6d'6169ULL};
  static constexpr const char* kName = "XrcDomain";
  static Napi::Function Define(Napi::Env env);
  // context.openXrcd(fd, oflags): fd -1 for a private domain.
  static Napi::Object Open(const Napi::CallbackInfo& info, Napi::Object context_js, Context* context);

  explicit Xrcd(const Napi::CallbackInfo& info);
  ~Xrcd() override { Close(CloseMode::kQuiet); }
  ibv_xrcd* handle() const { return xrcd_; }
  Context* context() const { return context_; }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value CreateQp(const Napi::CallbackInfo& info);
  Napi::Value OpenQp(const Napi::CallbackInfo& info);

  ibv_xrcd* xrcd_ = nullptr;
  Context* context_ = nullptr;
};

}  // namespace rdma
