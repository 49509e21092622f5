#include "core/consensus/log.h"

#include <algorithm>
#include <cassert>

namespace synod::raft {

Log::Log(const SnapshotMeta& snapshot, std::vector<Entry> entries, Index committed, Index applied)
    : snapshot_(snapshot), entries_(std::move(entries)) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    assert(entries_[i].index == snapshot_.index + (i + 1));
  }
  persisted_ = last_index();
  unsent_from_ = last_index() + 1;
  committed_ = std::clamp(committed, snapshot_.index, last_index());
  applied_ = std::clamp(applied, snapshot_.index, committed_);
}

Term Log::last_term() const {
  return entries_.empty() ? snapshot_.term : entries_.back().term;
}

std::optional<Term> Log::term(Index i) const {
  if (i == snapshot_.index) return snapshot_.term;
  if (i < snapshot_.index || i > last_index()) return std::nullopt;
  return at(i).term;
}

bool Log::is_up_to_date(Index last, Term lt) const {
  return lt > last_term() || (lt == last_term() && last >= last_index());
}

const Entry& Log::at(Index i) const {
  assert(i >= first_index() && i <= last_index());
  return entries_[i - first_index()];
}

std::vector<Entry> Log::slice(Index lo, Index hi, uint64_t max_bytes) const {
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = std::max(lo, first_index()); i <= hi && i <= last_index(); ++i) {
    const Entry& e = at(i);
    bytes += e.data.size() + 24;
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

void Log::append(const std::vector<Entry>& entries) {
  for (const Entry& e : entries) {
    assert(e.index == last_index() + 1);
    assert(e.term >= last_term());
    entries_.push_back(e);
  }
}

void Log::truncate_after(Index i) {
  assert(i >= snapshot_.index);
  // thesis 3.5: committed entries are never truncated (State Machine Safety).
  assert(i >= committed_);
  entries_.resize(i - snapshot_.index);
  unsent_from_ = std::min(unsent_from_, i + 1);
  persisted_ = std::min(persisted_, i);
}

std::optional<Index> Log::maybe_append(Index prev_index, Term prev_term,
                                       const std::vector<Entry>& entries) {
  if (prev_index < snapshot_.index) {
    // The prefix up to our snapshot is committed and therefore matches the leader's log
    // (Log Matching); skip the entries our snapshot already covers.
    std::vector<Entry> rest;
    for (const Entry& e : entries) {
      if (e.index > snapshot_.index) rest.push_back(e);
    }
    if (rest.empty()) return prev_index + entries.size();
    Index p = rest.front().index - 1;
    if (p != snapshot_.index) return std::nullopt;
    return maybe_append(p, snapshot_.term, rest);
  }
  if (!match_term(prev_index, prev_term)) return std::nullopt;
  for (size_t k = 0; k < entries.size(); ++k) {
    // Entries must be contiguous after prev_index; anything else is a malformed message.
    if (entries[k].index != prev_index + (k + 1)) return std::nullopt;
  }
  for (const Entry& e : entries) {
    auto t = term(e.index);
    if (t == e.term) continue;
    // A conflict at or below the commit index can only come from a broken or malicious peer
    // (Leader Completeness); refuse it rather than lose a committed entry.
    if (t.has_value() && e.index <= committed_) return std::nullopt;
    if (t.has_value()) truncate_after(e.index - 1);
    assert(e.index == last_index() + 1);
    entries_.push_back(e);
  }
  return prev_index + entries.size();
}

std::optional<Index> Log::overwrite(const std::vector<Entry>& entries) {
  std::optional<Index> first;
  for (const Entry& e : entries) {
    if (e.index <= committed_ || e.index <= snapshot_.index || term(e.index) == e.term) continue;
    assert(e.index <= last_index() + 1);
    if (e.index == last_index() + 1) {
      entries_.push_back(e);
    } else {
      entries_[e.index - first_index()] = e;
    }
    if (!first) first = e.index;
  }
  if (first) {
    unsent_from_ = std::min(unsent_from_, *first);
    persisted_ = std::min(persisted_, *first - 1);
  }
  return first;
}

void Log::replace(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const Index first = entries.front().index;
  assert(first > committed_ && first > snapshot_.index && first <= last_index() + 1);
  for (const Entry& e : entries) {
    assert(e.index == first + (&e - entries.data()));
    if (e.index == last_index() + 1) {
      entries_.push_back(e);
    } else {
      entries_[e.index - first_index()] = e;
    }
  }
  unsent_from_ = std::min(unsent_from_, first);
  persisted_ = std::min(persisted_, first - 1);
}

Index Log::find_conflict_by_term(Index index, Term t) const {
  Index i = std::min(index, last_index());
  while (i > snapshot_.index) {
    if (at(i).term <= t) return i;
    i = i - 1;
  }
  return snapshot_.index;
}

void Log::commit_to(Index i) {
  if (i <= committed_) return;
  assert(i <= last_index());
  committed_ = i;
}

void Log::applied_to(Index i) {
  if (i <= applied_) return;
  assert(i <= committed_);
  applied_ = i;
}

void Log::persisted_to(Index i, Term t) {
  if (i <= persisted_) return;
  if (term(i) != t) return;  // replaced since the driver was handed it
  persisted_ = std::min(i, unsent_from_ - 1);
}

void Log::restore(const SnapshotMeta& meta) {
  assert(meta.index > committed_);
  if (match_term(meta.index, meta.term)) {
    entries_.erase(entries_.begin(), entries_.begin() + (meta.index - snapshot_.index));
  } else {
    entries_.clear();
    unsent_from_ = meta.index + 1;
    persisted_ = meta.index;
  }
  snapshot_ = meta;
  committed_ = meta.index;
  applied_ = meta.index;
  persisted_ = std::max(persisted_, meta.index);
  unsent_from_ = std::max(unsent_from_, meta.index + 1);
}

void Log::compact(const SnapshotMeta& meta) {
  assert(meta.index <= applied_ && meta.index > snapshot_.index);
  assert(term(meta.index) == meta.term);
  entries_.erase(entries_.begin(), entries_.begin() + (meta.index - snapshot_.index));
  snapshot_ = meta;
}

}  // namespace synod::raft
