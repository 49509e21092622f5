// Snapshot images: every entry of a Backend in one checksummed byte string, for Raft log
// compaction and follower catch-up.
//
// Layout: "SYNODKV1", then per entry varint key length, key, varint value length, value; then
// the entry count (8 bytes, big-endian) and the CRC-32C of all preceding bytes (4 bytes).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv/backend.h"

namespace synod::kv {

using ImageEntries = std::vector<std::pair<std::string, std::string>>;

std::string encode_image(const Backend& backend);
// nullopt unless the bytes are a complete image with a matching checksum.
std::optional<ImageEntries> decode_image(std::string_view image);

}  // namespace synod::kv
