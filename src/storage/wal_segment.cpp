#include "storage/wal_segment.h"

#include <fcntl.h>

#include <cassert>
#include <cinttypes>
#include <cstdio>

namespace synod::storage {

std::string segment_file_name(const SegmentName& name) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64 "-%016" PRIx64 ".wal", name.seq,
                name.first_index.value);
  return buf;
}

std::optional<SegmentName> parse_segment_file_name(const std::string& name) {
  uint64_t seq = 0, first = 0;
  if (name.size() != 16 + 1 + 16 + 4) return std::nullopt;
  if (std::sscanf(name.c_str(), "%16" SCNx64 "-%16" SCNx64, &seq, &first) != 2) {
    return std::nullopt;
  }
  SegmentName parsed{seq, raft::Index(first)};
  if (segment_file_name(parsed) != name || seq == 0) return std::nullopt;
  return parsed;
}

WalStatus create_segment(const std::string& wal_dir, const SegmentHeader& header,
                         std::string& scratch, Segment* segment, FileHandle* fd) {
  assert(header.seq > 0 && scratch.empty());
  const std::string path =
      join_path(wal_dir, segment_file_name({header.seq, header.last_index + 1}));
  FileHandle h;
  if (WalStatus s = open_file(path, O_WRONLY | O_CREAT | O_EXCL, &h); !s.ok()) {
    return s;
  }
  append_segment_header_record(scratch, header);
  const size_t bytes = scratch.size();
  WalStatus s = write_all(h.get(), scratch.data(), bytes, path);
  scratch.clear();
  if (s.ok()) s = sync_data(h.get(), path);
  if (s.ok()) s = sync_dir(wal_dir);
  if (!s.ok()) return s;
  *segment = Segment{header.seq, path, raft::Index(0), bytes};
  *fd = std::move(h);
  return {};
}

}  // namespace synod::storage
