// An address handle: where a UD send goes. Made by a PD from an address vector, or from a received work
// completion (to answer its sender).
#pragma once
#include <infiniband/verbs.h>
#include <napi.h>

#include "addon/resource.h"

namespace rdma {

class Pd;

class Ah : public Napi::ObjectWrap<Ah>, public Resource, public Lifecycle<Ah> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0001'0007ULL, 0x6164'6472'6861'6e64ULL};
  static constexpr const char* kName = "AddressHandle";
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd);
  static Napi::Object CreateFromCompletion(const Napi::CallbackInfo& info, Napi::Object pd_js, Pd* pd);

  explicit Ah(const Napi::CallbackInfo& info);
  ~Ah() override { Close(CloseMode::kQuiet); }
  ibv_ah* handle() const { return ah_; }

 private:
  static Napi::Object Wrap(Napi::Env env, Napi::Object pd_js, Pd* pd, ibv_ah* ah, const ibv_ah_attr& attr);
  int Destroy(CloseMode mode) override;
  Napi::Value Attr(const Napi::CallbackInfo& info);

  ibv_ah* ah_ = nullptr;
  ibv_ah_attr attr_ = {};
};

}  // namespace rdma
