// WAL record framing and payloads.
//
// A record is a 12-byte header followed by its payload (all integers little-endian):
//   [0,4)   CRC32C of bytes [4, 12 + length): the rest of the header and the payload
//   [4,8)   payload length in bytes (at most kMaxRecordPayloadBytes)
//   [8]     type (RecordType)
//   [9]     magic 0xA7
//   [10,12) zero
// The magic and zero bytes let recovery reject most garbage before computing a CRC when it
// scans for valid records after a bad one (to tell a torn tail from a corrupted middle).
//
// Payloads:
//   kSegmentHeader   version u32 (=1), segment seq u64, last index u64 (of the logical log when the
//                    segment was created), hard state (term u64, vote u64, commit u64),
//                    has_marker u8, [snapshot marker]
//   kEntries         first index u64, count u32, then per entry: term u64, type u8,
//                    data length u32, data
//   kHardState       term u64, vote u64, commit u64
//   kSnapshotMarker  snapshot index u64, term u64, conf (voters: count u32 + ids u64,
//                    learners: same), keep_suffix u8, data bytes u64, data CRC32C u32,
//                    then (PBFT only) the checkpoint digest as a length-prefixed string
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/consensus/types.h"

namespace synod::storage {

enum class RecordType : uint8_t {
  kSegmentHeader = 1,
  kEntries = 2,
  kHardState = 3,
  kSnapshotMarker = 4,
};

inline constexpr size_t kRecordHeaderBytes = 12;
inline constexpr uint64_t kMaxDigestBytes = 64;  // a snapshot's checkpoint digest (PBFT)
inline constexpr uint32_t kMaxRecordPayloadBytes = 1u << 30;
// One entry's data must fit in a record with room for the entries framing.
inline constexpr uint64_t kMaxEntryDataBytes = kMaxRecordPayloadBytes - 64;

// Says that a snapshot file is the log's new base. `keep_suffix` is decided when the marker is
// written, from the Raft rule for installing a snapshot (thesis figure 5.3, steps 6-7): when the
// log holds an entry with the snapshot's index and term, the entries after it stay; otherwise the
// whole log is discarded. Deciding it at write time keeps recovery from needing that entry, which
// may live in a segment removed since.
struct SnapshotMarker {
  raft::SnapshotMeta meta;
  bool keep_suffix = false;
  uint64_t data_bytes = 0;
  uint32_t data_crc32c = 0;

  bool operator==(const SnapshotMarker&) const = default;
};

// The first record of every segment: enough state that replay can start at this segment once
// the older ones are removed.
struct SegmentHeader {
  uint64_t seq = 0;
  raft::Index last_index;
  raft::HardState hard_state;
  std::optional<SnapshotMarker> marker;
};

// Appenders: each adds whole records to the end of `buf`.
// Entries are split into several records when they exceed a few MiB of data, so that no record
// nears the length limit. Precondition: entries contiguous, each data <= kMaxEntryDataBytes.
void append_entries_records(std::string& buf, const std::vector<raft::Entry>& entries);
void append_hard_state_record(std::string& buf, const raft::HardState& hs);
void append_marker_record(std::string& buf, const SnapshotMarker& marker);
void append_segment_header_record(std::string& buf, const SegmentHeader& header);

struct RawRecord {
  RecordType type = RecordType::kEntries;
  std::string_view payload;
  size_t total_bytes = 0;  // header + payload
};

// Parses the record at `offset` in `file`. Returns false with `*reason` set when the bytes there
// are not a whole valid record (cut off, bad framing, or CRC mismatch).
bool parse_record(std::string_view file, size_t offset, RawRecord* out, std::string* reason);
// True when some offset in (offset, file.size()) starts a whole valid record.
bool valid_record_after(std::string_view file, size_t offset);

// Payload decoders: false on a malformed payload (which, under a good CRC, means a bug or a
// format mismatch, never a torn write).
bool decode_entries(std::string_view payload, std::vector<raft::Entry>* out);
bool decode_hard_state(std::string_view payload, raft::HardState* out);
bool decode_marker(std::string_view payload, SnapshotMarker* out);
bool decode_segment_header(std::string_view payload, SegmentHeader* out);

}  // namespace synod::storage
