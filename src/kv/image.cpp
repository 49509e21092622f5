#include "kv/image.h"

#include "kv/crc32c.h"
#include "kv/keys.h"

namespace synod::kv {
namespace {

constexpr std::string_view kMagic = "SYNODKV1";
constexpr size_t kTrailerBytes = 8 + 4;
constexpr int kMaxVarintBytes = 10;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::optional<uint64_t> get_varint(std::string_view& in) {
  uint64_t v = 0;
  for (int i = 0; i < kMaxVarintBytes && !in.empty(); ++i) {
    uint8_t byte = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if (!(byte & 0x80)) return v;
  }
  return std::nullopt;
}

std::optional<std::string> get_bytes(std::string_view& in) {
  std::optional<uint64_t> n = get_varint(in);
  if (!n || *n > in.size()) return std::nullopt;
  std::string out(in.substr(0, *n));
  in.remove_prefix(*n);
  return out;
}

}  // namespace

std::string encode_image(const Backend& backend) {
  std::string out(kMagic);
  uint64_t count = 0;
  backend.scan("", "", [&](std::string_view k, std::string_view v) {
    put_varint(out, k.size());
    out.append(k);
    put_varint(out, v.size());
    out.append(v);
    ++count;
    return true;
  });
  out += keys::encode_u64(count);
  uint32_t crc = crc32c(out);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(crc >> shift));
  return out;
}

std::optional<ImageEntries> decode_image(std::string_view image) {
  if (image.size() < kMagic.size() + kTrailerBytes || !image.starts_with(kMagic)) {
    return std::nullopt;
  }
  std::string_view body = image.substr(0, image.size() - 4);
  uint32_t stored = 0;
  for (char c : image.substr(image.size() - 4)) stored = (stored << 8) | static_cast<uint8_t>(c);
  if (crc32c(body) != stored) return std::nullopt;
  std::optional<uint64_t> count = keys::decode_u64(body.substr(body.size() - 8));
  std::string_view in = body.substr(kMagic.size(), body.size() - kMagic.size() - 8);
  ImageEntries entries;
  while (!in.empty()) {
    std::optional<std::string> k = get_bytes(in);
    std::optional<std::string> v = k ? get_bytes(in) : std::nullopt;
    if (!v) return std::nullopt;
    entries.emplace_back(std::move(*k), std::move(*v));
  }
  if (entries.size() != *count) return std::nullopt;
  return entries;
}

}  // namespace synod::kv
