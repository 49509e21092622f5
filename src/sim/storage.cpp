#include "sim/storage.h"

#include <cassert>
#include <utility>

namespace synod::sim {

using raft::Entry;
using raft::Index;

uint64_t draw_fsync_us(const DiskParams& p, Rng& rng) {
  if (rng.chance(p.slow_probability)) return rng.range(p.slow_min_us, p.slow_max_us);
  return rng.range(p.fsync_min_us, p.fsync_max_us);
}

void Storage::stage(const raft::Ready& rd) {
  assert(!pending_);
  pending_ = Record{rd.snapshot, rd.entries, rd.hard_state};
}

void Storage::sync() {
  if (!pending_) return;
  Record record = std::move(*pending_);
  pending_.reset();
  // The contract's order: snapshot, then entries, then hard state.
  if (record.snapshot) install_snapshot(std::move(*record.snapshot));
  append(record.entries);
  if (record.hard_state) durable_.hard_state = *record.hard_state;
  ++records_synced_;
}

void Storage::install_snapshot(raft::Snapshot snapshot) {
  const raft::SnapshotMeta& meta = snapshot.meta;
  // As RaftLog::restore does: a suffix that agrees with the snapshot's last entry is kept;
  // anything else the snapshot supersedes.
  std::vector<Entry> rest;
  for (const Entry& e : durable_.entries) {
    if (e.index == meta.index && e.term != meta.term) {
      rest.clear();
      break;
    }
    if (e.index > meta.index) rest.push_back(e);
  }
  const bool anchored = !rest.empty() && rest.front().index == meta.index + 1;
  durable_.entries = anchored ? std::move(rest) : std::vector<Entry>{};
  durable_.snapshot = std::move(snapshot);
}

void Storage::append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const Index first = entries.front().index;
  const Index base = durable_.snapshot ? durable_.snapshot->meta.index : Index(0);
  // Entries continue the durable log or replace a suffix of it; never leave a gap.
  assert(first > base);
  while (!durable_.entries.empty() && durable_.entries.back().index >= first) {
    durable_.entries.pop_back();
  }
  const Index last = durable_.entries.empty() ? base : durable_.entries.back().index;
  assert(first == last + 1);
  (void)last;
  durable_.entries.insert(durable_.entries.end(), entries.begin(), entries.end());
}

void Storage::wipe() {
  durable_ = raft::Persisted{};
  pending_.reset();
}

void Storage::save_snapshot(raft::Snapshot snapshot) {
  assert(!pending_);
  const Index index = snapshot.meta.index;
  std::erase_if(durable_.entries, [&](const Entry& e) { return e.index <= index; });
  durable_.snapshot = std::move(snapshot);
}

bool Storage::empty() const {
  return !durable_.snapshot && durable_.entries.empty() &&
         durable_.hard_state == raft::HardState{};
}

}  // namespace synod::sim
