// Little-endian byte encoding shared by every on-disk and on-wire format Synod writes by hand
// (the WAL and snapshot files, PBFT's messages).
//
// The writer appends to a caller-owned buffer. The reader never reads past its span: a short or
// malformed input sets failed() and yields zeros, so a decoder checks once at the end.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace synod::base {

void store_le32(char* p, uint32_t v);
uint32_t load_le32(const char* p);

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v);
  void u64(uint64_t v);
  void bytes(std::string_view b) { out_.append(b); }
  template <size_t N>
  void array(const std::array<uint8_t, N>& a) {
    out_.append(reinterpret_cast<const char*>(a.data()), N);
  }
  // A length (u32) and the bytes.
  void str(std::string_view s);

 private:
  std::string& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  uint8_t u8();
  uint32_t u32();
  uint64_t u64();
  std::string_view bytes(uint64_t n);
  template <size_t N>
  std::array<uint8_t, N> array() {
    std::array<uint8_t, N> a{};
    const std::string_view b = bytes(N);
    if (b.size() == N) std::copy(b.begin(), b.end(), a.begin());
    return a;
  }
  // A string written by ByteWriter::str, at most `max_bytes` long (longer: failed).
  std::string_view str(uint64_t max_bytes);
  // A count of items each at least `min_item_bytes` long, at most `max`; a count the remaining
  // input cannot hold fails the reader (so a corrupt count never makes a decoder allocate).
  uint32_t count(uint32_t max, uint32_t min_item_bytes);
  void fail() { failed_ = true; }

  bool failed() const { return failed_; }
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  // True when everything was read and nothing was left over.
  bool done() const { return !failed_ && pos_ == in_.size(); }

 private:
  bool take(size_t n);

  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace synod::base
