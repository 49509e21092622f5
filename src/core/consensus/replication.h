// Pieces of log replication that every leader-based engine shares: counting a quorum's
// position, and moving a snapshot to a follower in chunks (thesis 5.3, figure 5.3).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "core/consensus/progress.h"
#include "core/consensus/types.h"

namespace synod::raft {

// The size of a majority of `conf`'s voters.
inline size_t quorum_size(const ConfState& conf) { return conf.voters.size() / 2 + 1; }

// The highest index that a majority of `conf`'s voters hold, given each node's position
// (entries of non-voters are ignored); 0 if fewer than a majority are listed.
Index quorum_index(const std::vector<std::pair<NodeId, Index>>& positions, const ConfState& conf);

// Leader: fills `m` (a kSnapshot) with the chunk of `snap` that starts at `offset`.
void fill_snapshot_chunk(const Snapshot& snap, uint64_t offset, uint64_t chunk_bytes, Message& m);
// Leader: fills `m` (a kSnapshot) with the next chunk of `snap` for the follower behind `pr`
// (starting the transfer over if `snap` is a newer snapshot than the one being sent), and marks
// the chunk outstanding.
void next_snapshot_chunk(Progress& pr, const Snapshot& snap, uint64_t chunk_bytes, Message& m);

// Follower: adds the chunk `m` to the snapshot being received in `incoming` (a chunk at offset 0
// starts a new one). Returns the whole snapshot once its last chunk arrived in order. Otherwise
// fills `resp` (a kSnapshotResp to send): the offset to continue from, or a reject with the
// offset the follower holds when the chunk was out of order.
std::optional<Snapshot> receive_snapshot_chunk(std::optional<Snapshot>& incoming, const Message& m,
                                               Message& resp);

}  // namespace synod::raft
