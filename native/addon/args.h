// Argument checking for values that come from JS: wrong types are TypeErrors, out-of-range numbers are
// RangeErrors, and both name the argument. Nothing a caller passes reaches a verb unchecked.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace rdma {

uint32_t ToU32(Napi::Value value, const std::string& name, uint32_t max = UINT32_MAX);
int32_t ToI32(Napi::Value value, const std::string& name, int32_t min, int32_t max);
// Accepts a bigint or a non-negative safe-integer number.
uint64_t ToU64(Napi::Value value, const std::string& name);
bool ToBool(Napi::Value value, const std::string& name);
Napi::Object ToObject(Napi::Value value, const std::string& name);

// Optional properties: `fallback` when absent (undefined).
uint32_t PropU32(Napi::Object obj, const char* key, uint32_t fallback, uint32_t max = UINT32_MAX);
uint64_t PropU64(Napi::Object obj, const char* key, uint64_t fallback);
bool PropBool(Napi::Object obj, const char* key, bool fallback);
// The same, for the hot path's keys (addon/keys.h).
class Keys;
enum class Key : uint8_t;
uint32_t PropU32(Keys& keys, Napi::Object obj, Key key, uint32_t fallback, uint32_t max = UINT32_MAX);
uint64_t PropU64(Keys& keys, Napi::Object obj, Key key, uint64_t fallback);

// Reads `key` once: false when absent, else converts it into *out.
bool OptionalU32(Napi::Object obj, const char* key, uint32_t* out, uint32_t max = UINT32_MAX);

// A byte range of an ArrayBuffer, as given by lib/ (buffer, byteOffset, byteLength), bounds-checked.
struct ByteRange {
  Napi::ArrayBuffer buffer;
  uint8_t* data;
  size_t length;
};
ByteRange ToByteRange(Napi::Value buffer, Napi::Value offset, Napi::Value length);
// A Uint8Array of exactly `size` bytes (GIDs).
const uint8_t* ToFixedBytes(Napi::Value value, size_t size, const std::string& name);
// An array of at most `max` entries (else a RangeError naming the `queue` that takes them).
Napi::Array ToList(Napi::Value value, const char* name, uint32_t max, const char* queue);

Napi::Value FromU64(Napi::Env env, uint64_t value);  // a bigint

}  // namespace rdma
