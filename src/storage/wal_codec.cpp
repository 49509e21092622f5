#include "storage/wal_codec.h"

#include <cassert>

namespace synod::storage {
namespace {

// Bounds a decoded member list so a corrupt count cannot make us allocate gigabytes.
constexpr uint32_t kMaxConfMembers = 1 << 16;

void write_ids(ByteWriter& w, const std::vector<raft::NodeId>& ids) {
  assert(ids.size() <= kMaxConfMembers);
  w.u32(static_cast<uint32_t>(ids.size()));
  for (raft::NodeId id : ids) w.u64(id.value);
}

std::vector<raft::NodeId> read_ids(ByteReader& r) {
  const uint32_t n = r.u32();
  std::vector<raft::NodeId> ids;
  if (n > kMaxConfMembers || uint64_t(n) * 8 > r.remaining()) {
    r.bytes(r.remaining() + 1);  // marks the reader failed
    return ids;
  }
  ids.reserve(n);
  for (uint32_t i = 0; i < n; ++i) ids.emplace_back(r.u64());
  return ids;
}

}  // namespace

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

void ByteWriter::conf(const raft::ConfState& c) {
  write_ids(*this, c.voters);
  write_ids(*this, c.learners);
}

void ByteWriter::meta(const raft::SnapshotMeta& m) {
  u64(m.index.value);
  u64(m.term.value);
  conf(m.conf);
}

void ByteWriter::hard_state(const raft::HardState& hs) {
  u64(hs.term.value);
  u64(hs.vote.value);
  u64(hs.commit.value);
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
  if (n > remaining()) {
    failed_ = true;
    return {};
  }
  take(n);
  return in_.substr(pos_ - n, n);
}

raft::ConfState ByteReader::conf() {
  raft::ConfState c;
  c.voters = read_ids(*this);
  c.learners = read_ids(*this);
  return c;
}

raft::SnapshotMeta ByteReader::meta() {
  raft::SnapshotMeta m;
  m.index = raft::Index(u64());
  m.term = raft::Term(u64());
  m.conf = conf();
  return m;
}

raft::HardState ByteReader::hard_state() {
  raft::HardState hs;
  hs.term = raft::Term(u64());
  hs.vote = raft::NodeId(u64());
  hs.commit = raft::Index(u64());
  return hs;
}

}  // namespace synod::storage
