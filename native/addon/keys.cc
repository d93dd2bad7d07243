#include "addon/keys.h"

namespace rdma {

const char* Keys::Name(Key key) {
  static const char* const kNames[] = {
#define RDMA_KEY_NAME(name) #name,
      RDMA_HOT_KEYS(RDMA_KEY_NAME)
#undef RDMA_KEY_NAME
  };
  return kNames[static_cast<size_t>(key)];
}

Napi::Value Keys::Get(Napi::Object obj, Key key) {
  napi_value& name = names_[static_cast<size_t>(key)];
  if (name == nullptr) name = Napi::String::New(env_, Name(key));
  return obj.Get(name);
}

}  // namespace rdma
