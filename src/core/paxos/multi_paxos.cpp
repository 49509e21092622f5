#include "core/paxos/multi_paxos.h"

#include <algorithm>
#include <cassert>

#include "core/consensus/replication.h"

namespace synod::paxos {

// ---------------------------------------------------------------------------------------------
// Construction and restart.

MultiPaxos::MultiPaxos(const Config& config, const Persisted& persisted)
    : cfg_(config), rng_(config.seed ^ (config.id.value * 0x9e3779b97f4a7c15ULL)) {
  assert(cfg_.id != kNoNode);
  assert(cfg_.election_ticks > cfg_.heartbeat_ticks && cfg_.heartbeat_ticks > 0);
  assert(cfg_.read_mode != raft::ReadMode::kLease || cfg_.check_quorum);
  assert(cfg_.lease_drift_ticks < cfg_.election_ticks);
  SnapshotMeta meta;
  if (persisted.snapshot) {
    meta = persisted.snapshot->meta;
    local_snapshot_ = persisted.snapshot;
    base_conf_ = meta.conf;
  } else {
    base_conf_ = cfg_.initial_conf;
  }
  log_ =
      Log(meta, persisted.entries, persisted.hard_state.commit, std::max(cfg_.applied, meta.index));
  promised_ = persisted.hard_state.term;
  vote_ = persisted.hard_state.vote;
  conf_ = base_conf_;
  conf_index_ = meta.index;
  on_log_changed(log_.first_index());
  // The run accepted at the promised round: by the acceptance rule, the slots past the chosen
  // index that hold the promised round come first.
  round_match_ = log_.committed();
  while (round_match_ < log_.last_index() && log_.term(round_match_ + 1) == promised_) {
    ++round_match_;
  }
  ready_ = raft::ReadyTracker(hard_state());
  reset_randomized_timeout();
}

const Progress* MultiPaxos::progress(NodeId peer) const {
  auto it = progress_.find(peer);
  return it == progress_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------------------------------------
// Rounds and roles.

void MultiPaxos::reset(Term round) {
  if (round != promised_) {
    assert(round > promised_);
    promised_ = round;
    vote_ = kNoNode;
    lease_revoked_ = false;
    round_match_ = log_.committed();
  }
  leader_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_timeout();
  pre_votes_.clear();
  promises_.clear();
  refusals_.clear();
  prepared_.clear();
  progress_.clear();
  transferee_ = kNoNode;
  pending_broadcast_ = false;
  // Reads in flight lose their confirmation round; their clients time out and retry.
  reads_.clear();
  reads_before_settled_.clear();
}

void MultiPaxos::become_follower(Term round, NodeId leader) {
  // A leader or candidate that steps down within its round still holds the slots it wrote at
  // that round: they stay its accepted run.
  if (role_ == Role::kLeader && round == promised_) round_match_ = log_.last_index();
  reset(round);
  role_ = Role::kFollower;
  leader_ = leader;
}

void MultiPaxos::reset_randomized_timeout() {
  // PMS 2.4: electing a distinguished proposer needs randomness or real time; randomized
  // timeouts make two proposers preempting each other for long unlikely.
  randomized_timeout_ =
      cfg_.election_ticks + static_cast<uint32_t>(rng_.uniform(cfg_.election_ticks));
}

void MultiPaxos::tick() {
  ++now_ticks_;
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void MultiPaxos::tick_election() {
  ++election_elapsed_;
  if (!promotable() || election_elapsed_ < randomized_timeout_) return;
  election_elapsed_ = 0;
  reset_randomized_timeout();
  campaign(cfg_.pre_vote, false);
}

void MultiPaxos::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_ticks) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) check_quorum_or_step_down();
    if (role_ != Role::kLeader) return;
    transferee_ = kNoNode;  // a transfer that did not finish in time is abandoned
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_commit(reads_.round());
  }
}

void MultiPaxos::check_quorum_or_step_down() {
  // A leader that has not heard from a majority within an election timeout steps down, so
  // clients stop waiting on a proposer that cannot get anything chosen.
  std::vector<std::pair<NodeId, Index>> active;
  active.emplace_back(cfg_.id, Index(1));
  for (auto& [id, pr] : progress_) {
    if (pr.recent_active) active.emplace_back(id, Index(1));
    pr.recent_active = false;
  }
  if (raft::quorum_index(active, conf_) == Index(0)) become_follower(promised_, kNoNode);
}

bool MultiPaxos::in_lease() const {
  // Stickiness (PML 4.2's master lease, on the acceptor's side): an acceptor that heard from a
  // live leader within the election timeout refuses to help another proposer start a round.
  return cfg_.check_quorum && leader_ != kNoNode && election_elapsed_ < cfg_.election_ticks;
}

// ---------------------------------------------------------------------------------------------
// Step.

void MultiPaxos::step(const Message& m) {
  if (m.to != cfg_.id || m.from == cfg_.id || m.from == kNoNode) return;
  switch (m.type) {
    case MessageType::kForwardPropose:
      if (role_ == Role::kLeader && transferee_ == kNoNode && conf_index_ <= log_.committed()) {
        for (const Entry& e : m.entries) {
          if (e.type != EntryType::kNormal || e.data.empty()) continue;
          if (log_.last_index() - log_.committed() >= cfg_.max_open_slots) break;
          append_as_leader(EntryType::kNormal, e.data);
        }
      }
      return;
    case MessageType::kForwardRead:
      if (role_ == Role::kLeader) start_read(m.context, m.from);
      return;
    case MessageType::kForwardReadResp:
      ready_.read_state({m.context, m.log_index});
      return;
    default:
      break;
  }
  if (!step_round(m)) return;
  switch (m.type) {
    case MessageType::kPreVote:
      handle_pre_prepare(m);
      return;
    case MessageType::kPrepare:
      handle_prepare(m);
      return;
    case MessageType::kAccept:
      handle_accept(m);
      return;
    case MessageType::kCommit:
      handle_commit(m);
      return;
    case MessageType::kSnapshot:
      handle_snapshot_chunk(m);
      return;
    case MessageType::kTimeoutNow:
      // A leadership transfer: run phase 1 now, skipping the pre-prepare.
      if (promotable() && role_ != Role::kLeader) campaign(false, true);
      return;
    case MessageType::kPreVoteResp:
      if (role_ == Role::kPreCandidate) poll_pre_prepare(m);
      return;
    case MessageType::kPromise:
      if (role_ == Role::kCandidate) handle_promise(m);
      return;
    case MessageType::kAccepted:
      if (role_ == Role::kLeader) handle_accepted(m);
      return;
    case MessageType::kCommitResp:
      if (role_ == Role::kLeader) handle_commit_resp(m);
      return;
    case MessageType::kSnapshotResp:
      if (role_ == Role::kLeader) handle_snapshot_resp(m);
      return;
    default:
      return;  // Raft's message types mean nothing here
  }
}

// The round rules every message goes through first. Returns false if the message is dropped.
bool MultiPaxos::step_round(const Message& m) {
  const bool from_leader = m.type == MessageType::kAccept || m.type == MessageType::kCommit ||
                           m.type == MessageType::kSnapshot;
  const bool request = m.type == MessageType::kPreVote || m.type == MessageType::kPrepare;
  if (m.term > promised_) {
    if (request && !m.transfer && in_lease()) return false;
    if (request) return true;  // handle_prepare takes the promise; a pre-prepare changes nothing
    if (m.type == MessageType::kPreVoteResp && !m.reject) return true;
    if (m.reject && role_ == Role::kLeader && cfg_.bugs.skip_phase1_on_round_change) {
      handle_nack_as_leader(m);
      return false;
    }
    // Only the winner of round r sends leader messages at r; anything else at a higher round
    // (a Nack, an answer to a later proposer) raises the promise without naming a proposer,
    // which only narrows what this acceptor will accept.
    become_follower(m.term, from_leader ? m.from : kNoNode);
    if (from_leader) vote_ = m.from;
    return true;
  }
  if (m.term < promised_) {
    // A Nack: the refused proposer learns the higher round and steps down.
    MessageType nack;
    switch (m.type) {
      case MessageType::kPrepare:
        nack = MessageType::kPromise;
        break;
      case MessageType::kAccept:
      case MessageType::kSnapshot:
        nack = MessageType::kAccepted;
        break;
      case MessageType::kCommit:
        nack = MessageType::kCommitResp;
        break;
      case MessageType::kPreVote:
        nack = MessageType::kPreVoteResp;
        break;
      default:
        return false;
    }
    Message r = make(nack, m.from);
    r.reject = true;
    send(std::move(r));
    return false;
  }
  if (from_leader) {
    // Round r's leader: only the proposer that completed phase 1 at r sends these, so a
    // promise of r to another (who cannot win r) is moot.
    if (role_ != Role::kFollower) become_follower(promised_, m.from);
    vote_ = m.from;
    leader_ = m.from;
    election_elapsed_ = 0;
  }
  return true;
}

Message MultiPaxos::make(MessageType type, NodeId to) const {
  Message m;
  m.type = type;
  m.from = cfg_.id;
  m.to = to;
  m.term = promised_;
  return m;
}

void MultiPaxos::send(Message m) {
  // A leader's Accepts, Commits and snapshot chunks promise nothing of its own state, so they
  // leave before its fsync (the leader counts itself only for what is durable). Everything else
  // (promises, acceptances, a candidate's Prepares) waits for the Ready to be persisted.
  const bool replication = m.type == MessageType::kAccept || m.type == MessageType::kCommit ||
                           m.type == MessageType::kSnapshot;
  ready_.send(std::move(m), role_ == Role::kLeader && replication);
}

// ---------------------------------------------------------------------------------------------
// Client inputs.

ProposeResult MultiPaxos::propose(std::string data) {
  if (role_ == Role::kLeader) {
    if (transferee_ != kNoNode) return {Status::kTransferring};
    if (conf_index_ > log_.committed()) return {Status::kConfChangePending};
    if (log_.last_index() - log_.committed() >= cfg_.max_open_slots) return {Status::kNotReady};
    const Index index = append_as_leader(EntryType::kNormal, std::move(data));
    return {Status::kOk, index, promised_};
  }
  if (leader_ == kNoNode) return {Status::kNoLeader};
  if (!cfg_.forward_proposals) return {Status::kNotLeader};
  Message m = make(MessageType::kForwardPropose, leader_);
  m.term = Term(0);
  m.entries.push_back(Entry{Term(0), Index(0), EntryType::kNormal, std::move(data)});
  send(std::move(m));
  return {Status::kForwarded};
}

ProposeResult MultiPaxos::propose_conf_change(const ConfChange& change) {
  if (role_ != Role::kLeader) return {leader_ == kNoNode ? Status::kNoLeader : Status::kNotLeader};
  if (transferee_ != kNoNode) return {Status::kTransferring};
  if (!settled()) return {Status::kNotReady};
  if (conf_index_ > log_.committed()) return {Status::kConfChangePending};
  auto next = raft::apply_change(conf_, change);
  if (!next) return {Status::kInvalid};
  if (change.type == raft::ConfChangeType::kAddVoter && conf_.is_learner(change.node)) {
    // A learner votes only once it holds what is chosen.
    const Progress* pr = progress(change.node);
    if (pr == nullptr || pr->match < log_.committed()) return {Status::kLearnerBehind};
  }
  const Index index = append_as_leader(EntryType::kConfChange, raft::encode_conf(*next));
  return {Status::kOk, index, promised_};
}

Status MultiPaxos::transfer_leadership(NodeId target) {
  if (role_ != Role::kLeader) return leader_ == kNoNode ? Status::kNoLeader : Status::kNotLeader;
  if (target == cfg_.id || !conf_.is_voter(target)) return Status::kInvalid;
  if (transferee_ == target) return Status::kOk;
  // Stop proposing, bring the target up to date, then TimeoutNow: it runs phase 1 at once and
  // its Prepares bypass stickiness. Abandoned after an election timeout (tick_heartbeat).
  transferee_ = target;
  election_elapsed_ = 0;
  const Progress& pr = progress_.at(target);
  if (pr.match == log_.last_index()) {
    maybe_send_timeout_now(target);
  } else {
    send_accept(target, true);
  }
  return Status::kOk;
}

// ---------------------------------------------------------------------------------------------
// Linearizable reads: the chosen index, once the leader is settled (it knows every slot chosen
// before its round), confirmed by a majority still taking its round (one round per batch).

Status MultiPaxos::read_index(uint64_t context) {
  if (role_ == Role::kLeader) {
    start_read(context, cfg_.id);
    return Status::kOk;
  }
  if (leader_ == kNoNode) return Status::kNoLeader;
  Message m = make(MessageType::kForwardRead, leader_);
  m.term = Term(0);
  m.context = context;
  send(std::move(m));
  return Status::kForwarded;
}

void MultiPaxos::start_read(uint64_t context, NodeId requester) {
  assert(role_ == Role::kLeader);
  if (!settled()) {
    reads_before_settled_.emplace_back(context, requester);
    return;
  }
  const bool alone = conf_.voters.size() == 1 && conf_.is_voter(cfg_.id);
  if ((cfg_.read_mode == raft::ReadMode::kLease && lease_valid()) || alone) {
    answer_read(context, requester, log_.committed());
    return;
  }
  broadcast_commit(reads_.start(context, requester, log_.committed(), cfg_.id));
}

void MultiPaxos::release_pending_reads() {
  reads_.release(conf_, [this](uint64_t context, NodeId requester, Index index) {
    answer_read(context, requester, index);
  });
}

void MultiPaxos::answer_read(uint64_t context, NodeId requester, Index index) {
  if (requester == cfg_.id) {
    ready_.read_state({context, index});
    return;
  }
  Message m = make(MessageType::kForwardReadResp, requester);
  m.term = Term(0);
  m.context = context;
  m.log_index = index;
  send(std::move(m));
}

bool MultiPaxos::lease_valid() const {
  // Acceptors refuse other proposers for election_ticks after hearing from this leader
  // (in_lease), so no other round can start until then. Counted from the send of the Commit a
  // majority acknowledged and shortened by the drift bound: safe while no clock runs faster
  // than another by more than lease_drift_ticks per election timeout.
  if (lease_revoked_ || transferee_ != kNoNode || !settled()) return false;
  return raft::lease_holds(progress_, cfg_.id, now_ticks_, conf_, cfg_.election_ticks,
                           cfg_.lease_drift_ticks);
}

// ---------------------------------------------------------------------------------------------
// Membership.

const ConfState& MultiPaxos::config_for(Index slot) const {
  auto it = confs_.lower_bound(slot);
  if (it == confs_.begin()) return base_conf_;
  return std::prev(it)->second;
}

void MultiPaxos::on_log_changed(Index from) {
  confs_.erase(confs_.lower_bound(from), confs_.end());
  for (Index i = std::max(from, log_.first_index()); i <= log_.last_index(); ++i) {
    const Entry& e = log_.at(i);
    if (e.type != EntryType::kConfChange) continue;
    if (auto decoded = raft::decode_conf(e.data)) confs_[i] = std::move(*decoded);
  }
  const ConfState& conf = confs_.empty() ? base_conf_ : confs_.rbegin()->second;
  conf_index_ = confs_.empty() ? log_.snapshot().index : confs_.rbegin()->first;
  if (conf != conf_) apply_conf(conf);
}

void MultiPaxos::apply_conf(const ConfState& conf) {
  const ConfState previous = conf_;
  conf_ = conf;
  if (role_ != Role::kLeader) return;
  // The leader replicates to every member of the newest configuration and of the one before it
  // (a slot up to a pending change is still counted in the older one).
  const ConfState& before = config_for(conf_index_);
  for (auto it = progress_.begin(); it != progress_.end();) {
    const bool keep = conf_.contains(it->first) || before.is_voter(it->first);
    it = keep ? std::next(it) : progress_.erase(it);
  }
  auto add = [&](NodeId id, bool learner) {
    if (id == cfg_.id) return;
    auto [it, inserted] = progress_.try_emplace(id);
    // A member added back after it was removed (its progress kept while the configuration
    // before still counted it) may have lost everything since: it is probed afresh.
    if (!inserted && !previous.contains(id) && conf_.contains(id)) {
      it->second = {};
      inserted = true;
    }
    if (inserted) {
      it->second.next = log_.last_index() + 1;
      it->second.recent_active = true;  // one check-quorum round of grace
    }
    it->second.learner = learner;
  };
  for (NodeId id : before.voters) add(id, false);
  for (NodeId id : conf_.voters) add(id, false);
  for (NodeId id : conf_.learners) add(id, true);
  if (transferee_ != kNoNode && !conf_.is_voter(transferee_)) transferee_ = kNoNode;
}

// ---------------------------------------------------------------------------------------------
// Compaction.

std::optional<SnapshotMeta> MultiPaxos::compact(Index index, std::string snapshot_data) {
  if (index <= log_.snapshot().index || index > log_.committed()) return std::nullopt;
  log_.applied_to(index);
  // The snapshot's term is this node's own round at `index`: the slots after it stay.
  SnapshotMeta meta{index, *log_.term(index), config_for(index + 1)};
  log_.compact(meta);
  base_conf_ = meta.conf;
  confs_.erase(confs_.begin(), confs_.upper_bound(index));
  local_snapshot_ = Snapshot{meta, std::move(snapshot_data)};
  return meta;
}

// ---------------------------------------------------------------------------------------------
// Ready / Advance.

bool MultiPaxos::has_ready() const {
  if (ready_.outstanding()) return false;
  return pending_broadcast_ || ready_.pending(log_, hard_state());
}

Ready MultiPaxos::ready() {
  if (pending_broadcast_ && role_ == Role::kLeader) broadcast_accept();
  pending_broadcast_ = false;
  return ready_.take(log_, hard_state());
}

void MultiPaxos::advance() {
  ready_.advance(log_);
  if (role_ == Role::kLeader && maybe_choose()) pending_broadcast_ = true;
  assert_invariants();
}

void MultiPaxos::assert_invariants() const {
  assert(log_.applied() <= log_.committed());
  assert(log_.committed() <= log_.last_index());
  assert(log_.persisted() <= log_.last_index());
  assert(role_ == Role::kLeader || round_match_ >= log_.committed());
  assert(role_ != Role::kLeader || (leader_ == cfg_.id && vote_ == cfg_.id));
  assert(role_ != Role::kCandidate || vote_ == cfg_.id);
}

}  // namespace synod::paxos
