#include "sim/duel.h"

#include <algorithm>

namespace synod::sim {

Duel::Duel(bool paxos, uint64_t rounds) : paxos_(paxos), max_rounds_(rounds) {}

bool Duel::leader_traffic(raft::MessageType t) const {
  using raft::MessageType;
  if (t == MessageType::kSnapshot || t == MessageType::kTimeoutNow) return true;
  if (paxos_) return t == MessageType::kAccept || t == MessageType::kCommit;
  return t == MessageType::kAppend || t == MessageType::kHeartbeat;
}

bool Duel::hold(int from, int to, const raft::Message& m) {
  const bool vote_request = !paxos_ && m.type == raft::MessageType::kVote;
  if (!active_ || (!leader_traffic(m.type) && !vote_request)) return false;
  held_.push_back({from, to, m});
  if (from == leader_ && m.term.value == leader_term_) ++held_this_round_;
  if (held_.size() > kMaxHeld) held_.pop_front();  // lost: the model allows it
  return true;
}

std::vector<Duel::Held> Duel::observe(const std::vector<Member>& members, uint64_t now_us,
                                      std::ostream& log) {
  uint64_t committed = 0;
  for (const Member& m : members) committed = std::max(committed, m.committed);
  std::vector<Held> deliver;
  if (!active_) {
    if (first_chosen_after_us_ == 0 && committed > release_committed_) {
      first_chosen_after_us_ = now_us;
      log << "[" << now_us / 1000 << "ms] duel: first value chosen "
          << (now_us - released_at_us_) / 1000 << " ms after the release (slot " << committed
          << ")\n";
    }
    return deliver;
  }
  if (!started_) {
    started_ = true;
    start_committed_ = committed;
  }
  if (committed > start_committed_ + chosen_during_duel_) {
    chosen_during_duel_ = committed - start_committed_;
  }
  if (!paxos_) log_split_votes(members, now_us, log);
  for (size_t i = 1; i < members.size(); ++i) {
    const Member& m = members[i];
    if (!m.up || m.role != raft::Role::kLeader || m.term <= leader_term_) continue;
    ++rounds_;
    log << "[" << now_us / 1000 << "ms] duel round " << rounds_ << ": n" << i
        << (paxos_ ? " won phase 1 of round " : " won the election of term ") << m.term;
    if (leader_ != 0) {
      log << "; n" << leader_ << (paxos_ ? "'s round " : "'s term ") << leader_term_
          << " preempted, its " << held_this_round_
          << (paxos_ ? " Accept/Commit messages held and then refused"
                     : " Append/heartbeat messages held and then refused");
    }
    log << "\n";
    leader_ = static_cast<int>(i);
    leader_term_ = m.term;
    held_this_round_ = 0;
  }
  // A held message goes out once its recipient has moved to a higher round, or (a vote request)
  // has voted for itself in the request's term: it is refused.
  for (auto it = held_.begin(); it != held_.end();) {
    const size_t to = static_cast<size_t>(it->to);
    const uint64_t term = it->msg.term.value;
    const bool refused =
        to < members.size() && members[to].up &&
        (members[to].term > term || (it->msg.type == raft::MessageType::kVote &&
                                     members[to].term == term && members[to].voted_for_self));
    if (refused) {
      deliver.push_back(std::move(*it));
      it = held_.erase(it);
      ++refused_;
    } else {
      ++it;
    }
  }
  return deliver;
}

void Duel::log_split_votes(const std::vector<Member>& members, uint64_t now_us, std::ostream& log) {
  // Candidates seen per term; a term is over once every live member has moved past it. With no
  // leader in it, its vote was split: each candidate held its own vote only.
  uint64_t lowest = UINT64_MAX;
  for (size_t i = 1; i < members.size(); ++i) {
    if (!members[i].up) continue;
    lowest = std::min(lowest, members[i].term);
    if (members[i].voted_for_self) candidates_[members[i].term].insert(static_cast<int>(i));
  }
  while (!candidates_.empty() && candidates_.begin()->first < lowest) {
    const auto& [term, who] = *candidates_.begin();
    if (term != leader_term_) {
      ++rounds_;
      log << "[" << now_us / 1000 << "ms] duel round " << rounds_ << ": term " << term
          << ", candidates";
      for (int n : who) log << " n" << n;
      log << " each voted for itself; their vote requests held until refused, no leader\n";
    }
    candidates_.erase(candidates_.begin());
  }
}

void Duel::release(uint64_t now_us, std::ostream& log) {
  if (!active_) return;
  active_ = false;
  released_at_us_ = now_us;
  release_committed_ = start_committed_ + chosen_during_duel_;
  log << "[" << now_us / 1000 << "ms] duel over after " << rounds_
      << " rounds: " << chosen_during_duel_ << " values chosen, " << refused_
      << " held messages delivered late and refused, " << held_.size()
      << " lost; the network is timely from now on\n";
  held_.clear();
}

}  // namespace synod::sim
