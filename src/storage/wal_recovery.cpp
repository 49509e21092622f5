#include "storage/wal_recovery.h"

#include <algorithm>

#include "storage/wal_fs.h"
#include "storage/wal_record.h"

namespace synod::storage {
namespace {

struct SegmentFile {
  SegmentName name;
  std::string path;
};

std::string where(const std::string& path, size_t offset) {
  return path + " at offset " + std::to_string(offset);
}

WalStatus list_segments(const std::string& wal_dir, std::vector<SegmentFile>* out) {
  std::vector<std::string> names;
  if (WalStatus s = list_dir(wal_dir, &names); !s.ok()) return s;
  for (const std::string& n : names) {
    if (auto parsed = parse_segment_file_name(n)) out->push_back({*parsed, join_path(wal_dir, n)});
  }
  std::sort(out->begin(), out->end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.name.seq < b.name.seq; });
  for (size_t i = 1; i < out->size(); ++i) {
    if ((*out)[i].name.seq != (*out)[i - 1].name.seq + 1) {
      return WalStatus::error("WAL segment " + std::to_string((*out)[i - 1].name.seq + 1) +
                              " is missing (found " + (*out)[i - 1].path + " and " +
                              (*out)[i].path + ")");
    }
  }
  return {};
}

// Replays the records of one segment into `rec`.
class SegmentReplayer {
 public:
  SegmentReplayer(Recovery& rec, const SegmentFile& file, bool first_segment)
      : rec_(rec), file_(file), first_segment_(first_segment) {}

  // Applies the record at `offset`; an error names the file and offset.
  WalStatus apply(const RawRecord& r, size_t offset) {
    const bool at_start = offset == 0;
    if (at_start != (r.type == RecordType::kSegmentHeader)) {
      return fail(offset, at_start ? "segment does not start with a header record"
                                   : "segment header record in the middle of a segment");
    }
    switch (r.type) {
      case RecordType::kSegmentHeader:
        return header(r.payload, offset);
      case RecordType::kEntries:
        return entries(r.payload, offset);
      case RecordType::kHardState:
        if (!decode_hard_state(r.payload, &rec_.hard_state)) return malformed(offset);
        return {};
      case RecordType::kSnapshotMarker:
        return marker(r.payload, offset);
    }
    return malformed(offset);
  }

  raft::Index max_entry_index() const { return max_entry_index_; }

 private:
  WalStatus fail(size_t offset, const std::string& why) const {
    return WalStatus::error("WAL " + where(file_.path, offset) + ": " + why);
  }
  WalStatus malformed(size_t offset) const {
    return fail(offset, "malformed record payload under a valid checksum");
  }

  WalStatus header(std::string_view payload, size_t offset) {
    SegmentHeader h;
    if (!decode_segment_header(payload, &h)) return malformed(offset);
    if (h.seq != file_.name.seq) return fail(offset, "header names another segment");
    if (first_segment_) {
      if (h.marker && h.last_index < h.marker->meta.index) return malformed(offset);
      rec_.tail.reset(h.marker, h.last_index);
    } else if (h.last_index != rec_.tail.last_index() || h.marker != rec_.tail.base()) {
      return fail(offset, "header (last index " + std::to_string(h.last_index.value) +
                              ") does not continue the previous segment (last index " +
                              std::to_string(rec_.tail.last_index().value) + ")");
    }
    rec_.hard_state = h.hard_state;
    return {};
  }

  WalStatus entries(std::string_view payload, size_t offset) {
    std::vector<raft::Entry> batch;
    if (!decode_entries(payload, &batch)) return malformed(offset);
    if (WalStatus s = rec_.tail.check_append(batch.front().index); !s.ok()) {
      return fail(offset, s.message());
    }
    rec_.tail.truncate_from(batch.front().index);
    for (raft::Entry& e : batch) rec_.tail.push_back(std::move(e));
    max_entry_index_ = std::max(max_entry_index_, rec_.tail.last_index());
    return {};
  }

  WalStatus marker(std::string_view payload, size_t offset) {
    SnapshotMarker m;
    if (!decode_marker(payload, &m)) return malformed(offset);
    if (WalStatus s = rec_.tail.check_marker(m); !s.ok()) return fail(offset, s.message());
    rec_.tail.apply_marker(m);
    return {};
  }

  Recovery& rec_;
  const SegmentFile& file_;
  bool first_segment_;
  raft::Index max_entry_index_;
};

// Replays one segment. Sets rec.torn_bytes when the last segment ends in a torn tail.
WalStatus replay_segment(Recovery& rec, const SegmentFile& file, bool first, bool last) {
  std::string data;
  if (WalStatus s = read_whole_file(file.path, &data); !s.ok()) return s;
  SegmentReplayer replayer(rec, file, first);
  size_t offset = 0;
  RawRecord record;
  std::string reason;
  while (offset < data.size()) {
    if (!parse_record(data, offset, &record, &reason)) {
      if (!last)
        return WalStatus::error("WAL " + where(file.path, offset) + ": " + reason +
                                " in a segment that is not the last one");
      // Zeros written ahead of the records (Wal::Options::zero_ahead_bytes): the log ends here.
      if (std::all_of(data.begin() + static_cast<ptrdiff_t>(offset), data.end(),
                      [](char c) { return c == '\0'; })) {
        break;
      }
      if (valid_record_after(data, offset)) {
        return WalStatus::error("WAL " + where(file.path, offset) + ": " + reason +
                                ", and valid records follow (corruption, not a torn write)");
      }
      rec.torn_bytes = data.size() - offset;
      break;
    }
    if (WalStatus s = replayer.apply(record, offset); !s.ok()) return s;
    offset += record.total_bytes;
  }
  rec.segments.push_back(Segment{file.name.seq, file.path, replayer.max_entry_index(), offset});
  return {};
}

}  // namespace

Recovery recover_segments(const std::string& wal_dir) {
  Recovery rec;
  std::vector<SegmentFile> files;
  if (WalStatus s = list_segments(wal_dir, &files); !s.ok()) {
    rec.error = s.message();
    return rec;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    WalStatus s = replay_segment(rec, files[i], i == 0, i + 1 == files.size());
    if (!s.ok()) {
      rec.error = s.message();
      return rec;
    }
  }
  if (!rec.segments.empty() && rec.segments.back().bytes == 0) {
    // A crash while creating the segment: nothing in it was ever durable. Only segment 1 may be
    // alone like that; otherwise older segments were removed, which needs a later header.
    rec.drop_last_segment = true;
    if (rec.segments.size() == 1 && rec.segments.back().seq != 1) {
      rec.error =
          "WAL " + rec.segments.back().path + " has no valid header and is the only segment";
      return rec;
    }
  }
  if (!rec.tail.complete()) {
    rec.error = "WAL is missing entries " + std::to_string(rec.tail.base_index().value + 1) + ".." +
                std::to_string(rec.tail.first_item_index().value - 1) +
                ": no segment or snapshot covers them";
  }
  return rec;
}

}  // namespace synod::storage
