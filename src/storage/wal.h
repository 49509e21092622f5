// Wal: the Raft write-ahead log of one node — log entries, hard state and snapshot markers in
// checksummed records over a directory of segment files, plus the snapshot files they refer to.
//
// Directory layout (under Options::dir):
//   wal/<seq 16 hex>-<first index 16 hex>.wal   segments, seq 1, 2, ... without gaps
//   snap/<term 16 hex>-<index 16 hex>.snap      snapshot files (format in snapshot_file.h)
// Segment format: a sequence of records, each
//   crc32c u32 | payload length u32 | type u8 | magic 0xA7 | zero u16 | payload
// with the CRC32C over everything after it (payload layouts in wal_record.h). Types: segment
// header, entries, hard state, snapshot marker. Every segment starts with a header record holding
// the hard state, the latest snapshot marker and the log's last index at its creation, so replay
// can start at any segment once older ones are removed.
//
// Contract (the Raft Ready contract of core/consensus/types.h):
//   - append() buffers entries and/or a hard state; entries replace any suffix that starts at
//     entries.front().index. Nothing is durable until sync() returns ok: one sync() writes every
//     record buffered since the previous one with a single write() and one fdatasync (group
//     commit). Destroying a Wal never writes buffered records: that is what a crash loses.
//   - save_snapshot() makes the snapshot file durable, then a marker in the WAL (syncing any
//     buffered appends with it), then removes segments whose entries are all at or below the
//     snapshot index (never the one being written) and snapshot files other than the newest two.
//   - open() recovers a raft::Persisted satisfying raft.h: the latest hard state, the snapshot of
//     the latest marker (loaded from its file), and the entries after it, contiguous.
//   - Recovery truncates a torn tail (a cut-off or bad record at the very end of the last
//     segment with no valid record after it) and fsyncs the truncation. It refuses, with an error
//     naming the file and offset and without changing anything, a bad record followed by valid
//     ones, a bad record in a non-last segment, a missing segment, a gap in the log, and a
//     missing or corrupt snapshot file for the latest marker (no fallback to an older snapshot:
//     the segments covering it are normally gone, and silently rolling back would be worse).
//   - Errors are values. A failed write or fsync poisons the Wal: every later call returns the
//     same error, because what reached the disk is then unknown; the caller must stop and
//     restart from open(). Bad arguments (a gap, a stale snapshot) return an error and change
//     nothing.
//
// Thread-safety: none. One thread owns a Wal and makes every call on it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/consensus/types.h"
#include "core/raft/raft.h"
#include "storage/wal_fs.h"
#include "storage/wal_segment.h"
#include "storage/wal_status.h"
#include "storage/wal_tail.h"

namespace synod::storage {

struct Recovery;

class Wal {
 public:
  struct Options {
    std::string dir;                        // created if missing, with wal/ and snap/ inside
    uint64_t segment_bytes = 64ull << 20;   // a segment is closed once a sync takes it past this
    size_t buffer_reserve_bytes = 1 << 20;  // initial capacity of the group-commit buffer
    // A sync that passes the end of the open segment's file also writes this many zero bytes
    // after its records. Most syncs then write inside the file and their fdatasync flushes data
    // only; one that grows the file must also make the new size durable (an inode write, or a
    // journal commit), which nearly doubled an fdatasync's cost on ext4 here. Recovery reads
    // zeros after the last record as the end of the log, and a segment loses its zeros when it
    // is closed. 0: every sync grows the file by exactly its records.
    uint64_t zero_ahead_bytes = 1ull << 20;
  };

  struct Result {
    std::string error;  // empty on success
    std::unique_ptr<Wal> wal;
    raft::Persisted recovered;
    bool ok() const { return wal != nullptr; }
  };

  // Opens (or creates) the WAL in options.dir and recovers what it holds.
  static Result open(const Options& options);

  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;
  ~Wal() = default;  // closes files; buffered (unsynced) records are dropped, never written

  // Buffers `entries` (contiguous; front().index > snapshot index and <= last index + 1) and
  // `hard_state`. Not durable until sync().
  WalStatus append(const std::vector<raft::Entry>& entries,
                   const std::optional<raft::HardState>& hard_state);
  // Writes and fdatasyncs everything buffered; rotates the segment if it reached segment_bytes.
  WalStatus sync();
  // sync() in two steps, for a caller that makes many files durable at once: write() hands
  // what is buffered to the file without making it durable; commit() makes what was written
  // durable (with an fdatasync unless `data_synced`: the caller made the file's data durable
  // itself) and counts it as synced. Records appended in between stay buffered. Records
  // written and not committed may or may not survive a crash, as records of a sync that was
  // cut short may.
  WalStatus write();
  WalStatus commit(bool data_synced);
  // See the contract above. Precondition-checked: snapshot.meta.index > snapshot_index().
  WalStatus save_snapshot(const raft::Snapshot& snapshot);
  // Step 1 of the Ready contract: the snapshot (if any), then entries and hard state, synced.
  WalStatus persist(const raft::Ready& ready);

  raft::Index last_index() const { return tail_.last_index(); }  // includes buffered appends
  raft::Index snapshot_index() const { return tail_.base_index(); }
  size_t segment_count() const { return segments_.size(); }
  size_t buffered_bytes() const { return buffer_.size(); }
  uint64_t open_segment_bytes() const { return segments_.back().bytes; }  // its synced records

 private:
  explicit Wal(const Options& options);

  WalStatus recover(Result& result);
  WalStatus repair_and_open_tail(Recovery& rec);
  WalStatus load_snapshot(const SnapshotMarker& marker, raft::Snapshot* out) const;
  WalStatus rotate();
  WalStatus poison(WalStatus s);
  WalStatus remove_covered_segments();
  WalStatus remove_old_snapshot_files() const;

  Options options_;
  std::string wal_dir_;
  std::string snap_dir_;
  std::vector<Segment> segments_;  // oldest first; back() is being written
  FileHandle fd_;                  // segments_.back(), open for writing
  uint64_t file_bytes_ = 0;        // its file's size: the records, then any zeros written ahead
  std::string buffer_;             // records appended since the last sync
  size_t written_ = 0;             // its first bytes, written by write() and not yet committed
  WalTail<raft::Term> tail_;       // the log as appended (durable + buffered)
  raft::HardState hard_state_;     // as appended
  WalStatus failure_;              // sticky after a failed write or fsync
};

}  // namespace synod::storage
