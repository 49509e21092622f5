// Replay of the WAL's segments: what the records say, and what (if anything) must be repaired.
//
// recover_segments() only reads. It reports a torn tail (a cut-off or bad record at the very end
// of the last segment, with no valid record after it) as a repair for the caller to make once
// everything else checked out; any other bad record, a missing segment, or a gap in the log is
// an error naming the file and offset, and then nothing may be changed on disk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/consensus/types.h"
#include "storage/wal_segment.h"
#include "storage/wal_tail.h"

namespace synod::storage {

struct Recovery {
  std::string error;              // empty on success
  std::vector<Segment> segments;  // oldest first, `bytes` = the valid prefix
  WalTail<raft::Entry> tail;
  raft::HardState hard_state;
  // Repairs: the last segment has bytes past its valid prefix (torn tail; zeros written ahead
  // alone are not one), or holds no valid header at all (a crash while creating it) and is to
  // be removed.
  uint64_t torn_bytes = 0;
  bool drop_last_segment = false;
};

Recovery recover_segments(const std::string& wal_dir);

}  // namespace synod::storage
