// A Raft log's durable state kept in memory (raft::Persisted), written as a disk would be: the
// simulator's fake disk and the protocol tests' drivers use it, so the rule for writing a Ready
// (truncate the suffix an append replaces, keep entries after a snapshot) lives once.
#pragma once

#include <optional>
#include <vector>

#include "core/raft/raft.h"

namespace synod::replica {

// Appends `entries` after dropping every entry from entries.front().index on, then records
// `hard_state`.
void write_log(raft::Persisted& disk, const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state);
// The log now starts after `snapshot`: the entries it covers go, and so does the rest unless
// the log holds the snapshot's own entry (same index and term), as the WAL decides it.
void write_snapshot(raft::Persisted& disk, const raft::Snapshot& snapshot);
// Both, in the contract's order (types.h): snapshot, entries, hard state.
void write_ready(raft::Persisted& disk, const raft::Ready& rd);
// Whether the Ready's entries and hard state must be durable before anything depends on them:
// new entries, a new term or a new vote (against `synced`, the hard state last made durable)
// must; a hard state that differs only in its commit index is a recovery hint (the commit index
// is re-learned from the leader) and may ride along with the next sync, so a crash may lose it.
bool must_sync(const raft::Ready& rd, const raft::HardState& synced);

}  // namespace synod::replica
