// Snapshot files: one Raft snapshot (metadata + state-machine image) per file, checksummed.
//
// Name: <term as 16 hex digits>-<index as 16 hex digits>.snap, in the WAL's snap/ directory.
// Format (integers little-endian):
//   "SYNODSNP"   8-byte magic
//   version      u32 (= 1)
//   meta length  u32
//   meta         index u64, term u64, conf (voters: count u32 + ids u64, learners: same),
//                data length u64
//   meta CRC32C  u32, over version, meta length and meta
//   data         the image, `data length` bytes
//   data CRC32C  u32
// Writes go to <name>.tmp, are fsynced, renamed into place, and the directory is fsynced, so a
// crash leaves either no file or a whole one (and maybe a stray .tmp, which the Wal removes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/consensus/types.h"
#include "storage/wal_status.h"

namespace synod::storage {

struct SnapshotFileSummary {
  raft::SnapshotMeta meta;
  uint64_t data_bytes = 0;
  uint32_t data_crc32c = 0;
};

std::string snapshot_file_name(const raft::SnapshotMeta& meta);
// Parses a name made by snapshot_file_name; nullopt for anything else (including .tmp files).
struct SnapshotFileId {
  raft::Term term;
  raft::Index index;
};
std::optional<SnapshotFileId> parse_snapshot_file_name(const std::string& name);

// Writes `snapshot` into `dir` durably (see above). The image is written straight from
// snapshot.data in bounded chunks, never copied. On success `*summary` describes the file.
WalStatus write_snapshot_file(const std::string& dir, const raft::Snapshot& snapshot,
                              SnapshotFileSummary* summary);

// Reads and verifies the file at `path` (magic, version, both checksums, exact size).
WalStatus read_snapshot_file(const std::string& path, raft::Snapshot* snapshot,
                             SnapshotFileSummary* summary);

}  // namespace synod::storage
