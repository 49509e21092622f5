// The consistent-hash ring: keys spread evenly over shards, shards over members, and a member
// added or removed moves only the shard replicas consistent hashing says. The properties run
// under rapidcheck, which prints its seed ("Using configuration: seed=...") for every property;
// RC_PARAMS="seed=N" replays one.
#include "core/ring/ring.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <string>

namespace synod::ring {
namespace {

// 1..count.
std::vector<MemberId> first_members(size_t count) {
  std::vector<MemberId> out;
  for (MemberId m = 1; m <= count; ++m) out.push_back(m);
  return out;
}

// Between `min` and `max` distinct member IDs: a count, then IDs until that many differ.
rc::Gen<std::vector<MemberId>> gen_members(size_t min, size_t max) {
  return rc::gen::mapcat(rc::gen::inRange(min, max + 1), [](size_t count) {
    return rc::gen::map(rc::gen::container<std::vector<MemberId>>(
                            4 * count + 1, rc::gen::inRange<MemberId>(1, 1 << 20)),
                        [count](std::vector<MemberId> ids) {
                          std::vector<MemberId> out;
                          for (MemberId id : ids) {
                            if (out.size() == count) break;
                            if (std::find(out.begin(), out.end(), id) == out.end()) {
                              out.push_back(id);
                            }
                          }
                          return out;
                        });
  });
}

Ring ring_of(const std::vector<MemberId>& members, RingOptions options = {}) {
  Ring r(options);
  for (MemberId m : members) r.add(m);
  return r;
}

TEST(JumpHash, KeysSpreadEvenlyOverShards) {
  constexpr uint32_t kShards = 64;
  constexpr int kKeys = 64'000;
  std::vector<int> count(kShards);
  for (int i = 0; i < kKeys; ++i) ++count[shard_of_key("key/" + std::to_string(i), kShards)];
  for (int c : count) {
    EXPECT_GT(c, kKeys / kShards * 3 / 4);
    EXPECT_LT(c, kKeys / kShards * 5 / 4);
  }
}

RC_GTEST_PROP(JumpHash, OneMoreBucketTakesKeysOnlyIntoTheNewBucket, (uint64_t key)) {
  const uint32_t buckets = *rc::gen::inRange<uint32_t>(1, 5000);
  const uint32_t before = jump_hash(key, buckets);
  const uint32_t after = jump_hash(key, buckets + 1);
  RC_ASSERT(before < buckets);
  RC_ASSERT(after == before || after == buckets);
}

RC_GTEST_PROP(Ring, ShardsGetDistinctReplicasAsManyAsTheMembersAllow, ()) {
  const std::vector<MemberId> members = *gen_members(0, 12);
  const uint32_t replication = *rc::gen::inRange<uint32_t>(1, 6);
  const Ring r = ring_of(members, RingOptions{.vnodes = 16, .replication = replication});
  for (const std::vector<MemberId>& replicas : r.placement(32)) {
    RC_ASSERT(replicas.size() == std::min<size_t>(replication, members.size()));
    std::set<MemberId> distinct(replicas.begin(), replicas.end());
    RC_ASSERT(distinct.size() == replicas.size());
    for (MemberId m : replicas) RC_ASSERT(r.members().contains(m));
  }
}

RC_GTEST_PROP(Ring, PlacementDoesNotDependOnTheOrderMembersJoined, ()) {
  std::vector<MemberId> members = *gen_members(1, 10);
  const Placement first = ring_of(members).placement(64);
  std::reverse(members.begin(), members.end());
  RC_ASSERT(ring_of(members).placement(64) == first);
}

// Consistent hashing's promise: a new member takes one replica's place in the shards it joins,
// and no other shard changes.
RC_GTEST_PROP(Ring, AnAddedMemberOnlyTakesPlacesInShards, ()) {
  const std::vector<MemberId> members = *gen_members(1, 10);
  const MemberId added = *rc::gen::suchThat(
      rc::gen::inRange<MemberId>(1, 1 << 20),
      [&](MemberId m) { return std::find(members.begin(), members.end(), m) == members.end(); });
  Ring r = ring_of(members);
  const Placement before = r.placement(64);
  r.add(added);
  const Placement after = r.placement(64);
  for (const Move& move : plan_moves(before, after)) {
    RC_ASSERT(move.add == added);
    if (members.size() >= r.options().replication) {
      RC_ASSERT(move.remove != 0);
      RC_ASSERT(std::find(before[move.shard].begin(), before[move.shard].end(), move.remove) !=
                before[move.shard].end());
    } else {
      RC_ASSERT(move.remove == 0);  // the shard was short of replicas: it only grows
    }
  }
}

RC_GTEST_PROP(Ring, ARemovedMembersPlacesAloneAreRefilled, ()) {
  const std::vector<MemberId> members = *gen_members(2, 10);
  const MemberId removed = *rc::gen::elementOf(members);
  Ring r = ring_of(members);
  const Placement before = r.placement(64);
  r.remove(removed);
  const Placement after = r.placement(64);
  for (const Move& move : plan_moves(before, after)) {
    RC_ASSERT(move.remove == removed);
    RC_ASSERT(move.add != removed);
  }
  for (ShardId s = 0; s < before.size(); ++s) {
    const bool held = std::find(before[s].begin(), before[s].end(), removed) != before[s].end();
    if (!held)
      RC_ASSERT(std::set(before[s].begin(), before[s].end()) ==
                std::set(after[s].begin(), after[s].end()));
  }
}

TEST(Ring, ReplicasSpreadEvenlyOverMembers) {
  const Ring r = ring_of(first_members(9));
  std::map<MemberId, int> replicas;
  for (const std::vector<MemberId>& shard : r.placement(1024)) {
    for (MemberId m : shard) ++replicas[m];
  }
  const int mean = 1024 * 3 / 9;
  ASSERT_EQ(replicas.size(), 9u);
  for (const auto& [member, count] : replicas) {
    EXPECT_GT(count, mean * 2 / 3) << "member " << member;
    EXPECT_LT(count, mean * 4 / 3) << "member " << member;
  }
}

// A tenth member should take about a tenth of the replicas, not reshuffle the rest.
TEST(Ring, AddingAMemberMovesAboutItsShareOfReplicas) {
  Ring r = ring_of(first_members(9));
  const Placement before = r.placement(1024);
  r.add(10);
  const size_t moved = plan_moves(before, r.placement(1024)).size();
  const size_t share = 1024 * 3 / 10;
  EXPECT_GT(moved, share / 2);
  EXPECT_LT(moved, share * 3 / 2);
}

TEST(Ring, APreferredLeaderChangeAloneIsNoMove) {
  const Placement from{{1, 2, 3}, {4, 5, 6}};
  const Placement to{{2, 1, 3}, {4, 5, 7}};
  EXPECT_EQ(plan_moves(from, to), (std::vector<Move>{{1, 7, 6}}));
  EXPECT_TRUE(plan_moves(from, from).empty());
}

TEST(Ring, AddingOrRemovingTwiceChangesNothing) {
  Ring r = ring_of(first_members(3));
  EXPECT_FALSE(r.add(2));
  EXPECT_TRUE(r.remove(2));
  EXPECT_FALSE(r.remove(2));
  EXPECT_EQ(r.members(), (std::set<MemberId>{1, 3}));
  EXPECT_TRUE(Ring().placement(4).front().empty());
}

}  // namespace
}  // namespace synod::ring
