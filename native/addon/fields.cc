#include "addon/fields.h"

#include "addon/args.h"

namespace rdma {

uint32_t ReadField(Napi::Object in, const InputField& field) {
  return PropU32(in, field.field.key, field.fallback, field.max);
}

uint32_t LoadU32(const void* base, const Field& field) {
  const auto* at = static_cast<const uint8_t*>(base) + field.offset;
  uint8_t byte = 0;
  uint16_t half = 0;
  uint32_t word = 0;
  if (field.size == 1) memcpy(&byte, at, 1);
  if (field.size == 2) memcpy(&half, at, 2);
  if (field.size == 4) memcpy(&word, at, 4);
  return field.size == 1 ? byte : field.size == 2 ? half : word;
}

void StoreU32(void* base, const Field& field, uint32_t value) {
  auto* at = static_cast<uint8_t*>(base) + field.offset;
  auto byte = static_cast<uint8_t>(value);
  auto half = static_cast<uint16_t>(value);
  if (field.size == 1) memcpy(at, &byte, 1);
  if (field.size == 2) memcpy(at, &half, 2);
  if (field.size == 4) memcpy(at, &value, 4);  // uint32_t and the enums
}

}  // namespace rdma
