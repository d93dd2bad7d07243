// The completion batch Cq::Poll writes: kWcWords 32-bit words per completion, in this order.
// lib/verbs/completion.ts reads them by the same names (WcWord); test/unit/constants.test.ts compares both.
#pragma once
#include <cstddef>

namespace rdma {

enum WcWord : size_t {
  kWcWrIdLo,
  kWcWrIdHi,
  kWcStatus,
  kWcOpcode,
  kWcVendorErr,
  kWcByteLen,
  kWcImmData,
  kWcQpNum,
  kWcSrcQp,
  kWcFlags,
  kWcPkeyIndex,
  kWcSlid,
  kWcSl,
  kWcDlidPathBits,
};

constexpr size_t kWcWords = 16;

}  // namespace rdma
