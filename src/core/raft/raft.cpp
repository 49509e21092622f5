#include "core/raft/raft.h"

#include "core/consensus/replication.h"

#include <algorithm>
#include <cassert>

namespace synod::raft {

const char* to_string(Status s) {
  switch (s) {
    case Status::kOk:
      return "ok";
    case Status::kForwarded:
      return "forwarded";
    case Status::kNoLeader:
      return "no leader";
    case Status::kNotLeader:
      return "not leader";
    case Status::kTransferring:
      return "leadership transfer in progress";
    case Status::kConfChangePending:
      return "a membership change is pending";
    case Status::kNotReady:
      return "leader has not committed an entry in its term";
    case Status::kLearnerBehind:
      return "learner has not caught up";
    case Status::kInvalid:
      return "invalid request";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Construction and restart.

Raft::Raft(const Config& config, const Persisted& persisted)
    : cfg_(config), rng_(config.seed ^ (config.id.value * 0x9e3779b97f4a7c15ULL)) {
  assert(cfg_.id != kNoNode);
  assert(cfg_.election_ticks > cfg_.heartbeat_ticks && cfg_.heartbeat_ticks > 0);
  assert(cfg_.read_mode != ReadMode::kLease || cfg_.check_quorum);
  assert(cfg_.lease_drift_ticks < cfg_.election_ticks);
  SnapshotMeta meta;
  if (persisted.snapshot) {
    meta = persisted.snapshot->meta;
    local_snapshot_ = persisted.snapshot;
    base_conf_ = meta.conf;
  } else {
    base_conf_ = cfg_.initial_conf;
  }
  log_ = Log(meta, persisted.entries, persisted.hard_state.commit,
                 std::max(cfg_.applied, meta.index));
  term_ = persisted.hard_state.term;
  vote_ = persisted.hard_state.vote;
  conf_ = base_conf_;
  conf_index_ = meta.index;
  on_log_changed(log_.first_index());
  ready_ = ReadyTracker(hard_state());
  reset_randomized_timeout();
}

const Progress* Raft::progress(NodeId peer) const {
  auto it = progress_.find(peer);
  return it == progress_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------------------------------------
// Role transitions (thesis 3.3, figure 3.3).

void Raft::reset(Term term) {
  if (term != term_) {
    assert(term > term_);
    term_ = term;
    vote_ = kNoNode;
    lease_revoked_ = false;
  }
  leader_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_timeout();
  votes_.clear();
  progress_.clear();
  transferee_ = kNoNode;
  pending_broadcast_ = false;
  // Reads in flight lose their confirmation round; their clients time out and retry.
  reads_.clear();
  reads_before_commit_.clear();
}

void Raft::reset_randomized_timeout() {
  // thesis 3.4: randomized election timeouts make split votes rare.
  randomized_timeout_ =
      cfg_.election_ticks + static_cast<uint32_t>(rng_.uniform(cfg_.election_ticks));
}

void Raft::become_follower(Term term, NodeId leader) {
  reset(term);
  role_ = Role::kFollower;
  leader_ = leader;
}

void Raft::become_pre_candidate() {
  assert(role_ != Role::kLeader);
  // thesis 9.6: a pre-candidate changes neither its term nor its vote.
  role_ = Role::kPreCandidate;
  votes_.clear();
  leader_ = kNoNode;
}

void Raft::become_candidate() {
  assert(role_ != Role::kLeader);
  reset(term_ + 1);
  vote_ = cfg_.id;  // thesis 3.4: a candidate votes for itself
  role_ = Role::kCandidate;
}

void Raft::become_leader() {
  assert(role_ == Role::kCandidate);
  role_ = Role::kLeader;
  leader_ = cfg_.id;
  progress_.clear();
  apply_conf(conf_);  // creates progress for every member
  // thesis 6.4 / 3.6.2: a no-op entry of the new term lets the leader commit (and so learn the
  // commit status of) entries from previous terms.
  append_as_leader(EntryType::kNormal, {});
}

void Raft::campaign(bool pre_vote, bool transfer) {
  assert(promotable());
  Term vote_term;
  MessageType type;
  if (pre_vote) {
    become_pre_candidate();
    vote_term = term_ + 1;
    type = MessageType::kPreVote;
  } else {
    become_candidate();
    vote_term = term_;
    type = MessageType::kVote;
  }
  votes_[cfg_.id] = true;
  if (votes_.size() >= quorum()) {  // a single voter wins at once
    if (pre_vote) {
      campaign(false, transfer);
    } else {
      become_leader();
    }
    return;
  }
  for (NodeId voter : conf_.voters) {
    if (voter == cfg_.id) continue;
    Message m = make(type, voter);
    m.term = vote_term;
    m.log_index = log_.last_index();
    m.log_term = log_.last_term();
    m.transfer = transfer;
    send(std::move(m));
  }
}

void Raft::poll(const Message& m) {
  votes_.emplace(m.from, !m.reject);
  size_t granted = 0;
  size_t rejected = 0;
  for (NodeId voter : conf_.voters) {
    auto it = votes_.find(voter);
    if (it == votes_.end()) continue;
    (it->second ? granted : rejected)++;
  }
  if (granted >= quorum()) {
    if (role_ == Role::kPreCandidate) {
      campaign(false, m.transfer);
    } else {
      become_leader();
    }
  } else if (rejected >= quorum()) {
    become_follower(term_, kNoNode);
  }
}

// ---------------------------------------------------------------------------------------------
// Ticks.

void Raft::tick() {
  ++now_ticks_;
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  ++election_elapsed_;
  if (!promotable() || election_elapsed_ < randomized_timeout_) return;
  election_elapsed_ = 0;
  reset_randomized_timeout();
  campaign(cfg_.pre_vote, false);
}

void Raft::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_ticks) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) check_quorum_or_step_down();
    if (role_ != Role::kLeader) return;
    transferee_ = kNoNode;  // thesis 3.10: abort a transfer that did not finish in time
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat(reads_.round());
  }
}

void Raft::check_quorum_or_step_down() {
  // thesis 6.2: a leader that has not heard from a quorum in an election timeout steps down,
  // so clients stop waiting on a leader that cannot commit.
  size_t active = conf_.is_voter(cfg_.id) ? 1 : 0;
  for (auto& [id, pr] : progress_) {
    if (pr.recent_active && conf_.is_voter(id)) ++active;
    pr.recent_active = false;
  }
  if (active < quorum()) become_follower(term_, kNoNode);
}

// ---------------------------------------------------------------------------------------------
// Step: term rules common to every role (thesis 3.3, figure 3.1 "Rules for Servers").

void Raft::step(const Message& m) {
  if (m.to != cfg_.id || m.from == cfg_.id || m.from == kNoNode) return;
  switch (m.type) {
    case MessageType::kForwardPropose:
      if (role_ == Role::kLeader && transferee_ == kNoNode) {
        for (const Entry& e : m.entries) {
          if (e.type == EntryType::kNormal && !e.data.empty()) {
            append_as_leader(EntryType::kNormal, e.data);
          }
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
  if (!step_term(m)) return;
  if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
    handle_vote_request(m);
    return;
  }
  switch (role_) {
    case Role::kLeader:
      step_leader(m);
      break;
    case Role::kCandidate:
    case Role::kPreCandidate:
      step_candidate(m);
      break;
    case Role::kFollower:
      step_follower(m);
      break;
  }
}

bool Raft::in_lease() const {
  // thesis 4.2.3: a server that heard from a current leader within the minimum election
  // timeout ignores vote requests, so removed or partitioned servers cannot disrupt it.
  return cfg_.check_quorum && leader_ != kNoNode && election_elapsed_ < cfg_.election_ticks;
}

// Returns false if the message is to be dropped after the term rules.
bool Raft::step_term(const Message& m) {
  const bool vote_request = m.type == MessageType::kPreVote || m.type == MessageType::kVote;
  if (m.term > term_) {
    if (vote_request && !m.transfer && in_lease()) {
      return false;
    }
    if (m.type == MessageType::kPreVote) return true;  // thesis 9.6: no term change
    if (m.type == MessageType::kPreVoteResp && !m.reject) return true;
    const bool from_leader = m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
                             m.type == MessageType::kSnapshot;
    become_follower(m.term, from_leader ? m.from : kNoNode);
    return true;
  }
  if (m.term < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A stale leader learns our term and steps down; without this, a partitioned node whose
      // pre-votes keep failing could never rejoin a cluster that moved on.
      send(make(MessageType::kAppendResp, m.from));
    } else if (m.type == MessageType::kPreVote) {
      Message r = make(MessageType::kPreVoteResp, m.from);
      r.reject = true;
      send(std::move(r));
    }
    return false;
  }
  return true;
}

void Raft::handle_vote_request(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  // thesis 3.4: at most one vote per term, first come first served.
  const bool can_vote =
      vote_ == m.from || (vote_ == kNoNode && leader_ == kNoNode) || (pre && m.term > term_);
  // thesis 3.6.1 election restriction: the candidate's log must be at least as up-to-date.
  const bool up_to_date =
      cfg_.bugs.vote_without_log_check || log_.is_up_to_date(m.log_index, m.log_term);
  Message r = make(pre ? MessageType::kPreVoteResp : MessageType::kVoteResp, m.from);
  r.transfer = m.transfer;
  if (can_vote && up_to_date) {
    r.term = m.term;  // a pre-vote answer carries the term the candidate would use
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;  // durable before r leaves: r goes out with the next Ready's messages
    }
    if (!pre && cfg_.bugs.vote_before_persist) {
      ready_.send(std::move(r), true);
      return;
    }
  } else {
    r.reject = true;
  }
  send(std::move(r));
}

void Raft::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      // thesis 3.4: a candidate that hears from a leader of its term returns to follower.
      become_follower(term_, m.from);
      step_follower(m);
      return;
    case MessageType::kPreVoteResp:
      if (role_ == Role::kPreCandidate) poll(m);
      return;
    case MessageType::kVoteResp:
      if (role_ == Role::kCandidate) poll(m);
      return;
    default:
      return;
  }
}

void Raft::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_append(m);
      return;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_heartbeat(m);
      return;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_snapshot_chunk(m);
      return;
    case MessageType::kTimeoutNow:
      // thesis 3.10: start an election at once, skipping pre-vote; voters honor `transfer`.
      if (promotable()) campaign(false, true);
      return;
    default:
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Follower side of replication.

void Raft::handle_append(const Message& m) {
  Message r = make(MessageType::kAppendResp, m.from);
  if (m.log_index < log_.committed()) {
    r.log_index = log_.committed();
    send(std::move(r));
    return;
  }
  auto last = log_.maybe_append(m.log_index, m.log_term, m.entries);
  if (last) {
    on_log_changed(m.log_index + 1);
    // thesis figure 3.1: commitIndex = min(leaderCommit, index of last new entry).
    log_.commit_to(std::min(m.commit, *last));
    r.log_index = *last;
  } else {
    // thesis 5.3 (end): return a hint so the leader skips a whole term of mismatches at once.
    r.reject = true;
    r.log_index = m.log_index;
    r.reject_hint =
        log_.find_conflict_by_term(std::min(m.log_index, log_.last_index()), m.log_term);
    r.reject_hint_term = log_.term(r.reject_hint).value_or(Term(0));
  }
  send(std::move(r));
}

void Raft::handle_heartbeat(const Message& m) {
  // The leader never sends a commit index beyond what it knows we hold (send_heartbeat).
  log_.commit_to(std::min(m.commit, log_.last_index()));
  Message r = make(MessageType::kHeartbeatResp, m.from);
  r.context = m.context;
  r.sent_tick = m.sent_tick;
  send(std::move(r));
}

void Raft::handle_snapshot_chunk(const Message& m) {
  const SnapshotMeta& meta = m.snapshot_meta;
  if (meta.index <= log_.committed() || log_.match_term(meta.index, meta.term)) {
    // We already hold everything the snapshot covers (thesis 5.3, figure 5.3 step 6).
    incoming_snapshot_.reset();
    if (meta.index > log_.committed()) log_.commit_to(meta.index);
    Message r = make(MessageType::kAppendResp, m.from);
    r.log_index = std::max(log_.committed(), std::min(meta.index, log_.last_index()));
    send(std::move(r));
    return;
  }
  Message r = make(MessageType::kSnapshotResp, m.from);
  std::optional<Snapshot> snapshot = receive_snapshot_chunk(incoming_snapshot_, m, r);
  if (!snapshot) {
    send(std::move(r));
    return;
  }
  install_snapshot(std::move(*snapshot));
  Message done = make(MessageType::kAppendResp, m.from);
  done.log_index = meta.index;
  send(std::move(done));
}

void Raft::install_snapshot(Snapshot snapshot) {
  log_.restore(snapshot.meta);
  base_conf_ = snapshot.meta.conf;
  conf_index_ = snapshot.meta.index;
  conf_ = base_conf_;
  on_log_changed(log_.first_index());
  local_snapshot_ = snapshot;
  ready_.persist_snapshot(std::move(snapshot));
}

// ---------------------------------------------------------------------------------------------
// Leader side of replication.

Message Raft::make(MessageType type, NodeId to) const {
  Message m;
  m.type = type;
  m.from = cfg_.id;
  m.to = to;
  m.term = term_;
  return m;
}

void Raft::send(Message m) {
  // thesis 10.2.1: a leader may send its Appends (and heartbeats and snapshot chunks) before its
  // own disk write finishes, so the followers' fsyncs overlap the leader's. They promise no
  // state of the leader's: it counts itself toward a quorum only for what it has made durable
  // (maybe_commit uses log_.persisted()). Everything else (votes, answers to a leader, a
  // candidate's requests) promises durable state and waits for the Ready's persistence.
  const bool replication = m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
                           m.type == MessageType::kSnapshot;
  ready_.send(std::move(m), role_ == Role::kLeader && replication);
}

void Raft::step_leader(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendResp:
      handle_append_resp(m);
      return;
    case MessageType::kHeartbeatResp:
      handle_heartbeat_resp(m);
      return;
    case MessageType::kSnapshotResp:
      handle_snapshot_resp(m);
      return;
    default:
      return;
  }
}

Index Raft::append_as_leader(EntryType type, std::string data) {
  assert(role_ == Role::kLeader);
  Entry e{term_, log_.last_index() + 1, type, std::move(data)};
  const Index index = e.index;
  log_.append({std::move(e)});
  on_log_changed(index);
  pending_broadcast_ = true;
  return index;
}

void Raft::broadcast_append() {
  for (auto& [id, pr] : progress_) send_append(id, true);
}

void Raft::broadcast_heartbeat(uint64_t context) {
  for (auto& [id, pr] : progress_) send_heartbeat(id, context);
}

void Raft::send_heartbeat(NodeId to, uint64_t context) {
  const Progress& pr = progress_.at(to);
  Message m = make(MessageType::kHeartbeat, to);
  // Never tell a follower to commit past what it is known to hold (it may hold a different
  // suffix that must still be truncated).
  m.commit = std::min(pr.match, log_.committed());
  m.context = context;
  m.sent_tick = now_ticks_;
  send(std::move(m));
}

bool Raft::send_append(NodeId to, bool allow_empty) {
  Progress& pr = progress_.at(to);
  if (pr.state == ProgressState::kSnapshot) {
    if (!pr.snapshot_chunk_outstanding) send_snapshot_chunk(to);
    return false;
  }
  if (!pr.can_send(cfg_.max_inflight_msgs, cfg_.max_inflight_bytes)) return false;
  pr.next = std::min(pr.next, log_.last_index() + 1);
  const Index prev = pr.next - 1;
  const auto prev_term = log_.term(prev);
  if (!prev_term) {
    // thesis 5.3: the entries the follower needs were compacted; send the snapshot instead.
    assert(local_snapshot_.has_value());
    pr.become_snapshot(local_snapshot_->meta.index);
    send_snapshot_chunk(to);
    return true;
  }
  std::vector<Entry> entries;
  if (pr.next <= log_.last_index()) {
    entries = log_.slice(pr.next, log_.last_index(), cfg_.max_msg_bytes);
  }
  if (entries.empty() && !allow_empty) return false;
  Message m = make(MessageType::kAppend, to);
  m.log_index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  m.entries = std::move(entries);
  pr.sent(m.entries.empty() ? Index(0) : m.entries.back().index, m.byte_size());
  send(std::move(m));
  return true;
}

void Raft::send_snapshot_chunk(NodeId to) {
  assert(local_snapshot_.has_value());
  Message m = make(MessageType::kSnapshot, to);
  next_snapshot_chunk(progress_.at(to), *local_snapshot_, cfg_.snapshot_chunk_bytes, m);
  send(std::move(m));
}

void Raft::handle_append_resp(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject) {
    handle_append_reject(pr, m);
    return;
  }
  if (!pr.acknowledged(m.log_index)) return;
  if (maybe_commit()) {
    broadcast_append();
  } else {
    // Bounded: each send either fills the window or exhausts the log.
    while (send_append(m.from, false)) {
    }
  }
  if (m.from == transferee_) maybe_send_timeout_now(m.from);
}

void Raft::handle_append_reject(Progress& pr, const Message& m) {
  const Index rejected = m.log_index;
  if (pr.state == ProgressState::kReplicate) {
    if (rejected <= pr.match) return;  // stale
    pr.become_probe();
  } else if (pr.state == ProgressState::kProbe) {
    // Stale: it answers an older probe, or denies what the follower acknowledged holding (a
    // correct follower never loses an entry it acknowledged; resending would only loop).
    if (pr.next - 1 != rejected || rejected <= pr.match) return;
    // thesis 5.3: jump back past the follower's whole conflicting term.
    Index probe = m.reject_hint;
    if (m.reject_hint_term > Term(0))
      probe = log_.find_conflict_by_term(m.reject_hint, m.reject_hint_term);
    pr.next = std::max(std::min(rejected, probe + 1), pr.match + 1);
    pr.probe_sent = false;
  } else {
    return;
  }
  send_append(m.from, true);
}

void Raft::handle_heartbeat_resp(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.heartbeat_answered(m.sent_tick, cfg_.max_inflight_msgs, cfg_.max_inflight_bytes);
  // A follower behind us gets an Append even if it carries no entries: if every Append that
  // had entries was lost, its answer is what exposes the gap (a reject and a probe).
  if (pr.match < log_.last_index() || pr.state == ProgressState::kSnapshot) {
    send_append(m.from, true);
  }
  if (m.context == 0) return;
  reads_.answered(m.from, m.context);
  release_pending_reads();
}

void Raft::handle_snapshot_resp(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  if (it->second.snapshot_chunk_answered(m.snapshot_meta.index, m.snapshot_offset)) {
    send_snapshot_chunk(m.from);
  }
}

bool Raft::maybe_commit() {
  std::vector<std::pair<NodeId, Index>> matches;
  // The leader counts its own log only once it is durable (thesis 10.2.1).
  matches.emplace_back(cfg_.id, log_.persisted());
  for (const auto& [id, pr] : progress_) matches.emplace_back(id, pr.match);
  const Index n = quorum_index(matches, conf_);
  if (n <= log_.committed()) return false;
  // thesis 3.6.2: only entries of the current term are committed by counting replicas;
  // earlier ones are committed indirectly (Log Matching).
  if (log_.term(n) != term_ && !cfg_.bugs.commit_previous_term_by_count) return false;
  log_.commit_to(n);
  on_commit_advanced();
  return true;
}

void Raft::on_commit_advanced() {
  if (committed_in_current_term() && !reads_before_commit_.empty()) {
    auto waiting = std::move(reads_before_commit_);
    reads_before_commit_.clear();
    for (const auto& [context, requester] : waiting) start_read(context, requester);
  }
  // thesis 4.2.2: a leader removed from the configuration steps down once the change commits.
  if (!conf_.is_voter(cfg_.id) && log_.committed() >= conf_index_) {
    become_follower(term_, kNoNode);
  }
}

void Raft::maybe_send_timeout_now(NodeId to) {
  const Progress* pr = progress(to);
  if (pr == nullptr || pr->match != log_.last_index()) return;
  lease_revoked_ = true;  // the transferee may win before our lease would run out
  send(make(MessageType::kTimeoutNow, to));
}

// ---------------------------------------------------------------------------------------------
// Client inputs.

ProposeResult Raft::propose(std::string data) {
  if (role_ == Role::kLeader) {
    if (transferee_ != kNoNode) return {Status::kTransferring};
    const Index index = append_as_leader(EntryType::kNormal, std::move(data));
    return {Status::kOk, index, term_};
  }
  if (leader_ == kNoNode) return {Status::kNoLeader};
  if (!cfg_.forward_proposals) return {Status::kNotLeader};
  Message m = make(MessageType::kForwardPropose, leader_);
  m.term = Term(0);
  m.entries.push_back(Entry{Term(0), Index(0), EntryType::kNormal, std::move(data)});
  send(std::move(m));
  return {Status::kForwarded};
}

ProposeResult Raft::propose_conf_change(const ConfChange& change) {
  if (role_ != Role::kLeader) return {leader_ == kNoNode ? Status::kNoLeader : Status::kNotLeader};
  if (transferee_ != kNoNode) return {Status::kTransferring};
  if (!committed_in_current_term()) return {Status::kNotReady};
  if (conf_index_ > log_.committed()) return {Status::kConfChangePending};
  auto next = apply_change(conf_, change);
  if (!next) return {Status::kInvalid};
  if (change.type == ConfChangeType::kAddVoter && conf_.is_learner(change.node)) {
    // thesis 4.2.1: a new server joins as a learner and votes only once it has caught up.
    const Progress* pr = progress(change.node);
    if (pr == nullptr || pr->match < log_.committed()) return {Status::kLearnerBehind};
  }
  const Index index = append_as_leader(EntryType::kConfChange, encode_conf(*next));
  return {Status::kOk, index, term_};
}

Status Raft::transfer_leadership(NodeId target) {
  if (role_ != Role::kLeader) return leader_ == kNoNode ? Status::kNoLeader : Status::kNotLeader;
  if (target == cfg_.id || !conf_.is_voter(target)) return Status::kInvalid;
  if (transferee_ == target) return Status::kOk;
  // thesis 3.10: stop accepting proposals, bring the target up to date, then TimeoutNow. The
  // transfer is abandoned after an election timeout (tick_heartbeat).
  transferee_ = target;
  election_elapsed_ = 0;
  const Progress& pr = progress_.at(target);
  if (pr.match == log_.last_index()) {
    maybe_send_timeout_now(target);
  } else {
    send_append(target, true);
  }
  return Status::kOk;
}

// ---------------------------------------------------------------------------------------------
// Linearizable reads (thesis 6.4).

Status Raft::read_index(uint64_t context) {
  if (role_ == Role::kLeader) {
    start_read(context, cfg_.id);
    return Status::kOk;
  }
  if (leader_ == kNoNode) return Status::kNoLeader;
  // thesis 6.4.1: a follower asks the leader for the read index, then serves locally.
  Message m = make(MessageType::kForwardRead, leader_);
  m.term = Term(0);
  m.context = context;
  send(std::move(m));
  return Status::kForwarded;
}

bool Raft::committed_in_current_term() const {
  return log_.term(log_.committed()) == term_;
}

void Raft::start_read(uint64_t context, NodeId requester) {
  assert(role_ == Role::kLeader);
  if (cfg_.bugs.read_index_without_quorum) {
    answer_read(context, requester, log_.committed());
    return;
  }
  // thesis 6.4 step 1: the commit index is only known to be current once the leader has
  // committed an entry of its own term.
  if (!committed_in_current_term()) {
    reads_before_commit_.emplace_back(context, requester);
    return;
  }
  if ((cfg_.read_mode == ReadMode::kLease && lease_valid()) ||
      (quorum() == 1 && conf_.is_voter(cfg_.id))) {
    answer_read(context, requester, log_.committed());
    return;
  }
  // thesis 6.4 step 3: confirm leadership with a round of heartbeats.
  broadcast_heartbeat(reads_.start(context, requester, log_.committed(), cfg_.id));
}

void Raft::release_pending_reads() {
  // Reads are confirmed in order: an ack for round s also confirms every earlier round.
  reads_.release(conf_, [this](uint64_t context, NodeId requester, Index index) {
    answer_read(context, requester, index);
  });
}

void Raft::answer_read(uint64_t context, NodeId requester, Index index) {
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

bool Raft::lease_valid() const {
  // thesis 6.4.1: followers do not vote for election_ticks after hearing from us (in_lease), so
  // no other leader can exist until then. Counting from the *send* of the heartbeat a quorum
  // acknowledged, and shortening by the drift bound, keeps this safe if clocks drift by less
  // than lease_drift_ticks per election timeout.
  if (lease_revoked_ || transferee_ != kNoNode || !committed_in_current_term()) return false;
  return lease_holds(progress_, cfg_.id, now_ticks_, conf_, cfg_.election_ticks,
                     cfg_.lease_drift_ticks);
}

// ---------------------------------------------------------------------------------------------
// Membership (thesis 4.1: a server uses the latest configuration in its log).

void Raft::on_log_changed(Index from) {
  Index scan_from = from;
  ConfState conf = conf_;
  Index conf_index = conf_index_;
  if (conf_index_ >= from) {
    // The entry that defined our configuration was truncated: fall back to the one before.
    conf = base_conf_;
    conf_index = log_.snapshot().index;
    scan_from = log_.first_index();
  }
  for (Index i = std::max(scan_from, log_.first_index()); i <= log_.last_index(); ++i) {
    const Entry& e = log_.at(i);
    if (e.type != EntryType::kConfChange) continue;
    if (auto decoded = decode_conf(e.data)) {
      conf = std::move(*decoded);
      conf_index = i;
    }
  }
  conf_index_ = conf_index;
  if (conf != conf_) apply_conf(conf);
}

ConfState Raft::conf_at(Index index) const {
  for (Index i = index; i >= log_.first_index() && i > Index(0); i = i - 1) {
    const Entry& e = log_.at(i);
    if (e.type != EntryType::kConfChange) continue;
    if (auto decoded = decode_conf(e.data)) return *decoded;
  }
  return base_conf_;
}

void Raft::apply_conf(const ConfState& conf) {
  conf_ = conf;
  if (role_ != Role::kLeader) return;
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = conf_.contains(it->first) ? std::next(it) : progress_.erase(it);
  }
  auto add = [&](NodeId id, bool learner) {
    if (id == cfg_.id) return;
    auto [it, inserted] = progress_.try_emplace(id);
    if (inserted) {
      it->second.next = log_.last_index() + 1;
      it->second.recent_active = true;  // give a new member one check-quorum round
    }
    it->second.learner = learner;
  };
  for (NodeId id : conf_.voters) add(id, false);
  for (NodeId id : conf_.learners) add(id, true);
  if (transferee_ != kNoNode && !conf_.is_voter(transferee_)) transferee_ = kNoNode;
}

// ---------------------------------------------------------------------------------------------
// Compaction.

std::optional<SnapshotMeta> Raft::compact(Index index, std::string snapshot_data) {
  // The driver compacts only what it applied; it may do so before advance() records it.
  if (index <= log_.snapshot().index || index > log_.committed()) return std::nullopt;
  log_.applied_to(index);
  SnapshotMeta meta{index, *log_.term(index), conf_at(index)};
  log_.compact(meta);
  base_conf_ = meta.conf;
  local_snapshot_ = Snapshot{meta, std::move(snapshot_data)};
  return meta;
}

// ---------------------------------------------------------------------------------------------
// Ready / Advance.

bool Raft::has_ready() const {
  if (ready_.outstanding()) return false;
  return pending_broadcast_ || ready_.pending(log_, hard_state());
}

Ready Raft::ready() {
  if (pending_broadcast_ && role_ == Role::kLeader) broadcast_append();
  pending_broadcast_ = false;
  return ready_.take(log_, hard_state());
}

void Raft::advance() {
  ready_.advance(log_);
  if (role_ == Role::kLeader && maybe_commit()) pending_broadcast_ = true;
  assert_invariants();
}

void Raft::assert_invariants() const {
  assert(log_.applied() <= log_.committed());
  assert(log_.committed() <= log_.last_index());
  assert(log_.persisted() <= log_.last_index());
  assert(role_ != Role::kLeader || leader_ == cfg_.id);
  assert(role_ != Role::kCandidate || vote_ == cfg_.id);
}

}  // namespace synod::raft
