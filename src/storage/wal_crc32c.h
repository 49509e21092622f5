// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven slicing-by-8.
//
// Written here rather than taken from a library: it is forty lines and keeps the storage layer
// free of a new dependency. Check value: crc32c("123456789") == 0xE3069283.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace synod::storage {

// Extends `crc` (the CRC of the bytes before `data`; 0 for none) over `size` bytes.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(std::string_view bytes) {
  return crc32c_extend(0, bytes.data(), bytes.size());
}

}  // namespace synod::storage
