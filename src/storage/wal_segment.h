// WAL segment files: naming, and creating a new segment durably.
//
// Name: <seq as 16 hex digits>-<first index as 16 hex digits>.wal, where seq counts segments from
// 1 without gaps and "first index" is the index the next appended entry had when the segment was
// created (informational: recovery trusts the records, not the name).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/consensus/types.h"
#include "storage/wal_fs.h"
#include "storage/wal_record.h"
#include "storage/wal_status.h"

namespace synod::storage {

struct SegmentName {
  uint64_t seq = 0;
  raft::Index first_index;
};

std::string segment_file_name(const SegmentName& name);
std::optional<SegmentName> parse_segment_file_name(const std::string& name);

// What the Wal keeps per segment.
struct Segment {
  uint64_t seq = 0;
  std::string path;
  raft::Index max_entry_index;  // highest index of an entry written in this segment (0: none)
  uint64_t bytes = 0;           // valid bytes on disk
};

// Creates segment `header.seq` in `wal_dir` holding just `header`, fdatasyncs it and fsyncs the
// directory, so the segment exists durably before anything is written into it. `scratch` is a
// reusable buffer (left empty). On success `*fd` is open for writing
// (records go at explicit offsets).
WalStatus create_segment(const std::string& wal_dir, const SegmentHeader& header,
                         std::string& scratch, Segment* segment, FileHandle* fd);

}  // namespace synod::storage
