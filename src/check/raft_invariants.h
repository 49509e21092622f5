// Raft's safety properties (Raft paper figure 3; thesis 3.6.3) checked as code while a
// simulation runs. Each check is incremental: O(new entries) per call, O(log) only on rare
// events (a new leader, a crash). Violations are recorded, not asserted, so a run reports all
// it found (at most kMaxViolations).
#pragma once

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/raft/raft.h"

namespace synod::check {

struct Violation {
  std::string invariant;  // ElectionSafety, LeaderAppendOnly, LogMatching, LeaderCompleteness,
                          // StateMachineSafety, CommittedDurable
  std::string detail;
};

class RaftInvariants {
 public:
  static constexpr size_t kMaxViolations = 20;

  void set_initial_conf(const raft::ConfState& conf) { committed_conf_ = conf; }
  // The driver took `rd` from `raft` (before persisting it).
  void on_ready(const raft::Raft& raft, const raft::Ready& rd);
  // After any input to a node.
  void on_step(const raft::Raft& raft);
  void on_apply(raft::NodeId node, const raft::Entry& e);
  void on_snapshot_install(raft::NodeId node, const raft::SnapshotMeta& meta);
  // `durable` holds every node's durable state after `node` crashed.
  void on_crash(raft::NodeId node, const std::map<raft::NodeId, const raft::Persisted*>& durable);

  const std::vector<Violation>& violations() const { return violations_; }
  bool ok() const { return violations_.empty(); }

 private:
  struct EntryId {
    raft::Term term;
    uint64_t hash;
    bool operator==(const EntryId&) const = default;
  };
  struct Committed {
    EntryId id;
    // Highest leader term seen when the commit was first observed: the committing leader's
    // term is at most this, so every leader of a later term must hold the entry.
    raft::Term known_by_term;
  };
  void observe_leader(const raft::Raft& raft);
  void observe_commit(const raft::Raft& raft);
  void record_committed(raft::NodeId node, const raft::Entry& e);
  void fail(std::string invariant, std::string detail);

  std::map<raft::Term, raft::NodeId> leaders_;                              // ElectionSafety
  std::map<raft::NodeId, std::pair<raft::Term, raft::Index>> leader_last_;  // LeaderAppendOnly
  std::map<raft::NodeId, raft::Index> commit_seen_;  // commit index last observed per node
  // LogMatching: (index, term) -> (data hash, previous entry's term).
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint64_t>> entries_;
  std::unordered_map<uint64_t, Committed> committed_;  // index -> committed entry
  raft::Index max_committed_;
  raft::ConfState committed_conf_;
  raft::Index committed_conf_index_;
  // The newest configuration appended anywhere: a leader counts quorums in it before it
  // commits (thesis 4.1), so an entry may be durable on its quorum rather than the old one's.
  raft::ConfState appended_conf_;
  raft::Index appended_conf_index_;
  std::vector<Violation> violations_;
};

uint64_t entry_hash(const raft::Entry& e);

}  // namespace synod::check
