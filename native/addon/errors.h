// Error reporting shared by every verb: one errno helper that builds the JS RdmaError, plus the misuse
// errors (TypeError/RangeError) that never come from the device.
#pragma once
#include <napi.h>

namespace rdma {

// The JS error for a failed verb: an RdmaError (lib/core/errors.ts) with code, errno and the verb's name.
// `detail`, when given, says why (the binding refused the call itself, as the verb would have).
Napi::Error VerbError(Napi::Env env, const char* verb, int err, const std::string& detail = "");
// Throws VerbError as a C++ exception (NAPI_CPP_EXCEPTIONS is on).
[[noreturn]] void ThrowVerb(Napi::Env env, const char* verb, int err, const std::string& detail = "");
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

// Name of an errno value as a code string ('EOPNOTSUPP'); "E<number>" when unknown.
const char* ErrnoName(int err);

}  // namespace rdma
