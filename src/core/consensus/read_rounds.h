// The leader's side of linearizable reads that every engine shares (thesis 6.4; a quorum round
// per batch): a read takes the commit (chosen) index when it arrives, and is answered once a
// majority has answered a heartbeat round sent at or after it, so the leader knows it was still
// the leader when the read arrived. One round serves every read asked before it went out;
// reads are answered in order. Lease reads (thesis 6.4.1) skip the round while the lease holds.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>

#include "core/consensus/progress.h"
#include "core/consensus/replication.h"
#include "core/consensus/types.h"

namespace synod::raft {

class ReadRounds {
 public:
  // A read for `requester`, at `index`, confirmed by `self` already; returns the round to send
  // (the heartbeats' context).
  uint64_t start(uint64_t context, NodeId requester, Index index, NodeId self) {
    ++round_;
    pending_.push_back({context, requester, index, round_, {self}});
    return round_;
  }
  // `from` answered the heartbeat of round `round` (0: none): it confirms every read up to it.
  void answered(NodeId from, uint64_t round) {
    if (round == 0) return;
    for (Pending& read : pending_) {
      if (read.round <= round) read.acks.insert(from);
    }
  }
  // Hands the reads a majority of `conf` has confirmed, in order, to answer(context, requester,
  // index), and forgets them.
  template <typename Answer>
  void release(const ConfState& conf, Answer&& answer) {
    while (!pending_.empty()) {
      const Pending& front = pending_.front();
      size_t acks = 0;
      for (NodeId id : front.acks) acks += conf.is_voter(id) ? 1 : 0;
      if (acks < quorum_size(conf)) return;
      answer(front.context, front.requester, front.index);
      pending_.pop_front();
    }
  }
  // Leadership changed: the reads in flight lose their round; their clients time out and retry.
  void clear() { pending_.clear(); }
  // The newest round (sent with every heartbeat, so a lost one is made up by the next).
  uint64_t round() const { return round_; }

 private:
  struct Pending {
    uint64_t context;
    NodeId requester;  // the leader itself or a follower that forwarded the read
    Index index;
    uint64_t round;
    std::set<NodeId> acks;
  };
  std::deque<Pending> pending_;
  uint64_t round_ = 0;
};

// Whether a leader's lease holds at local tick `now` (thesis 6.4.1): followers refuse other
// candidates for `election_ticks` after hearing from the leader, so no other leader can exist
// until then. Counted from the send of the heartbeat a majority of `conf` acknowledged (each
// follower's `last_ack_sent_tick`), shortened by `drift_ticks`: safe while no clock runs faster
// than another by more than that per election timeout.
inline bool lease_holds(const std::map<NodeId, Progress>& progress, NodeId self, uint64_t now,
                        const ConfState& conf, uint32_t election_ticks, uint32_t drift_ticks) {
  std::vector<std::pair<NodeId, Index>> acks;
  acks.emplace_back(self, Index(now));
  for (const auto& [id, pr] : progress) acks.emplace_back(id, Index(pr.last_ack_sent_tick));
  const uint64_t since = quorum_index(acks, conf).value;
  return since != 0 && now - since < election_ticks - drift_ticks;
}

}  // namespace synod::raft
