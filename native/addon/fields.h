// Struct ⇄ JS conversions written as tables: each entry names a JS key and where its C field is, and the
// field's size says how it converts (1, 2 and 4 bytes, enums included: a number; 8 bytes: a bigint;
// big-endian GUIDs: kBe64). Device, port and QP attributes all go through here.
#pragma once
#include <endian.h>
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rdma {

struct Field {
  enum class Kind : uint8_t { kNumber, kBigInt, kBe64 };
  const char* key;
  size_t offset;
  size_t size;
  Kind kind;
};

// A field of `Struct` (nested members allowed: orig_attr.max_qp); kNumber or kBigInt from its size.
#define RDMA_FIELD(Struct, key, member)                                                                      \
  rdma::Field {                                                                                              \
    key, offsetof(Struct, member), sizeof(Struct::member),                                                   \
        sizeof(Struct::member) == 8 ? rdma::Field::Kind::kBigInt : rdma::Field::Kind::kNumber                \
  }
#define RDMA_BE64_FIELD(Struct, key, member) \
  rdma::Field { key, offsetof(Struct, member), 8, rdma::Field::Kind::kBe64 }

// A field read from JS: absent is `fallback`, above `max` a RangeError.
struct InputField {
  Field field;
  uint32_t max;
  uint32_t fallback;
};

// Each field of the table from in[key], read once.
template <size_t N>
void ReadFields(Napi::Object in, void* base, const InputField (&fields)[N]);

// The unsigned value of a field of at most 4 bytes.
uint32_t LoadU32(const void* base, const Field& field);
void StoreU32(void* base, const Field& field, uint32_t value);

// out[key] = the field, for each field of the table.
template <size_t N>
void SetFields(Napi::Object out, const void* base, const Field (&fields)[N]) {
  for (const Field& field : fields) {
    Napi::Env env = out.Env();
    const auto* at = static_cast<const uint8_t*>(base) + field.offset;
    if (field.kind == Field::Kind::kNumber) {
      out.Set(field.key, Napi::Number::New(env, LoadU32(base, field)));
      continue;
    }
    uint64_t value;
    memcpy(&value, at, 8);
    if (field.kind == Field::Kind::kBe64) value = be64toh(value);
    out.Set(field.key, Napi::BigInt::New(env, value));
  }
}

uint32_t ReadField(Napi::Object in, const InputField& field);

template <size_t N>
void ReadFields(Napi::Object in, void* base, const InputField (&fields)[N]) {
  for (const InputField& field : fields) StoreU32(base, field.field, ReadField(in, field));
}

// The same table back to JS (every input field fits a number).
template <size_t N>
void SetFields(Napi::Object out, const void* base, const InputField (&fields)[N]) {
  for (const InputField& field : fields) out.Set(field.field.key, Napi::Number::New(out.Env(), LoadU32(base, field.field)));
}

}  // namespace rdma
