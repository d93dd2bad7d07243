// Property names read on the hot path (work requests and their SGEs). N-API before version 10 cannot hold
// a string across calls (a reference needs an object), so each name is made at most once per call, when
// first read: parsing a list of 32 requests makes each name once instead of 32 times.
#pragma once
#include <napi.h>

#include <cstdint>

namespace rdma {

#define RDMA_HOT_KEYS(X)                                                                                        \
  X(wrId) X(opcode) X(sendFlags) X(sgList) X(mr) X(offset) X(length) X(lkey) X(addr) X(buffer) X(immData)      \
  X(invalidateRkey) X(remoteAddr) X(rkey) X(compareAdd) X(swap) X(ah) X(remoteQpn) X(remoteQkey) X(remoteSrqn) X(bind) X(mw) \
  X(access)

enum class Key : uint8_t {
#define RDMA_KEY_ENUM(name) name,
  RDMA_HOT_KEYS(RDMA_KEY_ENUM)
#undef RDMA_KEY_ENUM
  kCount
};

class Keys {
 public:
  explicit Keys(Napi::Env env) : env_(env) {}
  // obj[key], the key's string made on first use in this call.
  Napi::Value Get(Napi::Object obj, Key key);
  static const char* Name(Key key);

 private:
  Napi::Env env_;
  napi_value names_[static_cast<size_t>(Key::kCount)] = {};
};

}  // namespace rdma
