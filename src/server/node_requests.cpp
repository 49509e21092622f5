// The raft thread's request waiters: proposals waiting for a leader and then for their apply,
// membership changes waiting for their configuration, leadership transfers waiting for the new
// leader. Each is in the deadline table from its acceptance until it is answered, under the key
// of what it waits for, which decides its answer if the deadline comes first. (Reads wait in the
// replica driver.)
#include <spdlog/spdlog.h>

#include "base/assert.h"
#include "core/consensus/conf.h"
#include "server/apply_result.h"
#include "server/node.h"

namespace synod::server {

namespace {

// Statuses after which a request waits for the next loop: a leader is being elected or busy.
bool should_retry(raft::Status s) {
  return s == raft::Status::kNoLeader || s == raft::Status::kTransferring ||
         s == raft::Status::kNotReady || s == raft::Status::kConfChangePending;
}

// The answer to a membership change the Raft core refused.
Error conf_change_refused(raft::Status s) {
  if (s == raft::Status::kLearnerBehind) return kv::errors::learner_not_ready();
  if (s == raft::Status::kNotLeader) return kv::errors::not_leader();
  return kv::errors::invalid_membership_change();
}

// Takes the waiter under `id` out of its container. Precondition: it is there.
template <typename Waiting>
typename Waiting::mapped_type take(Waiting& waiting, uint64_t id) {
  auto node = waiting.extract(id);
  SYNOD_ASSERT(!node.empty());
  return std::move(node.mapped());
}

}  // namespace

void Node::accept_proposal(Proposal&& p) {
  const uint64_t committed = raft_->committed_index().value;
  const uint64_t applied = store_->applied_index();
  const bool apply_lags = committed > applied && committed - applied > kMaxApplyLag;
  if (apply_lags || unsent_.size() + waiting_apply_.size() >= kMaxPendingProposals) {
    p.done(failed(kv::errors::too_many_requests()));
    return;
  }
  queue_proposal(std::move(p));
}

void Node::queue_proposal(Proposal&& p) {
  if (p.raw.empty() && !p.forwarded) p.request.set_id(++next_request_id_);
  const uint64_t arrival = ++next_arrival_;
  deadlines_.add(p.deadline, {WaiterKind::kUnsentProposal, arrival});
  unsent_.emplace_hint(unsent_.end(), arrival, std::move(p));
}

void Node::submit_proposals() {
  if (options_.timestamps && !unsent_.empty()) {
    if (raft_->role() != raft::Role::kLeader) {
      forward_proposals();
      return;
    }
    request_stamps();
  }
  while (!unsent_.empty()) {
    auto first = unsent_.begin();
    Proposal& p = first->second;
    if (options_.timestamps) {
      if (p.stamp == 0) return;  // the rest wait, in order, for their stamps
      p.request.set_revision_stamp(p.stamp);
    }
    if (!p.raw.empty()) {
      if (auto done = recent_results_.find(p.request.id()); done != recent_results_.end()) {
        // Executed here before this copy of the client's request arrived.
        forget_deadline({WaiterKind::kUnsentProposal, first->first});
        p.done(done->second);
        unsent_.erase(first);
        continue;
      }
    }
    if (!p.raw.empty() && waiting_apply_.contains(p.request.id())) {
      // A client's retransmission while its request waits: the first call gets the answer.
      forget_deadline({WaiterKind::kUnsentProposal, first->first});
      p.done(failed(kv::errors::too_many_requests()));
      unsent_.erase(first);
      continue;
    }
    if (p.raw.empty() && waiting_apply_.contains(p.request.id())) {
      if (p.forwarded) {
        // Sent to this member twice: the first copy is the one that waits.
        forget_deadline({WaiterKind::kUnsentProposal, first->first});
        unsent_.erase(first);
        continue;
      }
      // A forwarded request took this member's next ID: this one takes another.
      p.request.set_id(++next_request_id_);
      continue;
    }
    raft::ProposeResult r = raft_->propose(p.raw.empty() ? p.request.SerializeAsString() : p.raw);
    if (should_retry(r.status)) return;  // the whole queue waits for a leader, in order
    const WaiterKey unsent{WaiterKind::kUnsentProposal, first->first};
    if (r.status != raft::Status::kOk && r.status != raft::Status::kForwarded) {
      forget_deadline(unsent);
      p.done(failed(kv::errors::no_leader()));
    } else {
      const uint64_t id = p.request.id();
      move_deadline(unsent, {WaiterKind::kProposal, id});
      const bool added = waiting_apply_.emplace(id, std::move(p)).second;
      SYNOD_ASSERT(added);  // checked above
    }
    unsent_.erase(first);
  }
}

void Node::forward_proposals() {
  const raft::NodeId leader = raft_->leader();
  if (leader == raft::kNoNode || leader == options_.id) return;
  std::vector<raft::Message> out;
  while (!unsent_.empty()) {
    auto first = unsent_.begin();
    Proposal& p = first->second;
    const WaiterKey unsent{WaiterKind::kUnsentProposal, first->first};
    const uint64_t id = p.request.id();
    if (waiting_apply_.contains(id)) {
      if (p.forwarded) {  // sent to this member twice: the first copy is the one that waits
        forget_deadline(unsent);
        unsent_.erase(first);
      } else {  // a forwarded request took this member's next ID: this one takes another
        p.request.set_id(++next_request_id_);
      }
      continue;
    }
    p.stamp = 0;  // a stamp is the leader's to give, in its log's order
    p.request.clear_revision_stamp();
    raft::Message m;
    m.type = raft::MessageType::kForwardRequest;
    m.from = options_.id;
    m.to = leader;
    m.payload = p.request.SerializeAsString();
    out.push_back(std::move(m));
    // It waits here for its entry's apply, as a proposal the engine forwarded would.
    move_deadline(unsent, {WaiterKind::kProposal, id});
    waiting_apply_.emplace(id, std::move(p));
    unsent_.erase(first);
  }
  send(std::move(out));
}

void Node::request_stamps() {
  if (stamps_in_flight_ || Clock::now() < stamps_retry_at_) return;
  uint32_t count = 0;
  uint64_t last_arrival = 0;
  for (const auto& [arrival, p] : unsent_) {
    if (p.stamp != 0) continue;
    ++count;
    last_arrival = arrival;
  }
  if (count == 0) return;
  stamps_in_flight_ = true;
  const uint64_t term = raft_->term().value;
  options_.timestamps(count, [this, count, last_arrival, term](std::optional<int64_t> first) {
    post(StampsReady{first, count, last_arrival, term, Clock::now() + stamp_delay_});
  });
}

void Node::stamps_ready(const StampsReady& ready) {
  if (Clock::now() < ready.not_before) {
    delayed_stamps_ = ready;  // on_tick hands them back
    return;
  }
  stamps_in_flight_ = false;
  if (!ready.first) {
    stamps_retry_at_ = Clock::now() + std::chrono::milliseconds(options_.tick_ms);
    return;
  }
  // Stamps asked for in an earlier leadership are never used: this leader's entries follow
  // ones stamped later than they were.
  if (raft_->role() != raft::Role::kLeader || raft_->term().value != ready.term) return;
  int64_t next = *ready.first;
  uint32_t left = ready.count;
  for (auto& [arrival, p] : unsent_) {
    if (arrival > ready.last_arrival || left == 0) break;
    if (p.stamp != 0) continue;
    p.stamp = next++;
    --left;
  }
}

void Node::accept_forwarded(const raft::Message& m) {
  synodpb::Request request;
  if (!options_.timestamps || !request.ParseFromString(m.payload) || request.id() == 0) return;
  request.clear_revision_stamp();
  Proposal p{std::move(request), [](const kv::ApplyResult&) {},
             Clock::now() + options_.request_timeout};
  p.forwarded = true;
  accept_proposal(std::move(p));
}

void Node::answer_applied(uint64_t request_id, kv::ApplyResult&& result,
                          std::vector<std::pair<ApplyDone, kv::ApplyResult>>& replies) {
  auto it = waiting_apply_.find(request_id);
  if (it == waiting_apply_.end()) {  // proposed elsewhere, or answered already
    if (options_.engine == replica::EngineKind::kPbft && !result.skipped) {
      constexpr size_t kRecentResults = 4096;
      if (recent_results_.insert_or_assign(request_id, std::move(result)).second) {
        recent_order_.push_back(request_id);
      }
      if (recent_order_.size() > kRecentResults) {
        recent_results_.erase(recent_order_.front());
        recent_order_.pop_front();
      }
    }
    return;
  }
  forget_deadline({WaiterKind::kProposal, request_id});
  replies.emplace_back(std::move(it->second.done), std::move(result));
  waiting_apply_.erase(it);
}

void Node::accept_conf_change(ConfRequest&& c) {
  const uint64_t arrival = ++next_arrival_;
  deadlines_.add(c.deadline, {WaiterKind::kUnsentConf, arrival});
  unsent_conf_.emplace_hint(unsent_conf_.end(), arrival, std::move(c));
}

void Node::submit_conf_changes() {
  while (!unsent_conf_.empty()) {
    auto first = unsent_conf_.begin();
    ConfRequest& c = first->second;
    std::optional<raft::ConfState> expected = raft::apply_change(raft_->conf(), c.change);
    if (!expected) {
      forget_deadline({WaiterKind::kUnsentConf, first->first});
      c.done(kv::errors::member_not_found());
      unsent_conf_.erase(first);
      continue;
    }
    raft::ProposeResult r = raft_->propose_conf_change(c.change);
    if (should_retry(r.status)) return;
    const WaiterKey unsent{WaiterKind::kUnsentConf, first->first};
    if (r.status != raft::Status::kOk) {
      forget_deadline(unsent);
      c.done(conf_change_refused(r.status));
    } else {
      move_deadline(unsent, {WaiterKind::kConf, first->first});
      conf_waiting_.emplace(first->first, std::make_pair(std::move(c), std::move(*expected)));
    }
    unsent_conf_.erase(first);
  }
}

void Node::conf_applied(const raft::ConfState& conf) {
  for (auto it = conf_waiting_.begin(); it != conf_waiting_.end();) {
    auto& [c, expected] = it->second;
    if (conf != expected) {
      ++it;
      continue;
    }
    forget_deadline({WaiterKind::kConf, it->first});
    c.done(std::nullopt);
    it = conf_waiting_.erase(it);
  }
}

void Node::start_transfer(TransferRequest&& t) {
  const raft::Status s = raft_->transfer_leadership(t.target);
  if (s == raft::Status::kOk) {
    const uint64_t arrival = ++next_arrival_;
    deadlines_.add(t.deadline, {WaiterKind::kTransfer, arrival});
    transfers_.emplace_hint(transfers_.end(), arrival, std::move(t));
  } else if (s == raft::Status::kInvalid) {
    t.done(kv::errors::bad_leader_transferee());
  } else {
    t.done(kv::errors::not_leader());
  }
}

void Node::check_transfers() {
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    TransferRequest& t = it->second;
    std::optional<Error> answer;
    if (raft_->leader() == t.target) {
      answer = std::nullopt;
    } else if (raft_->role() != raft::Role::kLeader && raft_->leader() != raft::kNoNode) {
      answer = kv::errors::leadership_transfer_failed();
    } else {
      ++it;
      continue;
    }
    forget_deadline({WaiterKind::kTransfer, it->first});
    t.done(std::move(answer));
    it = transfers_.erase(it);
  }
}

// A waiter answered before its deadline leaves the table.
void Node::forget_deadline(WaiterKey key) {
  const bool registered = deadlines_.cancel(key);
  SYNOD_ASSERT(registered);
}

// A waiter now waiting for something else keeps its deadline, under its new key.
void Node::move_deadline(WaiterKey from, WaiterKey to) {
  const bool registered = deadlines_.rekey(from, to);
  SYNOD_ASSERT(registered);
}

// The waiters whose deadline has passed, earliest first, each answered as its kind decides; the
// others are not looked at.
void Node::expire(Clock::time_point now) {
  for (const WaiterKey& key : deadlines_.pop_expired(now)) {
    switch (key.kind) {
      case WaiterKind::kUnsentProposal:
        metrics_.proposals_failed.add();
        take(unsent_, key.id).done(failed(kv::errors::no_leader()));
        break;
      case WaiterKind::kProposal:
        metrics_.proposals_failed.add();
        take(waiting_apply_, key.id).done(failed(kv::errors::timed_out()));
        break;
      case WaiterKind::kUnsentConf:
        take(unsent_conf_, key.id).done(kv::errors::no_leader());
        break;
      case WaiterKind::kConf:
        take(conf_waiting_, key.id).first.done(kv::errors::timed_out());
        break;
      case WaiterKind::kTransfer:
        take(transfers_, key.id).done(kv::errors::leadership_transfer_timed_out());
        break;
    }
  }
}

// The member is going away: everyone still waiting learns it.
void Node::fail_all_waiting() {
  for (auto& [id, p] : waiting_apply_) p.done(failed(kv::errors::timed_out()));
  waiting_apply_.clear();
  for (auto& [arrival, p] : unsent_) p.done(failed(kv::errors::timed_out()));
  unsent_.clear();
  for (auto& [arrival, c] : unsent_conf_) c.done(kv::errors::timed_out());
  unsent_conf_.clear();
  for (auto& [arrival, waiting] : conf_waiting_) waiting.first.done(kv::errors::timed_out());
  conf_waiting_.clear();
  for (auto& [arrival, t] : transfers_) t.done(kv::errors::timed_out());
  transfers_.clear();
  deadlines_.clear();
  driver_->abandon_reads();
}

}  // namespace synod::server
