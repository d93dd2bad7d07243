// Element-wise reductions for the collectives' C core: out[i] = out[i] op in[i], one loop per data type and
// operation, chosen once per collective (never per element). Codes match lib/collectives/types.ts.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rdma::collectives {

enum class DataType : uint32_t { kInt32 = 0, kInt64 = 1, kUint32 = 2, kUint64 = 3, kFloat32 = 4, kFloat64 = 5, kCount };
enum class ReduceOp : uint32_t { kSum = 0, kProd = 1, kMin = 2, kMax = 3, kAnd = 4, kOr = 5, kXor = 6, kCount };

using ReduceFn = void (*)(void* out, const void* in, size_t count);

size_t ElementSize(DataType type);
// nullptr when the operation does not apply to the type (bitwise operations on floats).
ReduceFn FindReduce(DataType type, ReduceOp op);

}  // namespace rdma::collectives
