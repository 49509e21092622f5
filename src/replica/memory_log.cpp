#include "replica/memory_log.h"

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

void write_snapshot(raft::Persisted& disk, const raft::Snapshot& snapshot) {
  const raft::Index index = snapshot.meta.index;
  std::erase_if(disk.entries, [&](const raft::Entry& e) { return e.index <= index; });
  if (!disk.entries.empty() && disk.entries.front().index != index + 1) disk.entries.clear();
  disk.snapshot = snapshot;
}

void write_ready(raft::Persisted& disk, const raft::Ready& rd) {
  if (rd.snapshot) write_snapshot(disk, *rd.snapshot);
  write_log(disk, rd.entries, rd.hard_state);
}

}  // namespace synod::replica
