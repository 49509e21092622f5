// Rebalancing a sharded run (sim/cluster.h): a `rebalance` fault takes a host off the
// consistent-hash ring, or puts one that was taken off back on, as `synod ctl ring remove|add`
// does; the ring says which groups change replicas (ring::plan_moves), and each move runs as a
// member of a sharded cluster carries it out:
//
//   1. a new, empty replica starts on the gaining host and is added to the group as a learner;
//   2. once it has caught up (the engine refuses to promote a learner behind the commit index,
//      thesis 4.2.1) it is promoted to voter;
//   3. only then is the replica on the losing host removed from the group, and it goes (its
//      state dropped).
//
// The ring and each group's new replicas are written to the metadata group (group 0) as keys
// `/synod/ring` and `/synod/shards/<group>`, through its leader. A few groups move at once, one
// move per group; after the heal every move must finish within the liveness bound.
//
// Checked as it goes (ReplicationKept): a group whose committed configuration has fewer voters
// than the replication factor is flagged, which a move that removes the old replica before the
// new one caught up (the planted bug `remove-before-catch-up`) does.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/ring/ring.h"
#include "sim/cluster.h"
#include "sim/world.h"

namespace synod::sim {

class Rebalancer {
 public:
  Rebalancer(World& world, Cluster& cluster);

  // A rebalance fault: false (nothing done) if a ring change is still being carried out, or
  // none can be made (the ring has no host to spare).
  bool start_change();
  // Takes a rebalancer event (its step, every 50 ms while work remains).
  void handle(const Event& e);
  // Every move finished and every metadata write landed.
  bool idle() const { return active_.empty() && queued_.empty() && meta_pending_.empty(); }
  // Moves queued or under way.
  size_t outstanding() const { return queued_.size() + active_.size(); }
  // The liveness bound grows by this much per move outstanding at the heal.
  static constexpr uint32_t kTicksPerMove = 20;
  // Where the work stands, for a liveness failure.
  std::string describe() const;

 private:
  // One group's move, through its stages.
  struct Active {
    ring::Move move;   // move.shard is the group
    int stage = 0;     // index into the stage order
    int new_slot = 0;  // the gaining host's replica, once started
    int old_slot = 0;  // the losing host's replica (0: none)
    uint64_t started_us = 0;
  };
  enum class Stage : uint8_t { kAddLearner, kPromote, kRemoveOld };

  void schedule_step();
  void step();
  // Advances one move; true once it is done.
  bool advance(Active& a);
  void check_replication();
  void write_meta(const std::string& key, const std::string& value);
  void push_meta();

  World& world_;
  const SimOptions& o_;
  Cluster& cluster_;
  std::set<int> off_ring_;  // hosts taken off the ring
  std::deque<ring::Move> queued_;
  std::map<uint32_t, Active> active_;                // by group
  std::map<std::string, std::string> meta_pending_;  // metadata writes not yet applied
  uint64_t meta_seq_ = 0;
  uint64_t steps_ = 0;
  bool stepping_ = false;
  std::set<uint32_t> flagged_;  // groups already reported under-replicated
};

}  // namespace synod::sim
