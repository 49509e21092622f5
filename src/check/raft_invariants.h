// Raft's safety properties (Raft paper figure 3; thesis 3.6.3) checked as code while a
// simulation runs, in the manner of LogCabin's Invariants.
//
// The driver calls the on_* hooks; each is a thin wrapper over value-level observe_* checks
// that tests can feed handmade logs and entries. Every check is incremental: O(new entries) per
// call, O(log) only on rare events (a node first seen leading a term, a crash, a restart).
// Violations are recorded, not asserted, so a run reports what it found; the record is bounded
// (kMaxPerInvariant per invariant, kMaxViolations in all) so a broken run cannot flood memory.
//
// Not thread-safe: one simulation owns one checker and calls it from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/consensus/log.h"
#include "core/raft/raft.h"
#include "core/consensus/types.h"
#include "check/engine_invariants.h"

namespace synod::check {

class RaftInvariants final : public EngineInvariants {
 public:

  // --- Driver hooks -----------------------------------------------------------------------
  // The founding membership; CommittedDurable counts quorums in it until a configuration
  // entry commits.
  void set_initial_conf(const raft::ConfState& conf) override;
  void on_step(const Engine& engine) override;
  void on_ready(const Engine& engine, const raft::Ready& rd) override;
  // Raft's checks need nothing at the fsync: what a node persisted shows in its Ready.
  void on_durable(raft::NodeId, const std::vector<raft::Entry>&,
                  const std::optional<raft::HardState>&) override {}
  // The driver just took `rd = raft.ready()` (before persisting it); `raft` is the node's
  // state after producing rd. Runs on_step, then Leader Append-Only and Log Matching on
  // rd.entries and State Machine Safety on rd.committed.
  void on_ready(const raft::Raft& raft, const raft::Ready& rd);
  // After any input to a node: Election Safety, Leader Completeness (once per leader term),
  // the leader's commit rule, and the node's commit index advancing.
  void on_step(const raft::Raft& raft);
  // `node` applied `e` (in index order per node): State Machine Safety.
  void on_apply(raft::NodeId node, const raft::Entry& e) override;
  // `node` installed a snapshot: its last entry must agree with what was committed there.
  void on_snapshot_install(raft::NodeId node, const raft::SnapshotMeta& meta) override;
  // `node` crashed; `durable` maps every node (crashed or not) to its durable state after the
  // crash (null for a node with none). CommittedDurable: the highest committed entry is still
  // held durably by enough voters of some configuration that every quorum of it contains one
  // (so every leader it can elect is told of the entry by a voter, thesis 3.6.3).
  void on_crash(raft::NodeId node,
                const std::map<raft::NodeId, const raft::Persisted*>& durable) override;

  // --- Value-level checks (the hooks above call these; tests may call them directly) -------
  // Election Safety (figure 3): at most one leader per term over the whole run. The first
  // time `node` is seen leading `term`, also Leader Completeness against `log`.
  void observe_leader(raft::NodeId node, raft::Term term, const raft::Log& log);
  // Entries `node` (in `role` and `term`) hands out for persistence. `log` is its log after
  // producing them; it supplies the term before each entry (for Log Matching's induction).
  void observe_entries(raft::NodeId node, raft::Role role, raft::Term term,
                       const std::vector<raft::Entry>& entries, const raft::Log& log);
  // thesis 3.6.2: a leader commits by counting replicas only entries of its own term; older
  // ones become committed when one of its own above them does. So while `node` leads `term`,
  // every advance of its commit index lands on an entry of `term`.
  void observe_leader_commit(raft::NodeId node, raft::Term term, const raft::Log& log);
  // Records as committed the entries up to log.committed() that are new since the last call
  // for `node`: a commit index is a claim, checked the moment it moves, so a wrong commit is
  // caught even if no node lives to apply it.
  void observe_commit(raft::NodeId node, const raft::Log& log);
  // `node` holds `e` as committed (applied, or handed out as committed): State Machine Safety.
  void observe_committed(raft::NodeId node, const raft::Entry& e);
  // A node's log holds configuration `conf` at (index, term): CommittedDurable counts quorums
  // in it from now on, unless a configuration at or above `index` is already committed.
  void observe_conf(raft::Index index, raft::Term term, const raft::ConfState& conf);


 private:
  static constexpr uint64_t kUnknownTerm = UINT64_MAX;
  // Bound on the configurations appended above the committed one that CommittedDurable keeps.
  static constexpr size_t kMaxAppendedConfs = 64;

  struct EntryKey {
    uint64_t index;
    uint64_t term;
    bool operator==(const EntryKey&) const = default;
  };
  struct EntryKeyHash {
    size_t operator()(const EntryKey& k) const noexcept {
      return std::hash<uint64_t>{}(k.index * 0x9E3779B97F4A7C15ULL ^ k.term);
    }
  };
  struct Registered {  // Log Matching: what the first node to persist (index, term) held
    uint64_t hash;
    uint64_t prev_term;  // term of the entry at index - 1, or kUnknownTerm
    raft::NodeId node;
  };
  struct Committed {  // State Machine Safety and Leader Completeness
    raft::Term term;
    uint64_t hash;
    raft::NodeId node;  // first node seen holding it committed
    // Highest leader term seen when the commit was first observed. The committing leader's
    // term is at most this, so every leader of a later term must hold the entry (thesis 3.6.3).
    raft::Term known_by_term;
  };

  void check_append_only(raft::NodeId node, raft::Term term, raft::Index first, raft::Index last);
  void register_entry(raft::NodeId node, const raft::Entry& e, const raft::Log& log);
  void check_completeness(raft::NodeId leader, raft::Term term, const raft::Log& log);
  void note_appended_conf(const raft::Entry& e);
  void note_node_conf(const raft::Raft& raft);
  void note_committed_conf(const raft::Entry& e);
  size_t durable_holders(const raft::ConfState& conf, raft::Index index, raft::Term term,
                         const std::map<raft::NodeId, const raft::Persisted*>& durable) const;

  // ElectionSafety: term -> its leader.
  std::map<raft::Term, raft::NodeId> leaders_;
  raft::Term max_leader_term_;
  // LeaderAppendOnly: node -> (term it last led, last index it emitted as leader in that term).
  std::unordered_map<raft::NodeId, std::pair<raft::Term, raft::Index>> leader_emitted_;
  // LeaderCommitsOwnTerm: node -> (term it leads, its commit index last seen in that term).
  std::unordered_map<raft::NodeId, std::pair<raft::Term, raft::Index>> leader_commit_;
  // LogMatching: (index, term) -> the first registration.
  std::unordered_map<EntryKey, Registered, EntryKeyHash> entries_;
  // Committed entries by index (ordered, so Leader Completeness can start past a snapshot).
  std::map<raft::Index, Committed> committed_;
  raft::Index max_committed_;
  // Commit index last observed per node (observe_commit).
  std::unordered_map<raft::NodeId, raft::Index> commit_seen_;
  // CommittedDurable: the latest committed configuration, and those appended above it. A
  // leader counts quorums in the newest configuration in its log, committed or not (thesis
  // 4.1), so the newest committed entry may be durable on a quorum of a pending one instead.
  raft::ConfState committed_conf_;
  raft::Index committed_conf_index_;
  std::map<std::pair<raft::Index, raft::Term>, raft::ConfState> appended_confs_;
};

}  // namespace synod::check
