// The Byzantine replicas of a PBFT run (--faults byzantine, --byzantine F). Each faulty replica
// runs the honest engine, so it follows the protocol closely enough to be believed, and
// everything it sends passes through this adversary, which lies with the replica's own keys
// (so its lies authenticate) and forges what it has no key for (so the receivers' checks must
// catch it). The behaviours, each faulty replica drawing its own from the seed:
//
//   equivocate    as primary, a different batch to some backups (the "victims") than to the
//                 others, and commits and prepares to match each side
//   forge         messages claiming to come from honest replicas (votes for the other side of
//                 an equivocation), whose MACs it cannot make
//   alter         its own messages with bytes changed after the MAC
//   wrong-replies wrong results to clients
//   silent        as primary, sends nothing at all
//   slow          everything it sends is delayed by up to 200 ms
//   replay        old messages sent again, long after
//   lie           view changes reporting a fabricated request prepared in the latest view
//   bad-state     a state asked for a snapshot served with a write that never happened
//
// The faulty replicas collude: one plan (the victims, the fabricated request) serves them all.
// Not thread-safe; deterministic given the world's generator.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/pbft/crypto.h"
#include "core/pbft/messages.h"
#include "sim/world.h"

namespace synod::sim {

enum class Behaviour : uint8_t {
  kEquivocate,
  kForge,
  kAlter,
  kWrongReplies,
  kSilent,
  kSlow,
  kReplay,
  kLie,
  kBadState,
  kReissue,
};
const char* to_string(Behaviour b);

class Adversary {
 public:
  // `faulty`: the Byzantine slots (member ID = slot); `nodes`: the cluster's size.
  Adversary(World& world, const std::set<int>& faulty, int nodes);

  // A message one faulty replica is sending becomes what it really sends: nothing, itself, or
  // others (each with the sender the envelope names and an extra delay).
  struct Out {
    raft::Message msg;
    uint64_t delay_us = 0;
  };
  std::vector<Out> outgoing(int from, bool is_primary, const raft::Message& m);
  // A faulty replica's answer to a client, as it sends it.
  void reply(int from, KvResult& result);
  // A faulty replica's state (a KvMachine image) served for a snapshot, as it sends it.
  void state(int from, std::string& image);
  // One line per faulty replica: what it does (for the run's log).
  std::string describe() const;

 private:
  struct Replica {
    std::set<Behaviour> behaviours;
    std::unique_ptr<pbft::Keyring> keys;
    std::deque<raft::Message> sent;  // recent messages, for replays
  };
  bool has(int from, Behaviour b) const;
  raft::Message reseal(int from, const pbft::Msg& m, raft::NodeId to) const;
  void equivocate(int from, pbft::Msg& pp, std::vector<Out>& out, const raft::Message& m);
  void match_votes(int from, pbft::Msg& vote, std::vector<Out>& out, const raft::Message& m);
  void forge_votes(int from, const pbft::Msg& vote, raft::NodeId victim, std::vector<Out>& out);
  void lie(int from, pbft::Msg& vc);
  void count(Behaviour b);

  World& world_;
  int nodes_;
  std::map<int, Replica> replicas_;
  std::set<int> victims_;  // backups that get the other side of every equivocation
  pbft::Digest fabricated_{};
  // (view, first) of an equivocated run -> the victims' run digest and length.
  std::map<std::pair<uint64_t, uint64_t>, std::pair<pbft::Digest, uint32_t>> other_side_;
  std::vector<pbft::AuthenticatedRequest> seen_;  // requests it has ordered, to swap in
  // (view, first sequence number) -> the old request a reissuing primary added to that run, or
  // nothing: every backup gets the same run.
  std::map<std::pair<uint64_t, uint64_t>, std::optional<pbft::AuthenticatedRequest>> reissued_;
  void reissue(int from, pbft::Msg& pp);
  bool reissued_now_ = false;
};

}  // namespace synod::sim
