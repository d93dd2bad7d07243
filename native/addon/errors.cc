#include "addon/errors.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "addon/addon.h"

namespace rdma {

const char* ErrnoName(int err) {
  // strerrorname_np needs glibc 2.32; Debian 12 has 2.36.
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

Napi::Error VerbError(Napi::Env env, const char* verb, int err, const std::string& detail) {
  std::string message = std::string(verb) + " failed: " + strerror(err) + (detail.empty() ? "" : ": " + detail);
  Napi::Function ctor = AddonData::Get(env).error_class.Value();
  Napi::Object error = ctor.New({Napi::String::New(env, message), Napi::String::New(env, ErrnoName(err)),
                                 Napi::Number::New(env, err), Napi::String::New(env, verb)});
  return Napi::Error(env, error);
}

void ThrowVerb(Napi::Env env, const char* verb, int err, const std::string& detail) {
  throw VerbError(env, verb, err, detail);
}
void ThrowType(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }
void ThrowRange(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

}  // namespace rdma
