// The Raft consensus core: a deterministic state machine with the Ready/Advance contract.
//
// A Raft value takes inputs (tick, step(message), propose, read_index, conf changes, advance)
// and hands back outputs through ready(): state to persist, messages to send, committed entries
// to apply, and read states. It does no I/O and owns no threads; time is ticks and randomness
// comes from the seed in Config. Not thread-safe: one driver owns one instance.
//
// Section numbers refer to Diego Ongaro's dissertation "Consensus: Bridging Theory and
// Practice" (2014), cited as "thesis".
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/consensus/conf.h"
#include "core/consensus/read_rounds.h"
#include "core/consensus/ready_tracker.h"
#include "core/consensus/config.h"
#include "core/consensus/replication.h"
#include "core/consensus/types.h"
#include "core/engine.h"
#include "core/consensus/log.h"
#include "core/consensus/progress.h"
#include "core/rand.h"

namespace synod::raft {

// Known bugs that tests plant to prove that the simulator's checkers catch them. All false in
// production; nothing outside tests sets them.
struct PlantedBugs {
  bool vote_without_log_check = false;         // thesis 3.6.1 election restriction skipped
  bool commit_previous_term_by_count = false;  // thesis 3.6.2 rule skipped
  bool vote_before_persist = false;            // vote answered before the vote is durable
  bool read_index_without_quorum = false;      // thesis 6.4 step 3 (leadership check) skipped
};

struct Config : EngineConfig {
  PlantedBugs bugs;
};

class Raft final : public Engine {
 public:
  Raft(const Config& config, const Persisted& persisted);

  // Inputs.
  void tick() override;
  void step(const Message& m) override;
  ProposeResult propose(std::string data) override;
  ProposeResult propose_conf_change(const ConfChange& change) override;
  // Asks for a linearizable read. The answer arrives as a ReadState with the same context
  // in a later Ready; reads may be dropped on leader change, so callers time out and retry.
  Status read_index(uint64_t context) override;
  Status transfer_leadership(NodeId target) override;
  // Replaces the log prefix up to `index` (which must be applied) with a snapshot image and
  // returns its metadata; the driver persists the snapshot before dropping durable entries.
  // Returns nullopt (and does nothing) if `index` is not past the current snapshot.
  std::optional<SnapshotMeta> compact(Index index, std::string snapshot_data) override;

  // Outputs.
  bool has_ready() const override;
  Ready ready() override;
  void advance() override;

  // Observers (for drivers, tests and invariant checkers).
  NodeId id() const override { return cfg_.id; }
  Role role() const override { return role_; }
  Term term() const override { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const override { return leader_; }
  const Log& log() const { return log_; }
  const ConfState& conf() const override { return conf_; }
  Index committed_index() const override { return log_.committed(); }
  Index last_index() const override { return log_.last_index(); }
  Index snapshot_index() const override { return log_.snapshot().index; }
  // Index of the entry that defined conf() (or of the snapshot holding it): the newest
  // configuration in the log, committed or not (thesis 4.1).
  Index conf_index() const override { return conf_index_; }
  HardState hard_state() const { return {term_, vote_, log_.committed()}; }
  const Progress* progress(NodeId peer) const;
  NodeId transferee() const { return transferee_; }

 private:
  // Role transitions.
  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void campaign(bool pre_vote, bool transfer);
  void reset(Term term);
  void tick_election();
  void tick_heartbeat();
  void poll(const Message& m);

  // Message handling.
  bool step_term(const Message& m);
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot_chunk(const Message& m);
  void install_snapshot(Snapshot snapshot);
  void handle_append_resp(const Message& m);
  void handle_append_reject(Progress& pr, const Message& m);
  void handle_heartbeat_resp(const Message& m);
  void handle_snapshot_resp(const Message& m);
  bool in_lease() const;

  // Leader replication.
  void broadcast_append();
  void broadcast_heartbeat(uint64_t context);
  bool send_append(NodeId to, bool allow_empty);
  void send_snapshot_chunk(NodeId to);
  void send_heartbeat(NodeId to, uint64_t context);
  bool maybe_commit();
  Index append_as_leader(EntryType type, std::string data);
  void check_quorum_or_step_down();
  void maybe_send_timeout_now(NodeId to);
  void on_commit_advanced();

  // Reads.
  void start_read(uint64_t context, NodeId requester);
  void answer_read(uint64_t context, NodeId requester, Index index);
  void release_pending_reads();
  bool lease_valid() const;

  // Membership.
  void on_log_changed(Index from);
  ConfState conf_at(Index index) const;
  void apply_conf(const ConfState& conf);
  size_t quorum() const { return quorum_size(conf_); }
  bool promotable() const { return conf_.is_voter(cfg_.id); }
  bool committed_in_current_term() const;

  void send(Message m);
  Message make(MessageType type, NodeId to) const;
  void reset_randomized_timeout();
  void assert_invariants() const;

  Config cfg_;
  Rng rng_;
  Log log_;
  ConfState conf_;
  ConfState base_conf_;  // configuration at the snapshot (or the initial one)
  Index conf_index_;     // log index of the entry that defined conf_ (or the snapshot index)
  std::optional<Snapshot> local_snapshot_;  // the image behind log_.snapshot(), for followers

  Term term_;
  NodeId vote_ = kNoNode;
  NodeId leader_ = kNoNode;
  Role role_ = Role::kFollower;

  uint32_t election_elapsed_ = 0;
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_timeout_ = 0;
  uint64_t now_ticks_ = 1;  // local tick counter for leases; 0 means "never"

  std::map<NodeId, bool> votes_;         // candidate: who answered, and how
  std::map<NodeId, Progress> progress_;  // leader: one per member other than self
  NodeId transferee_ = kNoNode;
  bool lease_revoked_ = false;      // a TimeoutNow left in this term: no more lease reads
  bool pending_broadcast_ = false;  // proposals wait for ready() so they travel in one batch

  // ReadIndex (thesis 6.4).
  ReadRounds reads_;
  std::vector<std::pair<uint64_t, NodeId>> reads_before_commit_;  // waiting for a term commit

  // Follower: snapshot being received in chunks.
  std::optional<Snapshot> incoming_snapshot_;

  ReadyTracker ready_;
};

}  // namespace synod::raft
