// An engine's in-memory log: a snapshot boundary plus the entries after it, with the indexes
// that track what is committed (Multi-Paxos: chosen), what the driver has been handed, and what
// it has made durable. Raft appends and truncates conflicting suffixes (maybe_append);
// a Multi-Paxos acceptor overwrites slots with values of a higher round and keeps the slots
// after them (overwrite). Either way the log stays contiguous, which is what the driver's
// truncate-and-append persistence needs.
//
//   snapshot.index < applied <= committed <= last_index
//   persisted <= last_index: the prefix [1, persisted] is durable and equals this log
//   unsent_from: entries at or after it have not yet been handed out in a Ready
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/consensus/types.h"

namespace synod::raft {

class Log {
 public:
  Log() = default;
  // Restores from durable state. Precondition: entries are contiguous from snapshot.index + 1.
  Log(const SnapshotMeta& snapshot, std::vector<Entry> entries, Index committed, Index applied);

  Index first_index() const { return snapshot_.index + 1; }
  Index last_index() const { return snapshot_.index + entries_.size(); }
  Term last_term() const;
  // Term of the entry at `i`; nullopt when `i` is compacted away or beyond the end.
  std::optional<Term> term(Index i) const;
  bool match_term(Index i, Term t) const { return term(i) == t; }
  // thesis 3.6.1: a candidate's log is at least as up-to-date as ours.
  bool is_up_to_date(Index last, Term last_term) const;
  const Entry& at(Index i) const;  // precondition: first_index <= i <= last_index
  // Entries in [lo, hi], stopping early once `max_bytes` is reached (always at least one).
  std::vector<Entry> slice(Index lo, Index hi, uint64_t max_bytes) const;

  // Leader append. Precondition: entries continue the log (index last+1, ...).
  void append(const std::vector<Entry>& entries);
  // Follower append (thesis 3.5, AppendEntries receiver rules 2-5). Returns the index of the
  // last entry the leader's message vouches for, or nullopt if (prev_index, prev_term) does
  // not match. Conflicting suffixes are truncated; entries already present are kept.
  std::optional<Index> maybe_append(Index prev_index, Term prev_term,
                                    const std::vector<Entry>& entries);
  // Multi-Paxos acceptor: writes `entries` (contiguous, starting at or before last_index + 1)
  // over the slots they name and keeps every slot after them; slots at or below the committed
  // index, and slots that already hold the same round, are left alone. Returns the first slot
  // that changed, if any (the Ready then rewrites the log from there).
  std::optional<Index> overwrite(const std::vector<Entry>& entries);
  // PBFT: writes `entries` (contiguous, after the committed index, starting at or before
  // last_index + 1) over the slots they name whatever those hold, and keeps every slot after
  // them; the next Ready rewrites the log from the first.
  void replace(const std::vector<Entry>& entries);
  // For a reject: the largest index <= `index` whose term is <= `term` (fast backtracking).
  Index find_conflict_by_term(Index index, Term term) const;

  Index committed() const { return committed_; }
  void commit_to(Index i);  // never decreases; precondition i <= last_index
  Index applied() const { return applied_; }
  void applied_to(Index i);

  Index persisted() const { return persisted_; }
  void persisted_to(Index i, Term t);  // ignored if the entry at i was since replaced
  Index unsent_from() const { return unsent_from_; }
  void mark_sent(Index last) { unsent_from_ = last + 1; }
  bool has_unsent() const { return unsent_from_ <= last_index(); }

  const SnapshotMeta& snapshot() const { return snapshot_; }
  // Installs a snapshot received from the leader, discarding any entries it covers. If the log
  // already holds the snapshot's last entry, the suffix after it is kept (thesis 5.3).
  void restore(const SnapshotMeta& meta);
  // Drops entries up to `index` (applied) into a local snapshot described by `meta`.
  void compact(const SnapshotMeta& meta);

  // Entries as a vector (for checkers and tests).
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  void truncate_after(Index i);

  SnapshotMeta snapshot_;
  std::vector<Entry> entries_;
  Index committed_;
  Index applied_;
  Index persisted_;
  Index unsent_from_{1};
};

}  // namespace synod::raft
