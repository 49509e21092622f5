// The replication groups of a run and the hosts they run on. Unsharded, one group runs on every
// host (slot i on host i). Sharded (SimOptions::shards > 0), every host runs many groups, as a
// multi-Raft member does: group 0 holds the cluster's metadata and group s + 1 holds shard s,
// each on the replicas the consistent-hash ring (core/ring) places it on. Each group is a Nodes:
// its own engines, drivers, stores, invariants and truth, over the one simulated network. What
// happens to a host (a crash, a pause) happens to every replica it runs: hosts share fate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/ring/ring.h"
#include "sim/nodes.h"
#include "sim/truth.h"
#include "sim/world.h"

namespace synod::sim {

class Cluster {
 public:
  // Places the groups (sharded runs by the ring, from the run's seed).
  Cluster(World& world, NodeObserver& observer);

  // Starts every group's founding members.
  void start_all();
  // Takes a node event: the group it names handles it.
  void handle(const Event& e) { group(e.group).handle(e); }

  size_t groups() const { return groups_.size(); }
  Nodes& group(uint32_t g) { return *groups_[g]; }
  const Nodes& group(uint32_t g) const { return *groups_[g]; }
  Truth& truth(uint32_t g) { return *truths_[g]; }
  // The group a key's requests go to: its shard's (sharded), or group 0.
  uint32_t group_of_key(std::string_view key) const;
  // The slots of group `g` whose replicas are still members (not moved away).
  std::vector<int> live_slots(uint32_t g) const { return group(g).live_slots(); }

  // --- Placement (sharded runs) -------------------------------------------------------------
  // The ring of the hosts that hold replicas.
  ring::Ring& ring() { return ring_; }
  // Where the ring puts every group now: group 0 at the ring's point 0, group s + 1 where
  // shard s sits.
  ring::Placement layout() const;
  // Starts a new, empty replica of group `g` on `host` (to be added as a learner): its slot.
  int add_replica(uint32_t g, int host);
  // The replica in slot `slot` of group `g` was removed from the group: it stops for good.
  void retire(uint32_t g, int slot);

  // --- Hosts, 1..options.nodes --------------------------------------------------------------
  int hosts() const { return static_cast<int>(on_host_.size()) - 1; }
  // Crashed or paused.
  bool down(int host) const;
  int down_count() const;
  void crash(int host);
  void restart(int host);
  void pause(int host);
  bool paused(int host) const;
  // A paused host takes what reached it while frozen; with `run`, its replicas go on at once.
  void resume(int host, bool run = true);
  // The leader a fault aims at: the cluster's (unsharded), or a group's drawn with `rng`.
  Node* leader(Rng& rng);

  // When every group had a leader after the heal (0: some group not yet).
  uint64_t leaders_after_heal() const;
  // Replicas of a group that applied the same prefix hold byte-identical stores.
  void check_store_convergence();
  // The engines' invariant violations, every group's.
  std::vector<check::Violation> violations() const;
  // The coordination checks, every group's truth.
  void check_truths();
  std::string describe() const;

 private:
  World& world_;
  ring::Ring ring_;
  std::vector<std::unique_ptr<Truth>> truths_;
  std::vector<std::unique_ptr<Nodes>> groups_;
  // Host h runs slot on_host_[h][k].second of group on_host_[h][k].first.
  std::vector<std::vector<std::pair<uint32_t, int>>> on_host_;
};

}  // namespace synod::sim
