// Each invariant check must fire on a handmade violation and stay quiet on a clean run.
#include "check/raft_invariants.h"

#include <gtest/gtest.h>

namespace synod::check {
namespace {

using raft::Entry;
using raft::EntryType;
using raft::Index;
using raft::NodeId;
using raft::Term;

// A one-voter cluster of its own: it elects itself on ticks. Two of these with different ids
// stand in for two nodes that each believe they lead the same term.
std::unique_ptr<raft::Raft> lone_leader(uint64_t id) {
  raft::Config c;
  c.id = NodeId(id);
  c.initial_conf.voters = {NodeId(id)};
  auto r = std::make_unique<raft::Raft>(c, raft::Persisted{});
  for (int i = 0; i < 30 && r->role() != raft::Role::kLeader; ++i) r->tick();
  EXPECT_EQ(r->role(), raft::Role::kLeader);
  return r;
}

bool has(const RaftInvariants& inv, const std::string& name) {
  for (const auto& v : inv.violations()) {
    if (v.invariant == name) return true;
  }
  return false;
}

TEST(RaftInvariants, TwoLeadersInOneTermViolateElectionSafety) {
  RaftInvariants inv;
  auto a = lone_leader(1);
  auto b = lone_leader(2);
  inv.on_step(*a);
  inv.on_step(*a);
  EXPECT_TRUE(inv.ok());
  inv.on_step(*b);
  EXPECT_TRUE(has(inv, "ElectionSafety"));
}

TEST(RaftInvariants, DifferentEntriesAtOneIndexAndTermViolateLogMatching) {
  RaftInvariants inv;
  auto a = lone_leader(1);
  auto b = lone_leader(2);
  a->propose("x");
  b->propose("y");
  inv.on_ready(*a, a->ready());
  EXPECT_FALSE(has(inv, "LogMatching"));
  inv.on_ready(*b, b->ready());
  EXPECT_TRUE(has(inv, "LogMatching"));
}

TEST(RaftInvariants, DifferentAppliedEntriesViolateStateMachineSafety) {
  RaftInvariants inv;
  inv.on_apply(NodeId(1), Entry{Term(1), Index(1), EntryType::kNormal, "a"});
  inv.on_apply(NodeId(2), Entry{Term(1), Index(1), EntryType::kNormal, "a"});
  EXPECT_TRUE(inv.ok());
  inv.on_apply(NodeId(3), Entry{Term(2), Index(1), EntryType::kNormal, "b"});
  EXPECT_TRUE(has(inv, "StateMachineSafety"));
}

TEST(RaftInvariants, LeaderWithoutACommittedEntryViolatesLeaderCompleteness) {
  RaftInvariants inv;
  inv.on_apply(NodeId(2), Entry{Term(1), Index(5), EntryType::kNormal, "committed"});
  auto a = lone_leader(1);  // its log ends at index 1
  inv.on_step(*a);
  EXPECT_TRUE(has(inv, "LeaderCompleteness"));
}

TEST(RaftInvariants, CommittedEntryOnAMinorityAfterACrashViolatesDurability) {
  RaftInvariants inv;
  raft::ConfState conf;
  conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
  inv.set_initial_conf(conf);
  const Entry e{Term(1), Index(1), EntryType::kNormal, "a"};
  inv.on_apply(NodeId(1), e);
  raft::Persisted holds;
  holds.entries = {e};
  raft::Persisted empty;
  inv.on_crash(NodeId(3), {{NodeId(1), &holds}, {NodeId(2), &holds}, {NodeId(3), &empty}});
  EXPECT_TRUE(inv.ok());
  inv.on_crash(NodeId(2), {{NodeId(1), &holds}, {NodeId(2), &empty}, {NodeId(3), &empty}});
  EXPECT_TRUE(has(inv, "CommittedDurable"));
}

TEST(RaftInvariants, ViolationsAreBounded) {
  RaftInvariants inv;
  for (uint64_t i = 1; i <= 100; ++i) {
    inv.on_apply(NodeId(1), Entry{Term(1), Index(i), EntryType::kNormal, "a"});
    inv.on_apply(NodeId(2), Entry{Term(2), Index(i), EntryType::kNormal, "b"});
  }
  EXPECT_EQ(inv.violations().size(), RaftInvariants::kMaxViolations);
}

}  // namespace
}  // namespace synod::check
