#include "collectives/reduce.h"

#include <algorithm>
#include <type_traits>

namespace rdma::collectives {

namespace {

struct Sum { template <class T> static T Apply(T a, T b) { return a + b; } };
struct Prod { template <class T> static T Apply(T a, T b) { return a * b; } };
struct Min { template <class T> static T Apply(T a, T b) { return std::min(a, b); } };
struct Max { template <class T> static T Apply(T a, T b) { return std::max(a, b); } };
struct And { template <class T> static T Apply(T a, T b) { return a & b; } };
struct Or { template <class T> static T Apply(T a, T b) { return a | b; } };
struct Xor { template <class T> static T Apply(T a, T b) { return a ^ b; } };

// Signed overflow wraps, as in MPI implementations and as lib/collectives' reference computes it.
template <class T, bool = std::is_integral_v<T>>
struct ArithmeticOf { using type = T; };
template <class T>
struct ArithmeticOf<T, true> { using type = std::make_unsigned_t<T>; };
template <class T>
using Arithmetic = typename ArithmeticOf<T>::type;

template <class T, class Op>
void Loop(void* out_raw, const void* in_raw, size_t count) {
  auto* out = static_cast<T*>(out_raw);
  const auto* in = static_cast<const T*>(in_raw);
  for (size_t i = 0; i < count; i++) {
    if constexpr (std::is_same_v<Op, Sum> || std::is_same_v<Op, Prod>) {
      out[i] = static_cast<T>(Op::Apply(static_cast<Arithmetic<T>>(out[i]), static_cast<Arithmetic<T>>(in[i])));
    } else {
      out[i] = Op::Apply(out[i], in[i]);
    }
  }
}

template <class T>
ReduceFn ForType(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return Loop<T, Sum>;
    case ReduceOp::kProd: return Loop<T, Prod>;
    case ReduceOp::kMin: return Loop<T, Min>;
    case ReduceOp::kMax: return Loop<T, Max>;
    default: break;
  }
  if constexpr (std::is_integral_v<T>) {
    switch (op) {
      case ReduceOp::kAnd: return Loop<T, And>;
      case ReduceOp::kOr: return Loop<T, Or>;
      case ReduceOp::kXor: return Loop<T, Xor>;
      default: break;
    }
  }
  return nullptr;
}

}  // namespace

size_t ElementSize(DataType type) {
  switch (type) {
    case DataType::kInt32: case DataType::kUint32: case DataType::kFloat32: return 4;
    default: return 8;
  }
}

ReduceFn FindReduce(DataType type, ReduceOp op) {
  switch (type) {
    case DataType::kInt32: return ForType<int32_t>(op);
    case DataType::kInt64: return ForType<int64_t>(op);
    case DataType::kUint32: return ForType<uint32_t>(op);
    case DataType::kUint64: return ForType<uint64_t>(op);
    case DataType::kFloat32: return ForType<float>(op);
    case DataType::kFloat64: return ForType<double>(op);
    default: return nullptr;
  }
}

}  // namespace rdma::collectives
