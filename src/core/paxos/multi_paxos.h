// Multi-Paxos: a second consensus engine behind the same Engine interface as Raft, a
// deterministic value with the Ready/Advance contract (src/core/consensus/types.h).
//
// Roles (Lamport, "Paxos Made Simple", cited PMS): every member is an acceptor and a learner;
// one at a time acts as the distinguished proposer (PMS 3). A ballot is (round, proposer): the
// round travels in the `term` fields, and an acceptor promises a round to one proposer only
// (the durable HardState holds the promised round and whom it was promised to), so at most one
// proposer completes phase 1 in a round and every (slot, round) names one value.
//
//   - Election by ballot: after a randomized timeout without a leader, a member runs a
//     pre-prepare (a trial that persists nothing), then phase 1 once for every open slot:
//     Prepare(r, c) where c is its chosen index; each acceptor persists its promise and answers
//     with the values it accepted past c. With a majority of every configuration that may
//     govern an open slot, the proposer adopts, slot by slot, the chosen value if a promise
//     knows it, else the value of the highest round (PMS 2.2, P2c), and proposes them again at
//     its own round. A refusal (a Nack) carries the higher round; the proposer backs off.
//   - Phase 2, pipelined and batched: Accept(r, slots) to every member; an acceptor accepts a
//     run only if it continues the slots it already accepted at r (no holes, so the log stays
//     contiguous and the chosen slots are always a prefix), persists it and answers Accepted.
//     A slot is chosen once a majority of its configuration accepted it at r; the leader
//     broadcasts its chosen index (Commit, also its heartbeat and read round).
//   - Acceptors overwrite slots with values of higher rounds and keep the slots after them
//     (never truncating accepted values), and persist promises and accepted values before
//     they answer.
//   - Reads: one quorum round per batch (Commit/CommitResp), or a leader lease.
//   - Membership: one voter at a time through the log, effective for the slots after it once
//     chosen; the leader proposes nothing past a pending change (a barrier).
// docs/paxos.md gives the safety argument and how it differs from the textbook.
//
// Not thread-safe: one driver owns one instance.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/consensus/conf.h"
#include "core/consensus/config.h"
#include "core/consensus/log.h"
#include "core/consensus/progress.h"
#include "core/consensus/read_rounds.h"
#include "core/consensus/ready_tracker.h"
#include "core/consensus/types.h"
#include "core/engine.h"
#include "core/rand.h"

namespace synod::paxos {

using raft::ConfChange;
using raft::ConfState;
using raft::Entry;
using raft::EntryType;
using raft::HardState;
using raft::Index;
using raft::kNoNode;
using raft::Log;
using raft::Message;
using raft::MessageType;
using raft::NodeId;
using raft::Persisted;
using raft::Progress;
using raft::ProgressState;
using raft::ProposeResult;
using raft::ReadState;
using raft::Ready;
using raft::Role;
using raft::Snapshot;
using raft::SnapshotMeta;
using raft::Status;
using raft::Term;

// Known bugs that tests plant to prove that the simulator's checkers catch them. All false in
// production; nothing outside tests sets them.
struct PlantedBugs {
  // A leader refused with a higher round takes the next round and goes on sending its open
  // values without running phase 1 again.
  bool skip_phase1_on_round_change = false;
  // Acceptors send Promise and Accepted before their state is durable.
  bool answer_before_persist = false;
  // A new leader proposes its own values (or no-ops) for the open slots instead of the values
  // the promises reported.
  bool ignore_promised_values = false;
};

struct Config : raft::EngineConfig {
  // An acceptor refuses to promise (as "behind") if it would have to report more than this.
  uint64_t max_promise_bytes = 64 << 20;
  PlantedBugs bugs;
};

class MultiPaxos final : public Engine {
 public:
  MultiPaxos(const Config& config, const Persisted& persisted);

  // Inputs.
  void tick() override;
  void step(const Message& m) override;
  ProposeResult propose(std::string data) override;
  ProposeResult propose_conf_change(const ConfChange& change) override;
  Status read_index(uint64_t context) override;
  Status transfer_leadership(NodeId target) override;
  std::optional<SnapshotMeta> compact(Index index, std::string snapshot_data) override;

  // Outputs.
  bool has_ready() const override;
  Ready ready() override;
  void advance() override;

  // Observers.
  NodeId id() const override { return cfg_.id; }
  Role role() const override { return role_; }
  // The promised round.
  Term term() const override { return promised_; }
  // The proposer the current round was promised to (or whose leader messages were seen).
  NodeId vote() const { return vote_; }
  NodeId leader() const override { return leader_; }
  const ConfState& conf() const override { return conf_; }
  Index committed_index() const override { return log_.committed(); }
  Index last_index() const override { return log_.last_index(); }
  Index snapshot_index() const override { return log_.snapshot().index; }
  Index conf_index() const override { return conf_index_; }
  const Log& log() const { return log_; }
  // Acceptor: the last slot of the run past the chosen index that it accepted at its current
  // round (the leader: its last slot).
  Index round_match() const { return role_ == Role::kLeader ? log_.last_index() : round_match_; }
  // Leader: the last slot phase 1 found open; settled once it is chosen.
  Index phase1_end() const { return phase1_end_; }
  bool settled() const { return role_ == Role::kLeader && log_.committed() >= phase1_end_; }
  HardState hard_state() const { return {promised_, vote_, log_.committed()}; }
  const Progress* progress(NodeId peer) const;
  // The configuration that governs `slot`: the newest configuration entry before it.
  const ConfState& config_for(Index slot) const;

 private:
  struct Promise {
    Index chosen;                // the acceptor's chosen index
    std::vector<Entry> entries;  // what it accepted past the proposer's chosen index
  };

  // Roles and rounds (multi_paxos.cpp).
  void reset(Term round);
  void become_follower(Term round, NodeId leader);
  void reset_randomized_timeout();
  void tick_election();
  void tick_heartbeat();
  void check_quorum_or_step_down();
  bool in_lease() const;
  bool step_round(const Message& m);
  void send(Message m);
  Message make(MessageType type, NodeId to) const;
  bool promotable() const { return conf_.is_voter(cfg_.id); }

  // Acceptor (acceptor.cpp).
  void handle_pre_prepare(const Message& m);
  void handle_prepare(const Message& m);
  bool can_promise(Index candidate_chosen) const;
  void handle_accept(const Message& m);
  void handle_commit(const Message& m);
  void handle_snapshot_chunk(const Message& m);
  void install_snapshot(Snapshot snapshot);
  void answer(Message m);

  // Proposer (proposer.cpp).
  void campaign(bool pre_prepare, bool transfer);
  void send_prepares();
  void poll_pre_prepare(const Message& m);
  void handle_promise(const Message& m);
  void poll_phase1();
  void become_leader(const std::vector<Entry>& adopted, Index known_chosen);
  void handle_nack_as_leader(const Message& m);
  Index append_as_leader(EntryType type, std::string data);
  void broadcast_accept();
  bool send_accept(NodeId to, bool allow_empty);
  void send_snapshot_chunk(NodeId to);
  void broadcast_commit(uint64_t context);
  void handle_accepted(const Message& m);
  void handle_commit_resp(const Message& m);
  // Counts an acceptor's run at our round as ending at `run`, below what we counted, and
  // sends from there.
  void rewind(NodeId to, Index run);
  void handle_snapshot_resp(const Message& m);
  bool maybe_choose();
  void on_chosen_advanced();
  void maybe_send_timeout_now(NodeId to);

  // Reads (multi_paxos.cpp).
  void start_read(uint64_t context, NodeId requester);
  void answer_read(uint64_t context, NodeId requester, Index index);
  void release_pending_reads();
  bool lease_valid() const;

  // Membership.
  void on_log_changed(Index from);
  void apply_conf(const ConfState& conf);

  void assert_invariants() const;

  Config cfg_;
  Rng rng_;
  Log log_;
  ConfState base_conf_;               // configuration at the snapshot (or the initial one)
  std::map<Index, ConfState> confs_;  // configuration entries in the log, by slot
  ConfState conf_;                    // the newest configuration in the log
  Index conf_index_;                  // its slot (or the snapshot's index)
  std::optional<Snapshot> local_snapshot_;
  std::optional<Snapshot> incoming_snapshot_;

  Term promised_;
  NodeId vote_ = kNoNode;
  NodeId leader_ = kNoNode;
  Role role_ = Role::kFollower;
  Index round_match_;

  uint32_t election_elapsed_ = 0;
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_timeout_ = 0;
  uint64_t now_ticks_ = 1;  // local tick counter for leases; 0 means "never"

  // Pre-prepare and phase 1.
  std::map<NodeId, bool> pre_votes_;
  bool transfer_campaign_ = false;
  Index phase1_from_;  // the chosen index the Prepares carry
  std::map<NodeId, Promise> promises_;
  std::set<NodeId> refusals_;
  std::set<NodeId> prepared_;  // members a Prepare of this round went to

  // Leader.
  Index phase1_end_;
  std::map<NodeId, Progress> progress_;
  NodeId transferee_ = kNoNode;
  bool lease_revoked_ = false;
  bool pending_broadcast_ = false;

  raft::ReadRounds reads_;
  std::vector<std::pair<uint64_t, NodeId>> reads_before_settled_;

  raft::ReadyTracker ready_;
};

}  // namespace synod::paxos
