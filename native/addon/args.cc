#include "addon/args.h"

#include <cmath>

#include "addon/errors.h"
#include "addon/keys.h"

namespace rdma {

static double ToNumber(Napi::Value value, const std::string& name) {
  if (!value.IsNumber()) ThrowType(value.Env(), name + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || std::trunc(number) != number) ThrowRange(value.Env(), name + " must be an integer");
  return number;
}

uint32_t ToU32(Napi::Value value, const std::string& name, uint32_t max) {
  double number = ToNumber(value, name);
  if (number < 0 || number > max) ThrowRange(value.Env(), name + " must be in [0, " + std::to_string(max) + "]");
  return static_cast<uint32_t>(number);
}

int32_t ToI32(Napi::Value value, const std::string& name, int32_t min, int32_t max) {
  double number = ToNumber(value, name);
  if (number < min || number > max) {
    ThrowRange(value.Env(), name + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int32_t>(number);
}

uint64_t ToU64(Napi::Value value, const std::string& name) {
  if (value.IsBigInt()) {
    bool lossless = false;
    uint64_t result = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowRange(value.Env(), name + " must fit in 64 unsigned bits");
    return result;
  }
  double number = ToNumber(value, name);
  if (number < 0 || number > 9007199254740991.0) ThrowRange(value.Env(), name + " must be a non-negative safe integer or a bigint");
  return static_cast<uint64_t>(number);
}

bool ToBool(Napi::Value value, const std::string& name) {
  if (!value.IsBoolean()) ThrowType(value.Env(), name + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

Napi::Object ToObject(Napi::Value value, const std::string& name) {
  if (!value.IsObject()) ThrowType(value.Env(), name + " must be an object");
  return value.As<Napi::Object>();
}

uint32_t PropU32(Keys& keys, Napi::Object obj, Key key, uint32_t fallback, uint32_t max) {
  Napi::Value value = keys.Get(obj, key);
  return value.IsUndefined() ? fallback : ToU32(value, Keys::Name(key), max);
}

uint64_t PropU64(Keys& keys, Napi::Object obj, Key key, uint64_t fallback) {
  Napi::Value value = keys.Get(obj, key);
  return value.IsUndefined() ? fallback : ToU64(value, Keys::Name(key));
}

bool OptionalU32(Napi::Object obj, const char* key, uint32_t* out, uint32_t max) {
  Napi::Value value = obj.Get(key);
  if (value.IsUndefined()) return false;
  *out = ToU32(value, key, max);
  return true;
}

uint32_t PropU32(Napi::Object obj, const char* key, uint32_t fallback, uint32_t max) {
  Napi::Value value = obj.Get(key);
  return value.IsUndefined() ? fallback : ToU32(value, key, max);
}

uint64_t PropU64(Napi::Object obj, const char* key, uint64_t fallback) {
  Napi::Value value = obj.Get(key);
  return value.IsUndefined() ? fallback : ToU64(value, key);
}

bool PropBool(Napi::Object obj, const char* key, bool fallback) {
  Napi::Value value = obj.Get(key);
  return value.IsUndefined() ? fallback : ToBool(value, key);
}

ByteRange ToByteRange(Napi::Value buffer, Napi::Value offset, Napi::Value length) {
  Napi::Env env = buffer.Env();
  if (!buffer.IsArrayBuffer()) ThrowType(env, "buffer must be an ArrayBuffer, Buffer or typed array");
  Napi::ArrayBuffer array_buffer = buffer.As<Napi::ArrayBuffer>();
  if (array_buffer.IsDetached()) ThrowType(env, "buffer is detached");
  size_t total = array_buffer.ByteLength();
  double start = ToNumber(offset, "offset"), size = ToNumber(length, "length");
  if (start < 0 || size < 0 || start + size > static_cast<double>(total)) {
    ThrowRange(env, "range [" + std::to_string(static_cast<uint64_t>(start)) + ", +" +
                        std::to_string(static_cast<uint64_t>(size)) + ") is outside the buffer of " +
                        std::to_string(total) + " bytes");
  }
  return {array_buffer, static_cast<uint8_t*>(array_buffer.Data()) + static_cast<size_t>(start), static_cast<size_t>(size)};
}

const uint8_t* ToFixedBytes(Napi::Value value, size_t size, const std::string& name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      value.As<Napi::Uint8Array>().ByteLength() != size) {
    ThrowType(value.Env(), name + " must be a Uint8Array of " + std::to_string(size) + " bytes");
  }
  return value.As<Napi::Uint8Array>().Data();
}

Napi::Value FromU64(Napi::Env env, uint64_t value) { return Napi::BigInt::New(env, value); }

// A list is an array no longer than the queue: its length is checked before anything is allocated for it.
Napi::Array ToList(Napi::Value value, const char* name, uint32_t max, const char* queue) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) ThrowType(env, std::string(name) + " must be an array");
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() > max) {
    ThrowRange(env, std::string(name) + " has " + std::to_string(array.Length()) + " entries; a " + queue +
                        " takes at most " + std::to_string(max));
  }
  return array;
}

}  // namespace rdma
