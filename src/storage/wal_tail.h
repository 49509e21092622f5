// WalTail: the logical Raft log that a sequence of WAL records describes.
//
// The same rules serve recovery (Item = raft::Entry, the entries themselves) and the writer
// (Item = raft::Term, just enough to decide a snapshot marker's keep_suffix), so what the writer
// accepts is exactly what replay reconstructs.
//
// Shape: a snapshot base (index b, or 0), then indexes (b, last]. Replay may start at a segment
// whose older neighbours were removed, so the items cover only [first, last]; the indexes
// (b, first) are "unseen" until a snapshot marker covers them. complete() says none are left.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <vector>

#include "core/consensus/types.h"
#include "storage/wal_record.h"
#include "storage/wal_status.h"

namespace synod::storage {

inline raft::Term term_of(const raft::Entry& e) {
  return e.term;
}
inline raft::Term term_of(raft::Term t) {
  return t;
}

template <typename Item>
class WalTail {
 public:
  // Starts from a segment header: base snapshot and the last index when the segment was made.
  void reset(const std::optional<SnapshotMarker>& base, raft::Index last) {
    base_ = base;
    assert(last >= base_index());
    last_ = last;
    first_ = last + 1;
    items_.clear();
  }

  const std::optional<SnapshotMarker>& base() const { return base_; }
  raft::Index base_index() const { return base_ ? base_->meta.index : raft::Index(0); }
  raft::Index last_index() const { return last_; }
  raft::Index first_item_index() const { return first_; }
  bool complete() const { return first_ == base_index() + 1; }
  const std::vector<Item>& items() const { return items_; }
  std::vector<Item> take_items() { return std::move(items_); }

  std::optional<raft::Term> term_at(raft::Index i) const {
    if (i < first_ || i > last_) return std::nullopt;
    return term_of(items_[i - first_]);
  }

  // Entries are appended after truncating any suffix that starts at `first` (the Ready
  // contract); they may not leave a gap, nor reach back into the snapshot.
  WalStatus check_append(raft::Index first) const {
    if (first <= base_index()) {
      return WalStatus::error("entries start at index " + std::to_string(first.value) +
                              ", at or below the snapshot index " +
                              std::to_string(base_index().value));
    }
    if (first > last_ + 1) {
      return WalStatus::error("gap: entries start at index " + std::to_string(first.value) +
                              " but the log ends at " + std::to_string(last_.value));
    }
    return {};
  }

  // Precondition: check_append(first) succeeded.
  void truncate_from(raft::Index first) {
    assert(check_append(first).ok());
    if (first <= first_) {
      items_.clear();
      first_ = first;  // any unseen indexes below `first` stay unseen
    } else {
      items_.resize(first - first_);
    }
    last_ = first - 1;
  }

  void push_back(Item item) {
    items_.push_back(std::move(item));
    ++last_;
    assert(last_ - first_ + 1 == items_.size());
  }

  WalStatus check_marker(const SnapshotMarker& m) const {
    if (m.meta.index <= base_index()) {
      return WalStatus::error("snapshot at index " + std::to_string(m.meta.index.value) +
                              " is not past the current snapshot at " +
                              std::to_string(base_index().value));
    }
    if (m.keep_suffix && m.meta.index > last_) {
      return WalStatus::error("snapshot marker keeps the log after index " +
                              std::to_string(m.meta.index.value) + " but the log ends at " +
                              std::to_string(last_.value));
    }
    return {};
  }

  // thesis figure 5.3 steps 6-7, as decided by the writer into m.keep_suffix.
  // Precondition: check_marker(m) succeeded.
  void apply_marker(const SnapshotMarker& m) {
    assert(check_marker(m).ok());
    const raft::Index index = m.meta.index;
    if (!m.keep_suffix) {
      items_.clear();
      last_ = index;
      first_ = index + 1;
    } else if (index >= first_) {
      items_.erase(items_.begin(), items_.begin() + static_cast<ptrdiff_t>(index - first_ + 1));
      first_ = index + 1;
    }
    base_ = m;
    assert(first_ > base_index() && last_ + 1 >= first_);
  }

 private:
  std::optional<SnapshotMarker> base_;
  raft::Index last_;
  raft::Index first_{1};
  std::vector<Item> items_;  // indexes [first_, last_]
};

}  // namespace synod::storage
