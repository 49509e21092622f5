#include "core/consensus/replication.h"

#include <algorithm>
#include <functional>

namespace synod::raft {

Index quorum_index(const std::vector<std::pair<NodeId, Index>>& positions, const ConfState& conf) {
  std::vector<Index> v;
  for (const auto& [id, index] : positions) {
    if (conf.is_voter(id)) v.push_back(index);
  }
  const size_t q = quorum_size(conf);
  if (v.size() < q) return Index(0);
  std::sort(v.begin(), v.end(), std::greater<>());
  return v[q - 1];
}

void fill_snapshot_chunk(const Snapshot& snap, uint64_t offset, uint64_t chunk_bytes, Message& m) {
  offset = std::min<uint64_t>(offset, snap.data.size());
  const uint64_t len = std::min<uint64_t>(chunk_bytes, snap.data.size() - offset);
  m.snapshot_meta = snap.meta;
  m.snapshot_offset = offset;
  m.snapshot_total = snap.data.size();
  m.snapshot_chunk = snap.data.substr(offset, len);
  m.snapshot_done = offset + len >= snap.data.size();
}

void next_snapshot_chunk(Progress& pr, const Snapshot& snap, uint64_t chunk_bytes, Message& m) {
  if (pr.snapshot_index != snap.meta.index) pr.become_snapshot(snap.meta.index);
  fill_snapshot_chunk(snap, pr.snapshot_offset, chunk_bytes, m);
  pr.snapshot_chunk_outstanding = true;
}

std::optional<Snapshot> receive_snapshot_chunk(std::optional<Snapshot>& incoming, const Message& m,
                                               Message& resp) {
  const SnapshotMeta& meta = m.snapshot_meta;
  if (m.snapshot_offset == 0) incoming = Snapshot{meta, {}};
  const bool same = incoming && incoming->meta == meta;
  resp.snapshot_meta.index = meta.index;
  if (!same || incoming->data.size() != m.snapshot_offset) {
    resp.reject = true;
    resp.snapshot_offset = same ? incoming->data.size() : 0;
    return std::nullopt;
  }
  incoming->data += m.snapshot_chunk;
  if (!m.snapshot_done) {
    resp.snapshot_offset = incoming->data.size();
    return std::nullopt;
  }
  Snapshot whole = std::move(*incoming);
  incoming.reset();
  return whole;
}

}  // namespace synod::raft
