#include "storage/wal.h"

#include <fcntl.h>

#include <algorithm>
#include <cassert>

#include "storage/snapshot_file.h"
#include "storage/wal_recovery.h"

namespace synod::storage {
namespace {

WalStatus make_dirs(const std::string& dir, const std::string& wal_dir,
                    const std::string& snap_dir) {
  bool created = false;
  if (WalStatus s = make_dir(dir, &created); !s.ok()) return s;
  bool wal_created = false, snap_created = false;
  if (WalStatus s = make_dir(wal_dir, &wal_created); !s.ok()) return s;
  if (WalStatus s = make_dir(snap_dir, &snap_created); !s.ok()) return s;
  if (wal_created || snap_created) return sync_dir(dir);
  return {};
}

WalStatus check_entries(const std::vector<raft::Entry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].index != entries.front().index + i) {
      return WalStatus::error("entries are not contiguous at position " + std::to_string(i));
    }
    if (entries[i].data.size() > kMaxEntryDataBytes) {
      return WalStatus::error("entry " + std::to_string(entries[i].index.value) +
                              " is larger than the WAL's limit");
    }
  }
  return {};
}

}  // namespace

Wal::Wal(const Options& options)
    : options_(options),
      wal_dir_(join_path(options.dir, "wal")),
      snap_dir_(join_path(options.dir, "snap")) {
  buffer_.reserve(options.buffer_reserve_bytes);
}

Wal::Result Wal::open(const Options& options) {
  Result result;
  if (options.dir.empty() || options.segment_bytes == 0) {
    result.error = "Wal::Options needs a directory and a non-zero segment size";
    return result;
  }
  std::unique_ptr<Wal> wal(new Wal(options));
  if (WalStatus s = wal->recover(result); !s.ok()) {
    result.error = s.message();
    result.recovered = {};
    return result;
  }
  result.wal = std::move(wal);
  return result;
}

WalStatus Wal::recover(Result& result) {
  if (WalStatus s = make_dirs(options_.dir, wal_dir_, snap_dir_); !s.ok()) return s;
  Recovery rec = recover_segments(wal_dir_);
  if (!rec.error.empty()) return WalStatus::error(rec.error);
  raft::Persisted& p = result.recovered;
  if (rec.tail.base()) {
    raft::Snapshot snapshot;
    if (WalStatus s = load_snapshot(*rec.tail.base(), &snapshot); !s.ok()) return s;
    p.snapshot = std::move(snapshot);
  }
  // Everything checked out: only now may recovery change files.
  if (WalStatus s = repair_and_open_tail(rec); !s.ok()) return s;
  p.hard_state = rec.hard_state;
  hard_state_ = rec.hard_state;
  tail_.reset(rec.tail.base(), rec.tail.base_index());
  for (const raft::Entry& e : rec.tail.items()) tail_.push_back(e.term);
  p.entries = rec.tail.take_items();
  assert(p.entries.empty() || p.entries.front().index == tail_.base_index() + 1);
  assert(tail_.complete() && tail_.last_index() == tail_.base_index() + p.entries.size());
  return remove_old_snapshot_files();
}

WalStatus Wal::load_snapshot(const SnapshotMarker& marker, raft::Snapshot* out) const {
  const std::string path = join_path(snap_dir_, snapshot_file_name(marker.meta));
  SnapshotFileSummary summary;
  if (WalStatus s = read_snapshot_file(path, out, &summary); !s.ok()) {
    return WalStatus::error("latest snapshot (index " + std::to_string(marker.meta.index.value) +
                            ") unusable: " + s.message());
  }
  if (!(summary.meta == marker.meta) || summary.data_bytes != marker.data_bytes ||
      summary.data_crc32c != marker.data_crc32c) {
    return WalStatus::error("snapshot file " + path + " does not match the WAL's marker");
  }
  return {};
}

WalStatus Wal::repair_and_open_tail(Recovery& rec) {
  if (rec.drop_last_segment) {
    if (WalStatus s = remove_file(rec.segments.back().path); !s.ok()) return s;
    if (WalStatus s = sync_dir(wal_dir_); !s.ok()) return s;
    rec.segments.pop_back();
  } else if (rec.torn_bytes > 0) {
    const Segment& last = rec.segments.back();
    if (WalStatus s = truncate_file(last.path, last.bytes); !s.ok()) return s;
  }
  segments_ = std::move(rec.segments);
  if (segments_.empty()) {
    const SegmentHeader header{1, raft::Index(0), raft::HardState{}, std::nullopt};
    segments_.emplace_back();
    if (WalStatus s = create_segment(wal_dir_, header, buffer_, &segments_.back(), &fd_); !s.ok()) {
      return s;
    }
    file_bytes_ = segments_.back().bytes;
    return {};
  }
  // Records are written at their offsets (not O_APPEND): the file may end in zeros written ahead.
  if (WalStatus s = open_file(segments_.back().path, O_WRONLY, &fd_); !s.ok()) return s;
  return file_size(fd_.get(), segments_.back().path, &file_bytes_);
}

WalStatus Wal::poison(WalStatus s) {
  assert(!s.ok());
  if (failure_.ok()) failure_ = WalStatus::error("WAL failed earlier, reopen it: " + s.message());
  return s;
}

WalStatus Wal::append(const std::vector<raft::Entry>& entries,
                      const std::optional<raft::HardState>& hard_state) {
  if (!failure_.ok()) return failure_;
  if (!entries.empty()) {
    if (WalStatus s = check_entries(entries); !s.ok()) return s;
    if (WalStatus s = tail_.check_append(entries.front().index); !s.ok()) return s;
    tail_.truncate_from(entries.front().index);
    for (const raft::Entry& e : entries) tail_.push_back(e.term);
    append_entries_records(buffer_, entries);
    segments_.back().max_entry_index =
        std::max(segments_.back().max_entry_index, entries.back().index);
  }
  if (hard_state) {
    append_hard_state_record(buffer_, *hard_state);
    hard_state_ = *hard_state;
  }
  return {};
}

WalStatus Wal::sync() {
  if (WalStatus s = write(); !s.ok()) return s;
  return commit(/*data_synced=*/false);
}

WalStatus Wal::write() {
  if (!failure_.ok()) return failure_;
  if (written_ == buffer_.size()) return {};
  Segment& segment = segments_.back();
  const uint64_t at = segment.bytes + written_;
  const uint64_t end = segment.bytes + buffer_.size();
  if (WalStatus s = write_all_at(fd_.get(), buffer_.data() + written_, buffer_.size() - written_,
                                 at, segment.path);
      !s.ok()) {
    return poison(s);
  }
  written_ = buffer_.size();
  if (end > file_bytes_) {
    file_bytes_ = end;
    if (options_.zero_ahead_bytes > 0) {
      const std::string zeros(options_.zero_ahead_bytes, '\0');
      if (WalStatus s = write_all_at(fd_.get(), zeros.data(), zeros.size(), end, segment.path);
          !s.ok()) {
        return poison(s);
      }
      file_bytes_ += zeros.size();
    }
  }
  return {};
}

WalStatus Wal::commit(bool data_synced) {
  if (!failure_.ok()) return failure_;
  if (written_ == 0) return {};
  Segment& segment = segments_.back();
  if (!data_synced) {
    if (WalStatus s = sync_data(fd_.get(), segment.path); !s.ok()) return poison(s);
  }
  segment.bytes += written_;
  buffer_.erase(0, written_);  // keeps its capacity for the next batch
  written_ = 0;
  if (buffer_.empty() && segment.bytes >= options_.segment_bytes) return rotate();
  return {};
}

// Called with nothing buffered, so the new header describes exactly the durable state.
WalStatus Wal::rotate() {
  assert(buffer_.empty());
  // Only the last segment may end in zeros: recovery holds every other one to its records.
  if (file_bytes_ > segments_.back().bytes) {
    if (WalStatus s = truncate_fd(fd_.get(), segments_.back().bytes, segments_.back().path);
        !s.ok()) {
      return poison(s);
    }
    file_bytes_ = segments_.back().bytes;
  }
  const SegmentHeader header{segments_.back().seq + 1, tail_.last_index(), hard_state_,
                             tail_.base()};
  Segment next;
  FileHandle fd;
  if (WalStatus s = create_segment(wal_dir_, header, buffer_, &next, &fd); !s.ok()) {
    return poison(s);
  }
  segments_.push_back(std::move(next));
  fd_ = std::move(fd);
  file_bytes_ = segments_.back().bytes;
  return {};
}

WalStatus Wal::save_snapshot(const raft::Snapshot& snapshot) {
  if (!failure_.ok()) return failure_;
  SnapshotMarker marker{snapshot.meta, tail_.term_at(snapshot.meta.index) == snapshot.meta.term};
  if (WalStatus s = tail_.check_marker(marker); !s.ok()) return s;
  SnapshotFileSummary summary;
  if (WalStatus s = write_snapshot_file(snap_dir_, snapshot, &summary); !s.ok()) return s;
  marker.data_bytes = summary.data_bytes;
  marker.data_crc32c = summary.data_crc32c;
  append_marker_record(buffer_, marker);
  tail_.apply_marker(marker);
  if (WalStatus s = sync(); !s.ok()) return s;
  if (WalStatus s = remove_covered_segments(); !s.ok()) return s;
  return remove_old_snapshot_files();
}

// Removes the oldest segments while every entry in them is at or below the snapshot index. Only
// a prefix goes, so the rest still replays in order from its first header.
WalStatus Wal::remove_covered_segments() {
  size_t removed = 0;
  while (removed + 1 < segments_.size() &&
         segments_[removed].max_entry_index <= tail_.base_index()) {
    if (WalStatus s = remove_file(segments_[removed].path); !s.ok()) {
      segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(removed));
      return s;
    }
    ++removed;
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(removed));
  if (removed == 0) return {};
  return sync_dir(wal_dir_);
}

// Keeps the latest marker's file and the newest older one; removes the rest, stray .tmp files
// and any file newer than the marker (written by a save that crashed before its marker).
WalStatus Wal::remove_old_snapshot_files() const {
  std::vector<std::string> names;
  if (WalStatus s = list_dir(snap_dir_, &names); !s.ok()) return s;
  const raft::Index current = tail_.base_index();
  std::optional<raft::Index> previous;
  for (const std::string& n : names) {
    auto id = parse_snapshot_file_name(n);
    if (id && id->index < current && (!previous || id->index > *previous)) previous = id->index;
  }
  bool removed = false;
  for (const std::string& n : names) {
    auto id = parse_snapshot_file_name(n);
    const bool is_tmp = n.size() > 4 && n.ends_with(".tmp");
    const bool keep = tail_.base() && (n == snapshot_file_name(tail_.base()->meta) ||
                                       (id && id->index == previous));
    if (keep || (!id && !is_tmp)) continue;  // leaves files it does not know alone
    if (WalStatus s = remove_file(join_path(snap_dir_, n)); !s.ok()) return s;
    removed = true;
  }
  return removed ? sync_dir(snap_dir_) : WalStatus{};
}

WalStatus Wal::persist(const raft::Ready& ready) {
  if (ready.snapshot) {
    if (WalStatus s = save_snapshot(*ready.snapshot); !s.ok()) return s;
  }
  if (WalStatus s = append(ready.entries, ready.hard_state); !s.ok()) return s;
  return sync();
}

}  // namespace synod::storage
