// A node's disk in the simulator: what survives a crash.
//
// The driver stages the durable part of a Ready (snapshot, entries, hard state) as one write
// record, then issues an fsync. Until the fsync completes the record is pending; a crash
// discards it, as a power loss discards a page cache. A record is all-or-nothing: the real WAL
// checksums records and truncates a torn tail, so a half-written Ready never survives either.
// Compaction writes a snapshot atomically (write, fsync, rename) before dropping entries.
#pragma once

#include <cstdint>
#include <optional>

#include "core/raft/raft.h"
#include "core/rand.h"

namespace synod::sim {

// fsync latency: usually fast, with a slow tail, as real disks have.
struct DiskParams {
  uint64_t fsync_min_us = 100;
  uint64_t fsync_max_us = 1'500;
  double slow_probability = 0.1;
  uint64_t slow_min_us = 5'000;
  uint64_t slow_max_us = 20'000;
};
uint64_t draw_fsync_us(const DiskParams& params, Rng& rng);

class Storage {
 public:
  // Stages the durable part of `rd` as one pending record. Precondition: nothing is pending
  // (the Ready contract: no new Ready before advance(), which waits for the fsync).
  void stage(const raft::Ready& rd);
  bool has_pending() const { return pending_.has_value(); }
  // The fsync completed: the pending record becomes durable. No-op if nothing is pending.
  void sync();
  // Power loss: the pending record is gone; the durable state stays.
  void crash() { pending_.reset(); }
  // The disk is replaced by an empty one (a member removed and re-added from scratch).
  void wipe();
  // Compaction: `snapshot` becomes durable at once and entries it covers are dropped.
  // Precondition: nothing is pending, and the snapshot covers only durable entries.
  void save_snapshot(raft::Snapshot snapshot);

  const raft::Persisted& durable() const { return durable_; }
  bool empty() const;
  uint64_t records_synced() const { return records_synced_; }

 private:
  struct Record {
    std::optional<raft::Snapshot> snapshot;
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hard_state;
  };
  void install_snapshot(raft::Snapshot snapshot);
  void append(const std::vector<raft::Entry>& entries);

  raft::Persisted durable_;
  std::optional<Record> pending_;
  uint64_t records_synced_ = 0;
};

}  // namespace synod::sim
