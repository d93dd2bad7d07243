// A protection domain: the parent of memory regions and windows, queue pairs, SRQs and address handles.
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/resource.h"

namespace rdma {

class Context;

class Pd : public Napi::ObjectWrap<Pd>, public Resource, public Lifecycle<Pd> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0002ULL, 0x7072'6f74'6563'7400ULL};
  static constexpr const char* kName = "ProtectionDomain";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, Napi::Object context_js, Context* context);

  explicit Pd(const Napi::CallbackInfo& info);
  ~Pd() override { Close(CloseMode::kQuiet); }
  ibv_pd* handle() const { return pd_; }
  Context* context() const { return context_; }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value RegisterMemory(const Napi::CallbackInfo& info);
  Napi::Value CreateQp(const Napi::CallbackInfo& info);
  Napi::Value CreateAh(const Napi::CallbackInfo& info);
  Napi::Value CreateAhFromCompletion(const Napi::CallbackInfo& info);
  Napi::Value CreateSrq(const Napi::CallbackInfo& info);
  Napi::Value AllocMw(const Napi::CallbackInfo& info);

  ibv_pd* pd_ = nullptr;
  Context* context_ = nullptr;
};

}  // namespace rdma
