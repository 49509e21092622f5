// Little-endian encoding of the values the WAL and snapshot files store.
//
// The writer appends to a caller-owned buffer so that a whole sync batch is encoded in place,
// without intermediate strings. The reader never reads past its span: a short or malformed
// payload sets `failed()` and yields zeros, so a decoder checks once at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/consensus/types.h"

namespace synod::storage {

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v);
  void u64(uint64_t v);
  void bytes(std::string_view b) { out_.append(b); }
  void conf(const raft::ConfState& c);
  void meta(const raft::SnapshotMeta& m);
  void hard_state(const raft::HardState& hs);

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
  raft::ConfState conf();
  raft::SnapshotMeta meta();
  raft::HardState hard_state();

  bool failed() const { return failed_; }
  size_t remaining() const { return in_.size() - pos_; }
  // True when everything was read and nothing was left over.
  bool done() const { return !failed_ && pos_ == in_.size(); }

 private:
  bool take(size_t n);

  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

void store_le32(char* p, uint32_t v);
uint32_t load_le32(const char* p);

}  // namespace synod::storage
