// CRC-32C (Castagnoli), software table. Checksums snapshot images and hashes the MVCC history.
#pragma once

#include <cstdint>
#include <string_view>

namespace synod::kv {

// Extends a running CRC (start from 0) over bytes.
uint32_t crc32c_extend(uint32_t crc, std::string_view bytes);
inline uint32_t crc32c(std::string_view bytes) {
  return crc32c_extend(0, bytes);
}

}  // namespace synod::kv
