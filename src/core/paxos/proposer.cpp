// The proposer: pre-prepare, phase 1 for every open slot, and as the distinguished proposer
// phase 2, pipelined and batched, with the chosen index broadcast (PMS 3; "Paxos Made Live",
// cited PML, 2-3).

#include <algorithm>
#include <cassert>

#include "core/consensus/replication.h"
#include "core/paxos/multi_paxos.h"

namespace synod::paxos {

namespace {

bool majority_of(const std::set<NodeId>& ids, const ConfState& conf) {
  size_t n = 0;
  for (NodeId v : conf.voters) n += ids.contains(v) ? 1 : 0;
  return n >= raft::quorum_size(conf);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Election.

void MultiPaxos::campaign(bool pre_prepare, bool transfer) {
  assert(promotable());
  transfer_campaign_ = transfer;
  const Index chosen = log_.committed();
  if (pre_prepare) {
    // A trial that changes no round: an isolated member cannot drive rounds up and disturb a
    // leader when it comes back.
    role_ = Role::kPreCandidate;
    leader_ = kNoNode;
    pre_votes_.clear();
    pre_votes_[cfg_.id] = true;
    std::set<NodeId> asked;
    for (const ConfState& governing : {conf_, config_for(chosen + 1)}) {
      for (NodeId v : governing.voters) {
        if (v == cfg_.id || !asked.insert(v).second) continue;
        Message m = make(MessageType::kPreVote, v);
        m.term = promised_ + 1;
        m.commit = chosen;
        m.transfer = transfer;
        send(std::move(m));
      }
    }
    Message self;
    self.from = cfg_.id;
    poll_pre_prepare(self);
    return;
  }
  // Phase 1a at a round above every round this acceptor has seen or promised; the promise to
  // itself is durable before any Prepare leaves (they go with the Ready's messages).
  reset(promised_ + 1);
  vote_ = cfg_.id;
  role_ = Role::kCandidate;
  phase1_from_ = chosen;
  promises_[cfg_.id] = Promise{chosen, log_.slice(chosen + 1, log_.last_index(), UINT64_MAX)};
  poll_phase1();
}

void MultiPaxos::poll_pre_prepare(const Message& m) {
  pre_votes_.emplace(m.from, !m.reject);
  std::set<NodeId> granted;
  std::set<NodeId> refused;
  for (const auto& [id, ok] : pre_votes_) (ok ? granted : refused).insert(id);
  const ConfState governing = config_for(log_.committed() + 1);
  if (majority_of(granted, governing) && majority_of(granted, conf_)) {
    campaign(false, transfer_campaign_);
  } else if (majority_of(refused, governing) || majority_of(refused, conf_)) {
    become_follower(promised_, kNoNode);
  }
}

void MultiPaxos::handle_promise(const Message& m) {
  if (m.term != promised_) return;  // an answer for another round
  if (m.reject) {
    refusals_.insert(m.from);
    poll_phase1();
    return;
  }
  if (m.log_index != phase1_from_) return;
  for (size_t k = 0; k < m.entries.size(); ++k) {
    if (m.entries[k].index != phase1_from_ + (k + 1)) return;  // malformed: no holes
  }
  const Index last = m.entries.empty() ? phase1_from_ : m.entries.back().index;
  promises_[m.from] = Promise{std::min(m.commit, last), m.entries};
  poll_phase1();
}

void MultiPaxos::poll_phase1() {
  // P2c (PMS 2.2): for every open slot, the value a promise knows chosen, else the value
  // accepted at the highest round. Every acceptor's log is contiguous, so the promised runs
  // cover (phase1_from_, max_last] without holes: no slot needs a no-op to fill it.
  const Index c = phase1_from_;
  Index max_last = c;
  Index known_chosen = c;
  for (const auto& [id, p] : promises_) {
    if (!p.entries.empty()) max_last = std::max(max_last, p.entries.back().index);
    known_chosen = std::max(known_chosen, p.chosen);
  }
  std::vector<Entry> adopted(max_last - c);
  std::vector<bool> known(max_last - c, false);
  for (const auto& [id, p] : promises_) {
    for (const Entry& e : p.entries) {
      const size_t k = e.index - c - 1;
      if (known[k]) continue;
      if (e.index <= p.chosen) {
        adopted[k] = e;
        known[k] = true;
      } else if (adopted[k].index == Index(0) || e.term > adopted[k].term) {
        adopted[k] = e;
      }
    }
  }
  // The configurations that may govern an open slot: the one after our chosen prefix, and
  // each that an adopted value would bring in. A majority of every one must have promised.
  std::vector<ConfState> governing{config_for(c + 1)};
  for (const Entry& e : adopted) {
    if (e.type != EntryType::kConfChange) continue;
    if (auto conf = raft::decode_conf(e.data)) governing.push_back(std::move(*conf));
  }
  std::set<NodeId> promised;
  for (const auto& [id, p] : promises_) promised.insert(id);
  bool won = true;
  for (const ConfState& conf : governing) {
    const auto refused = std::count_if(conf.voters.begin(), conf.voters.end(),
                                       [&](NodeId v) { return refusals_.contains(v); });
    if (static_cast<size_t>(refused) + raft::quorum_size(conf) > conf.voters.size()) {
      become_follower(promised_, kNoNode);  // refused: back off and try a later round
      return;
    }
    won = won && majority_of(promised, conf);
  }
  if (!won) {
    for (const ConfState& conf : governing) {
      for (NodeId v : conf.voters) {
        if (v == cfg_.id || !prepared_.insert(v).second) continue;
        Message m = make(MessageType::kPrepare, v);
        m.commit = c;
        m.transfer = transfer_campaign_;
        send(std::move(m));
      }
    }
    return;
  }
  if (cfg_.bugs.ignore_promised_values) {
    for (size_t k = 0; k < adopted.size(); ++k) {
      if (known[k]) continue;
      const Index slot = c + (k + 1);
      adopted[k] = slot <= log_.last_index() ? log_.at(slot) : Entry{Term(0), slot, {}, {}};
    }
  }
  become_leader(adopted, known_chosen);
}

void MultiPaxos::become_leader(const std::vector<Entry>& adopted, Index known_chosen) {
  assert(role_ == Role::kCandidate);
  role_ = Role::kLeader;
  leader_ = cfg_.id;
  // Propose every open slot again at our round; a value chosen at an earlier round is chosen
  // again by counting at ours (every re-proposal is a new ballot, so no no-op is needed).
  std::vector<Entry> entries;
  entries.reserve(adopted.size());
  for (const Entry& e : adopted) entries.push_back(Entry{promised_, e.index, e.type, e.data});
  if (auto first = log_.overwrite(entries)) on_log_changed(*first);
  phase1_end_ = std::max(phase1_from_, log_.last_index());
  log_.commit_to(std::min(known_chosen, log_.last_index()));
  progress_.clear();
  apply_conf(conf_);
  for (const auto& [id, p] : promises_) {
    auto it = progress_.find(id);
    if (it == progress_.end()) continue;
    // Its promise reset its accepted run to its chosen index, which holds chosen values.
    it->second.match = p.chosen;
    it->second.become_replicate();
  }
  promises_.clear();
  refusals_.clear();
  prepared_.clear();
  pending_broadcast_ = true;
  on_chosen_advanced();
}

void MultiPaxos::handle_nack_as_leader(const Message& m) {
  // Planted bug: take the next round and keep proposing without phase 1.
  promised_ = m.term + 1;
  vote_ = cfg_.id;
  std::vector<Entry> open;
  for (Index i = log_.committed() + 1; i <= log_.last_index(); ++i) {
    Entry e = log_.at(i);
    e.term = promised_;
    open.push_back(std::move(e));
  }
  if (auto first = log_.overwrite(open)) on_log_changed(*first);
  progress_.clear();
  apply_conf(conf_);
  pending_broadcast_ = true;
}

// ---------------------------------------------------------------------------------------------
// Phase 2.

Index MultiPaxos::append_as_leader(EntryType type, std::string data) {
  assert(role_ == Role::kLeader);
  Entry e{promised_, log_.last_index() + 1, type, std::move(data)};
  const Index index = e.index;
  log_.append({std::move(e)});
  on_log_changed(index);
  pending_broadcast_ = true;
  return index;
}

void MultiPaxos::broadcast_accept() {
  for (auto& [id, pr] : progress_) send_accept(id, true);
}

bool MultiPaxos::send_accept(NodeId to, bool allow_empty) {
  Progress& pr = progress_.at(to);
  if (pr.state == ProgressState::kSnapshot) {
    if (!pr.snapshot_chunk_outstanding) send_snapshot_chunk(to);
    return false;
  }
  if (!pr.can_send(cfg_.max_inflight_msgs, cfg_.max_inflight_bytes)) return false;
  pr.next = std::min(pr.next, log_.last_index() + 1);
  if (pr.next <= log_.snapshot().index) {
    // The slots it lacks are compacted: it catches up from the snapshot instead.
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
  Message m = make(MessageType::kAccept, to);
  m.log_index = pr.next - 1;
  m.commit = log_.committed();
  m.entries = std::move(entries);
  pr.sent(m.entries.empty() ? Index(0) : m.entries.back().index, m.byte_size());
  send(std::move(m));
  return true;
}

void MultiPaxos::send_snapshot_chunk(NodeId to) {
  assert(local_snapshot_.has_value());
  Message m = make(MessageType::kSnapshot, to);
  raft::next_snapshot_chunk(progress_.at(to), *local_snapshot_, cfg_.snapshot_chunk_bytes, m);
  send(std::move(m));
}

void MultiPaxos::broadcast_commit(uint64_t context) {
  for (auto& [id, pr] : progress_) {
    Message m = make(MessageType::kCommit, id);
    // Never past what it is known to hold at our round: below that it may hold other values.
    m.commit = std::min(pr.match, log_.committed());
    m.context = context;
    m.sent_tick = now_ticks_;
    send(std::move(m));
  }
}

void MultiPaxos::handle_accepted(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject) {
    if (pr.state == ProgressState::kSnapshot) return;
    if (m.reject_hint < pr.match) {
      rewind(m.from, m.reject_hint);
      return;
    }
    // The hint is the run it holds at our round: an acknowledgement in itself.
    const bool advanced = pr.maybe_update(m.reject_hint);
    const bool stale = m.log_index <= pr.match ||
                       (pr.state == ProgressState::kProbe && pr.next - 1 != m.log_index);
    if (!stale) {
      pr.become_probe();
      send_accept(m.from, true);
    }
    if (advanced && maybe_choose()) broadcast_accept();
    return;
  }
  // An answer to a probe ends probing even if it acknowledges nothing new (a new leader's
  // first, empty Accept to an acceptor that holds nothing open).
  if (!pr.acknowledged(m.log_index, /*probe_answer_ends_probe=*/true)) return;
  if (maybe_choose()) {
    broadcast_accept();
  } else {
    while (send_accept(m.from, false)) {
    }
  }
  if (m.from == transferee_) maybe_send_timeout_now(m.from);
}

void MultiPaxos::rewind(NodeId to, Index run) {
  // The acceptor's run at our round ends before what we counted for it: it restarted, and
  // counts only the slots at its promised round past the chosen index it made durable (the
  // chosen index is a hint written without fsync). Chosen slots it holds from earlier rounds
  // past that index are not counted until sent again, and nothing else would send them (no
  // write need come). Counting less only delays choosing; count from where it stands.
  Progress& pr = progress_.at(to);
  pr.match = run;
  pr.become_probe();
  send_accept(to, true);
}

void MultiPaxos::handle_commit_resp(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.heartbeat_answered(m.sent_tick, cfg_.max_inflight_msgs, cfg_.max_inflight_bytes);
  if (m.log_index < pr.match && pr.state != ProgressState::kSnapshot) {
    rewind(m.from, m.log_index);
  } else if (pr.match < log_.last_index() || pr.state == ProgressState::kSnapshot) {
    send_accept(m.from, true);
  }
  if (m.context == 0) return;
  reads_.answered(m.from, m.context);
  release_pending_reads();
}

void MultiPaxos::handle_snapshot_resp(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  if (it->second.snapshot_chunk_answered(m.snapshot_meta.index, m.snapshot_offset)) {
    send_snapshot_chunk(m.from);
  }
}

bool MultiPaxos::maybe_choose() {
  // Every slot past the chosen index in our log is at our round: a slot is chosen once a
  // majority of the configuration governing it accepted it (the leader counts itself for what
  // is durable). A configuration entry governs the slots after it, so count segment by segment.
  std::vector<std::pair<NodeId, Index>> positions;
  positions.emplace_back(cfg_.id, log_.persisted());
  for (const auto& [id, pr] : progress_) positions.emplace_back(id, pr.match);
  Index chosen = log_.committed();
  while (chosen < log_.last_index()) {
    auto change = confs_.lower_bound(chosen + 1);
    const Index segment_end = change == confs_.end() ? log_.last_index() : change->first;
    const Index n = std::min(raft::quorum_index(positions, config_for(chosen + 1)), segment_end);
    if (n <= chosen) break;
    chosen = n;
    if (n < segment_end) break;
  }
  if (chosen <= log_.committed()) return false;
  log_.commit_to(chosen);
  on_chosen_advanced();
  return true;
}

void MultiPaxos::on_chosen_advanced() {
  if (settled() && !reads_before_settled_.empty()) {
    auto waiting = std::move(reads_before_settled_);
    reads_before_settled_.clear();
    for (const auto& [context, requester] : waiting) start_read(context, requester);
  }
  // A leader removed from the configuration steps down once its removal is chosen.
  if (role_ == Role::kLeader && !conf_.is_voter(cfg_.id) && log_.committed() >= conf_index_) {
    become_follower(promised_, kNoNode);
  }
}

void MultiPaxos::maybe_send_timeout_now(NodeId to) {
  const Progress* pr = progress(to);
  if (pr == nullptr || pr->match != log_.last_index()) return;
  lease_revoked_ = true;  // the transferee may win before our lease would run out
  send(make(MessageType::kTimeoutNow, to));
}

}  // namespace synod::paxos
