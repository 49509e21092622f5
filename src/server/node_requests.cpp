// The raft thread's request waiters: proposals waiting for a leader and then for their apply,
// membership changes waiting for their configuration, leadership transfers waiting for the new
// leader; each with its deadline. (Reads wait in the replica driver.)
#include <spdlog/spdlog.h>

#include "core/raft/conf.h"
#include "server/apply_result.h"
#include "server/node.h"

namespace synod::server {

namespace {

// Statuses after which a request waits for the next loop: a leader is being elected or busy.
bool should_retry(raft::Status s) {
  return s == raft::Status::kNoLeader || s == raft::Status::kTransferring ||
         s == raft::Status::kNotReady || s == raft::Status::kConfChangePending;
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
  p.request.set_id(++next_request_id_);
  unsent_.push_back(std::move(p));
}

void Node::submit_proposals() {
  while (!unsent_.empty()) {
    Proposal& p = unsent_.front();
    raft::ProposeResult r = raft_->propose(p.request.SerializeAsString());
    if (should_retry(r.status)) return;  // the whole queue waits for a leader, in order
    if (r.status != raft::Status::kOk && r.status != raft::Status::kForwarded) {
      p.done(failed(kv::errors::no_leader()));
    } else {
      const uint64_t id = p.request.id();
      waiting_apply_.emplace(id, std::move(p));
    }
    unsent_.pop_front();
  }
}

void Node::answer_applied(uint64_t request_id, kv::ApplyResult&& result,
                          std::vector<std::pair<ApplyDone, kv::ApplyResult>>& replies) {
  auto it = waiting_apply_.find(request_id);
  if (it == waiting_apply_.end()) return;
  replies.emplace_back(std::move(it->second.done), std::move(result));
  waiting_apply_.erase(it);
}

void Node::submit_conf_changes() {
  while (!unsent_conf_.empty()) {
    ConfRequest& c = unsent_conf_.front();
    std::optional<raft::ConfState> expected = raft::apply_change(raft_->conf(), c.change);
    if (!expected) {
      c.done(kv::errors::member_not_found());
      unsent_conf_.pop_front();
      continue;
    }
    raft::ProposeResult r = raft_->propose_conf_change(c.change);
    if (should_retry(r.status)) return;
    if (r.status == raft::Status::kLearnerBehind) {
      c.done(kv::errors::learner_not_ready());
    } else if (r.status == raft::Status::kNotLeader) {
      c.done(kv::errors::not_leader());
    } else if (r.status != raft::Status::kOk) {
      c.done(kv::errors::invalid_membership_change());
    } else {
      conf_waiting_.emplace_back(std::move(c), *expected);
    }
    unsent_conf_.pop_front();
  }
}

void Node::conf_applied(const raft::ConfState& conf) {
  std::vector<std::pair<ConfRequest, raft::ConfState>> still;
  for (auto& [c, expected] : conf_waiting_) {
    if (conf == expected) {
      c.done(std::nullopt);
    } else {
      still.emplace_back(std::move(c), std::move(expected));
    }
  }
  conf_waiting_.swap(still);
}

void Node::start_transfer(TransferRequest&& t) {
  const raft::Status s = raft_->transfer_leadership(t.target);
  if (s == raft::Status::kOk) {
    transfers_.push_back(std::move(t));
  } else if (s == raft::Status::kInvalid) {
    t.done(kv::errors::bad_leader_transferee());
  } else {
    t.done(kv::errors::not_leader());
  }
}

void Node::check_transfers() {
  if (transfers_.empty()) return;
  std::vector<TransferRequest> still;
  for (TransferRequest& t : transfers_) {
    if (raft_->leader() == t.target) {
      t.done(std::nullopt);
    } else if (raft_->role() != raft::Role::kLeader && raft_->leader() != raft::kNoNode) {
      t.done(kv::errors::leadership_transfer_failed());
    } else {
      still.push_back(std::move(t));
    }
  }
  transfers_.swap(still);
}

// Every waiter's deadline, in one pass per tick: what each kind answers when its time is up.
void Node::expire(Clock::time_point now) {
  for (auto it = waiting_apply_.begin(); it != waiting_apply_.end();) {
    if (it->second.deadline <= now) {
      it->second.done(failed(kv::errors::timed_out()));
      it = waiting_apply_.erase(it);
    } else {
      ++it;
    }
  }
  while (!unsent_.empty() && unsent_.front().deadline <= now) {
    unsent_.front().done(failed(kv::errors::no_leader()));
    unsent_.pop_front();
  }
  std::erase_if(conf_waiting_, [&](auto& waiting) {
    if (waiting.first.deadline > now) return false;
    waiting.first.done(kv::errors::timed_out());
    return true;
  });
  while (!unsent_conf_.empty() && unsent_conf_.front().deadline <= now) {
    unsent_conf_.front().done(kv::errors::no_leader());
    unsent_conf_.pop_front();
  }
  std::erase_if(transfers_, [&](TransferRequest& t) {
    if (t.deadline > now) return false;
    t.done(kv::errors::leadership_transfer_timed_out());
    return true;
  });
}

// The member is going away: everyone still waiting learns it.
void Node::fail_all_waiting() {
  for (auto& [id, p] : waiting_apply_) p.done(failed(kv::errors::timed_out()));
  waiting_apply_.clear();
  for (Proposal& p : unsent_) p.done(failed(kv::errors::timed_out()));
  unsent_.clear();
  for (ConfRequest& c : unsent_conf_) c.done(kv::errors::timed_out());
  unsent_conf_.clear();
  for (auto& [c, conf] : conf_waiting_) c.done(kv::errors::timed_out());
  conf_waiting_.clear();
  for (TransferRequest& t : transfers_) t.done(kv::errors::timed_out());
  transfers_.clear();
  driver_->abandon_reads();
}

}  // namespace synod::server
