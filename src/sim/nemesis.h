// The nemesis: the faults of a run, each bounded in time and healed, and all healed before the
// final phase. Partitions, crashes and pauses of nodes (and pauses of lock-holding clients),
// lossy, duplicating, reordering or slow networks, routed topologies, leadership transfers,
// and a membership cycle (remove a voter, wipe its node, add it back as a new learner, promote
// it). Elections
// draw their own: a crash, or the new leader cut off, right after one. A swarm run draws its
// fault mix, intensities and BUGGIFY sites from its seed.
#pragma once

#include <cstdint>

#include "core/consensus/types.h"
#include "sim/clients.h"
#include "sim/cluster.h"
#include "sim/nodes.h"
#include "sim/rebalancer.h"
#include "sim/watchers.h"
#include "sim/world.h"

namespace synod::sim {

class Nemesis {
 public:
  Nemesis(World& world, Cluster& cluster, Clients& clients, Watchers& watchers,
          Rebalancer& rebalancer)
      : world_(world),
        o_(world.options),
        cluster_(cluster),
        rebalancer_(rebalancer),
        nodes_(cluster.group(0)),
        clients_(clients),
        watchers_(watchers) {}

  // Swarm testing: this seed's own fault mix, nemesis intensities and BUGGIFY sites, drawn from
  // a generator of its own so the rest of the run's randomness is as without the swarm. Runs
  // before anything else draws.
  void draw_swarm();
  // The first fault, once the cluster has had time to elect a leader.
  void start();
  // Takes a nemesis event (fault, heal, membership step, targeted crash or isolation).
  void handle(const Event& e);
  // A node was seen leading a new term: maybe crash someone, or cut the leader off.
  void elected(const Node& leader);
  // The final phase begins: the network heals, crashed nodes restart, paused ones resume.
  void heal_all();
  // The membership cycle is not half done (the run may end).
  bool membership_idle() const { return membership_stage_ == 0; }
  int membership_stage() const { return membership_stage_; }

 private:
  void inject_fault();
  void heal(Fault f);
  void isolate_after_election(int node);
  void targeted_crash(const Event& e);
  void membership_step();

  World& world_;
  const SimOptions& o_;
  Cluster& cluster_;
  Rebalancer& rebalancer_;
  Nodes& nodes_;  // group 0: the one a membership cycle changes
  Clients& clients_;
  Watchers& watchers_;
  // Faults in effect.
  bool partition_active_ = false;
  bool net_fault_active_ = false;
  bool topology_active_ = false;
  int membership_stage_ = 0;        // 0 idle, 1 removing, 2 adding learner, 3 promoting
  raft::NodeId membership_member_;  // the member being cycled
  int membership_tries_ = 0;
};

}  // namespace synod::sim
