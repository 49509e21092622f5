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
  const uint32_t n = r.count(kMaxConfMembers, 8);
  std::vector<raft::NodeId> ids;
  ids.reserve(n);
  for (uint32_t i = 0; i < n; ++i) ids.emplace_back(r.u64());
  return ids;
}

}  // namespace

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
