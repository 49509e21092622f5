// Moving shards between members as members come and go (a sharded cluster's rebalancing).
//
// The shard map lives in the metadata group (group 0), one key per data group,
// `/synod/shards/<g>` -> "voters=<id>,<id>,... learners=<id>,..." (ids in hex). The founding
// members' leader writes the first map, the ring's placement over the founders. Every member
// reads the map from its replica of group 0 and follows it (Shards::set_replicas): it opens a
// group it is named in and drops one it no longer is.
//
// The member leading group 0 moves the replicas. The target placement is the consistent-hash
// ring over group 0's voters (core/ring), so adding a member moves only the shards whose replica
// set the ring changes, each by one replica (the new member in, one old member out); removing
// one moves only the shards it replicated. A move of one group, a step at a time, each step a
// membership change in that group (made by its leader, here or through a member replicating it,
// peer RPC GroupConfChange) and then a write of the map:
//
//   1. the map names the gaining member as a learner (so it opens an empty replica), and the
//      group adds it as a learner; its leader sends it the group's state;
//   2. the learner is promoted to voter once it has caught up (the Raft core refuses before:
//      thesis 4.2.1), and the map names it a voter;
//   3. only then is the losing member removed from the group, and from the map (it drops its
//      replica).
//
// Each step is idempotent: a new leader of group 0 takes the map as it finds it and goes on.
// A leader asked to remove itself first hands leadership to another voter (then the new leader
// removes it), so clients meet a leadership transfer, not an election, unless a member is down.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/ring/ring.h"
#include "kv/errors.h"

namespace synod::kv {
class Store;
}

namespace synod::raft {
struct ConfChange;
}

namespace synod::server {

struct ServerContext;
class Node;

// One group's replicas in the shard map.
struct GroupReplicas {
  std::vector<uint64_t> voters;
  std::vector<uint64_t> learners;
  bool operator==(const GroupReplicas&) const = default;
};

std::string shard_map_key(uint32_t group);
std::string encode_group_replicas(const GroupReplicas& r);
std::optional<GroupReplicas> decode_group_replicas(std::string_view text);
// The shard map as `store` (group 0's) holds it, by group.
std::map<uint32_t, GroupReplicas> read_shard_map(const kv::Store& store);
// Where the ring puts `shards` shards of `replication` replicas over `members`.
ring::Placement target_placement(const std::vector<uint64_t>& members, uint32_t shards,
                                 uint32_t replication);

// Makes `change` in `group` through its leader (this member's replica or another member's).
// A change already in effect (a learner added again, a member removed again) succeeds.
std::optional<kv::Error> group_conf_change(ServerContext& ctx, uint32_t group,
                                           const raft::ConfChange& change);
// The same on a replica hosted here: succeeds, fails, or answers not_leader.
std::optional<kv::Error> local_group_conf_change(Node& node, const raft::ConfChange& change);

class ShardMover {
 public:
  ShardMover(ServerContext& ctx, std::chrono::milliseconds interval);
  ~ShardMover();
  ShardMover(const ShardMover&) = delete;
  ShardMover& operator=(const ShardMover&) = delete;

 private:
  void run();
  // Follows the map: this member's groups as it names them.
  void follow(const std::map<uint32_t, GroupReplicas>& map);
  // On group 0's leader: writes the first map, or takes one step of up to kMovesAtOnce moves.
  void move(const std::map<uint32_t, GroupReplicas>& map);
  // One step of group `g`'s move from `now` towards `target`; false if nothing was done.
  bool step(uint32_t g, const GroupReplicas& now, const std::vector<uint64_t>& target);
  bool write_map(const std::map<uint32_t, GroupReplicas>& entries);

  ServerContext& ctx_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is set
};

}  // namespace synod::server
