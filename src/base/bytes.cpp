#include "base/bytes.h"

namespace synod::base {

void store_le32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

uint32_t load_le32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

void ByteWriter::u32(uint32_t v) {
  char b[4];
  store_le32(b, v);
  out_.append(b, 4);
}

void ByteWriter::u64(uint64_t v) {
  u32(static_cast<uint32_t>(v));
  u32(static_cast<uint32_t>(v >> 32));
}

void ByteWriter::str(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  bytes(s);
}

bool ByteReader::take(size_t n) {
  if (failed_ || n > remaining()) {
    failed_ = true;
    return false;
  }
  pos_ += n;
  return true;
}

uint8_t ByteReader::u8() {
  if (!take(1)) return 0;
  return static_cast<uint8_t>(in_[pos_ - 1]);
}

uint32_t ByteReader::u32() {
  if (!take(4)) return 0;
  return load_le32(in_.data() + pos_ - 4);
}

uint64_t ByteReader::u64() {
  const uint64_t lo = u32();
  const uint64_t hi = u32();
  return lo | hi << 32;
}

std::string_view ByteReader::bytes(uint64_t n) {
  if (failed_ || n > remaining()) {
    failed_ = true;
    return {};
  }
  take(n);
  return in_.substr(pos_ - n, n);
}

std::string_view ByteReader::str(uint64_t max_bytes) {
  const uint32_t n = u32();
  if (n > max_bytes) {
    failed_ = true;
    return {};
  }
  return bytes(n);
}

uint32_t ByteReader::count(uint32_t max, uint32_t min_item_bytes) {
  const uint32_t n = u32();
  if (failed_ || n > max || uint64_t(n) * min_item_bytes > remaining()) {
    failed_ = true;
    return 0;
  }
  return n;
}

}  // namespace synod::base
