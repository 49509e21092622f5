// Placement for a sharded cluster: keys to shards, and shards to the members that replicate
// them, by consistent hashing (Karger et al., "Consistent Hashing and Random Trees", STOC '97;
// virtual nodes as in Dynamo, SOSP '07, 4.2).
//
//   - A key belongs to one of S shards by jump consistent hashing (Lamping and Veach, "A Fast,
//     Minimal Memory, Consistent Hash Algorithm", 2014) of its xxHash64: uniform over the shards,
//     and were S to grow, only the keys the new shards take would move.
//   - Each member owns `vnodes` points on a 64-bit ring (xxHash64 of its ID and the point's
//     number). A shard sits at the xxHash64 of its number, and its replicas are the first R
//     distinct members met walking clockwise from there, the first of them its preferred
//     leader. Adding a member therefore changes a shard's replica set only by the new member
//     taking the place of one old one, and removing a member only by another taking its place:
//     no other shard moves (Ring::placement and plan_moves show it; tests/unit/ring_test.cpp
//     checks it as a property).
//
// Deterministic: every member computes the same placement from the same members, shard count,
// replication factor, virtual node count and seed. Pure values; not thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace synod::ring {

using MemberId = uint64_t;  // never 0 (a Move's "none")
using ShardId = uint32_t;

// The shard of `key` among `shards` (> 0).
ShardId shard_of_key(std::string_view key, uint32_t shards);
// Jump consistent hash: a bucket in [0, buckets) for `key` (buckets > 0).
uint32_t jump_hash(uint64_t key, uint32_t buckets);

struct RingOptions {
  uint32_t vnodes = 64;      // points per member: more spread shards more evenly
  uint32_t replication = 3;  // replicas per shard (R)
  uint64_t seed = 0;         // varies the points, for tests and simulations
};

// Each shard's replicas, in preference order (the first is the preferred leader).
using Placement = std::vector<std::vector<MemberId>>;

class Ring {
 public:
  explicit Ring(RingOptions options = {});

  // False (nothing changes) if the member is already on the ring.
  bool add(MemberId member);
  // False (nothing changes) if the member is not on the ring.
  bool remove(MemberId member);
  const std::set<MemberId>& members() const { return members_; }
  const RingOptions& options() const { return options_; }

  // The min(R, members) distinct members clockwise from `point`, in the order met.
  std::vector<MemberId> owners(uint64_t point) const;
  // Where shard `shard` sits on the ring.
  uint64_t shard_point(ShardId shard) const;
  // The replicas of every one of `shards` shards.
  Placement placement(uint32_t shards) const;

 private:
  RingOptions options_;
  std::set<MemberId> members_;
  std::vector<std::pair<uint64_t, MemberId>> points_;  // sorted by point, then member
};

// One step of rebalancing: shard `shard` gains replica `add` (a learner that catches up and is
// promoted) and then loses replica `remove`. Either may be absent (0) when a shard only grows
// or only shrinks (fewer members than R).
struct Move {
  ShardId shard = 0;
  MemberId add = 0;
  MemberId remove = 0;
  bool operator==(const Move&) const = default;
};

// The moves that take placement `from` to `to` (same shard count), shard by shard, pairing each
// replica gained with one lost. Shards whose replica sets are equal produce none (a change of
// preferred leader alone is not a move).
std::vector<Move> plan_moves(const Placement& from, const Placement& to);

}  // namespace synod::ring
