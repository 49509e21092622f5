// The resolver of sharded runs: what a member does for cross-shard transactions whose client
// went away. Every 100 ms, on each group's leader, it looks at the transactions prepared there
// longer than kStaleMs ago (by the start time their prepare carries) and settles each with its
// coordinator group: if a decision stands there, it is carried out here (txn_resolve);
// otherwise abort is decided there first (txn_decide: the first decision stands, so a
// coordinator that was only slow loses nothing but its transaction). Whoever meets a stale
// lock resolves it; no participant waits on a dead client for longer than that.
#pragma once

#include <cstdint>
#include <string>

#include "sim/cluster.h"
#include "sim/world.h"

namespace synod::sim {

class TxnResolver {
 public:
  // Transactions prepared longer ago than this are settled by the resolver.
  static constexpr uint64_t kStaleMs = 1'500;
  // Decision and outcome records older than this are forgotten (txn_forget), looked for every
  // kForgetEverySteps steps: long after any step of theirs could still arrive (a client's
  // retries last under a second; a duplicate of a command applies once).
  static constexpr uint64_t kForgetAfterMs = 4'000;
  static constexpr uint64_t kForgetEverySteps = 10;

  TxnResolver(World& world, Cluster& cluster) : world_(world), cluster_(cluster) {}

  // The first step (sharded runs only).
  void start();
  void handle(const Event& e);
  // No group's leader holds a prepared transaction (and every group has a leader).
  bool idle();
  // What is still held, for a liveness failure.
  std::string describe();

 private:
  World& world_;
  Cluster& cluster_;
  uint64_t seq_ = 0;
  uint64_t steps_ = 0;
};

}  // namespace synod::sim
