// The FLP adversary (`synod sim --adversary duel`): a scheduler that knows the protocol and
// orders messages so that no value is ever chosen, while every message is eventually delivered
// or lost as an asynchronous network may do (Fischer, Lynch and Paterson, JACM 1985: no
// deterministic protocol decides in every run of an asynchronous system with one crash; here
// no process even crashes, and the randomized timeouts cannot help while the adversary sees
// them fire).
//
// Multi-Paxos: whoever wins phase 1 of a round has its leader traffic (Accepts, Commits,
// snapshots, TimeoutNow) held back. Its acceptors hear nothing, their election timers fire, and
// a rival wins a higher round. Only then are the held messages delivered, to acceptors that
// have promised the higher round, which refuse them: the two proposers of Lamport's "Paxos Made
// Simple" 2.4, preempting each other round after round.
//
// Raft: candidates keep splitting the vote. A vote request is held until its recipient has
// itself become a candidate of that term (so has voted for itself) or moved past it, and only
// then delivered, to be refused; every candidate gets its own vote and no other, term after
// term. (Should a leader be elected all the same, its Appends and heartbeats are held as a
// Multi-Paxos leader's are.)
// The engines' safety invariants run at every step throughout. After `duel_rounds` rounds the
// adversary stops (the global stabilization time of partial synchrony, Dwork, Lynch and
// Stockmeyer 1988): messages flow again and a value must be chosen within the liveness bound.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <ostream>
#include <set>
#include <vector>

#include "core/consensus/types.h"

namespace synod::sim {

class Duel {
 public:
  // What the adversary sees of one member after a step (slots are 1-based; index 0 unused).
  struct Member {
    bool up = false;
    bool voted_for_self = false;  // Raft: a candidate of `term` (it voted for itself)
    raft::Role role = raft::Role::kFollower;
    uint64_t term = 0;  // Raft's term, Multi-Paxos's promised round
    uint64_t committed = 0;
  };
  struct Held {
    int from = 0;
    int to = 0;
    raft::Message msg;
  };

  Duel(bool paxos, uint64_t rounds);

  bool active() const { return active_; }
  // The duel has played its rounds: time to release.
  bool done() const { return rounds_ >= max_rounds_; }
  uint64_t rounds() const { return rounds_; }
  // A message about to enter the network: true if the adversary keeps it.
  bool hold(int from, int to, const raft::Message& m);
  // After every step: notes a new round's winner (one log line per round), and returns the held
  // messages that can now be delivered because their recipient has moved to a higher round.
  std::vector<Held> observe(const std::vector<Member>& members, uint64_t now_us, std::ostream& log);
  // The adversary stops; what it still holds is lost.
  void release(uint64_t now_us, std::ostream& log);

  // What the run reports.
  uint64_t chosen_during_duel() const { return chosen_during_duel_; }
  uint64_t refused() const { return refused_; }
  uint64_t released_at_us() const { return released_at_us_; }
  // When the first value was chosen after the release (0: not yet).
  uint64_t first_chosen_after_us() const { return first_chosen_after_us_; }

 private:
  static constexpr size_t kMaxHeld = 100'000;

  bool leader_traffic(raft::MessageType t) const;
  void log_split_votes(const std::vector<Member>& members, uint64_t now_us, std::ostream& log);

  bool paxos_;
  uint64_t max_rounds_;
  bool active_ = true;
  bool started_ = false;
  uint64_t start_committed_ = 0;    // the highest chosen index when the duel began
  uint64_t release_committed_ = 0;  // and when it ended
  uint64_t rounds_ = 0;
  uint64_t leader_term_ = 0;  // the round of the newest winner
  int leader_ = 0;
  uint64_t chosen_during_duel_ = 0;
  uint64_t refused_ = 0;
  uint64_t released_at_us_ = 0;
  uint64_t first_chosen_after_us_ = 0;
  std::deque<Held> held_;
  uint64_t held_this_round_ = 0;                  // messages of the newest winner held so far
  std::map<uint64_t, std::set<int>> candidates_;  // Raft: the candidates seen in each open term
};

}  // namespace synod::sim
