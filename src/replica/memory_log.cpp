#include "replica/memory_log.h"

#include <algorithm>

namespace synod::replica {

void write_log(raft::Persisted& disk, const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state) {
  if (!entries.empty()) {
    const raft::Index first = entries.front().index;
    while (!disk.entries.empty() && disk.entries.back().index >= first) disk.entries.pop_back();
    disk.entries.insert(disk.entries.end(), entries.begin(), entries.end());
  }
  if (hard_state) disk.hard_state = *hard_state;
}

// thesis figure 5.3, steps 6-7, as the WAL's snapshot marker decides it: if the log holds an
// entry with the snapshot's index and term, the entries after it stay; otherwise the whole log
// goes. Keeping a suffix that does not follow the snapshot's entry would bring back, at the next
// start, entries of a branch the snapshot's committed state replaced (the core dropped them).
void write_snapshot(raft::Persisted& disk, const raft::Snapshot& snapshot) {
  const raft::SnapshotMeta& meta = snapshot.meta;
  const bool keep_suffix = std::any_of(
      disk.entries.begin(), disk.entries.end(),
      [&](const raft::Entry& e) { return e.index == meta.index && e.term == meta.term; });
  if (keep_suffix) {
    std::erase_if(disk.entries, [&](const raft::Entry& e) { return e.index <= meta.index; });
  } else {
    disk.entries.clear();
  }
  disk.snapshot = snapshot;
}

void write_ready(raft::Persisted& disk, const raft::Ready& rd) {
  if (rd.snapshot) write_snapshot(disk, *rd.snapshot);
  write_log(disk, rd.entries, rd.hard_state);
}

bool must_sync(const raft::Ready& rd, const raft::HardState& synced) {
  return !rd.entries.empty() || (rd.hard_state && (rd.hard_state->term != synced.term ||
                                                   rd.hard_state->vote != synced.vote));
}

}  // namespace synod::replica
