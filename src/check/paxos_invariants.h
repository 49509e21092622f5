// Multi-Paxos's safety properties (PMS 2.1 and 2.2), checked as code while a simulation runs.
//
// What is chosen is computed here, from what the acceptors made durable, not from what any
// engine claims: a value is chosen for a slot once a majority of the configuration governing
// the slot has durably accepted it at one round. The checks:
//   RoundSafety         at most one node leads a given round;
//   AcceptAbovePromise  an acceptor never accepts a value below the round it has promised, nor
//                       replaces a value with one of a lower round; its durable promise never
//                       decreases (P1a);
//   OneValuePerRound    every (slot, round) names one value: one proposer per round, one value
//                       per slot from it;
//   ChosenNeverChanges  once chosen, no other value gets a majority for the slot at any round
//                       (P2c: at most one value is chosen);
//   LearnedIsChosen     every value a node learns as chosen (commits, applies, or installs in a
//                       snapshot) is the chosen one, and the slots it learns are chosen
//                       (learners learn only what a majority accepted);
//   ChosenDurable       after a crash, the newest chosen value is still durable on enough voters
//                       that every majority holds one (what was acknowledged survives).
// Every replica applying the same prefix follows from LearnedIsChosen, and the simulator's
// store-convergence check compares the stores themselves.
//
// Every check is incremental: O(slots changed) per step. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "check/engine_invariants.h"
#include "core/paxos/multi_paxos.h"

namespace synod::check {

class PaxosInvariants final : public EngineInvariants {
 public:
  void set_initial_conf(const raft::ConfState& conf) override;
  void on_step(const Engine& engine) override;
  void on_ready(const Engine& engine, const raft::Ready& rd) override;
  void on_durable(raft::NodeId node, const std::vector<raft::Entry>& entries,
                  const std::optional<raft::HardState>& hard_state) override;
  void on_apply(raft::NodeId node, const raft::Entry& e) override;
  void on_snapshot_install(raft::NodeId node, const raft::SnapshotMeta& meta) override;
  void on_crash(raft::NodeId node,
                const std::map<raft::NodeId, const raft::Persisted*>& durable) override;

  // --- Value-level checks (the hooks call these; tests may call them directly) -------------
  // `node` leads `round`.
  void observe_leader(raft::NodeId node, raft::Term round);
  // `node`'s log after a step, and the round it had promised before the step: every slot that
  // changed (at or after the log's unsent_from) must be at or above both.
  void observe_log(raft::NodeId node, raft::Term promised_before, const raft::Log& log);
  // `node` holds `e` as accepted (OneValuePerRound).
  void observe_accepted(raft::NodeId node, const raft::Entry& e);
  // `node` durably accepted `e`: counts toward choosing it.
  void observe_durable(raft::NodeId node, const raft::Entry& e);
  // `node` learned `e` as chosen.
  void observe_learned(raft::NodeId node, const raft::Entry& e);

  // The slots chosen so far form a prefix ending here (for tests and summaries).
  raft::Index chosen_prefix() const { return prefix_; }

 private:
  struct Accepted {
    uint64_t hash = 0;
    std::set<raft::NodeId> holders;  // nodes that made it durable
    std::optional<raft::ConfState> conf;  // the configuration a membership entry brings in
  };
  struct Chosen {
    raft::Term round;
    uint64_t hash;
  };
  struct NodeView {
    raft::Term promised;  // as of the last step
    raft::Term durable_promise;
    bool fresh = true;  // a new process: its log is taken as recovered, not checked
    // Slots past the node's chosen index: what it held at the last step.
    std::map<raft::Index, std::pair<raft::Term, uint64_t>> shadow;
  };

  raft::ConfState config_for(raft::Index slot) const;
  void advance_prefix();
  size_t durable_holders(const raft::ConfState& conf, raft::Index slot, uint64_t hash,
                         const std::map<raft::NodeId, const raft::Persisted*>& durable) const;

  std::map<raft::Term, raft::NodeId> leaders_;
  std::unordered_map<raft::NodeId, NodeView> nodes_;
  // (slot, round) -> the value and who made it durable.
  std::map<raft::Index, std::map<raft::Term, Accepted>> accepted_;
  std::map<raft::Index, Chosen> chosen_;
  raft::Index prefix_;
  raft::ConfState initial_conf_;
  std::map<raft::Index, raft::ConfState> confs_;  // chosen configuration entries
};

}  // namespace synod::check
