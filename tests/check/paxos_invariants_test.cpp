// check::PaxosInvariants on handmade events: each property fails when it should, and holds on a
// correct run (chosen computed from durable acceptances, not from what an engine claims).
#include "check/paxos_invariants.h"

#include <gtest/gtest.h>

namespace synod::check {
namespace {

using raft::ConfState;
using raft::Entry;
using raft::EntryType;
using raft::Index;
using raft::NodeId;
using raft::Term;

Entry e(uint64_t round, uint64_t slot, std::string data) {
  return Entry{Term(round), Index(slot), EntryType::kNormal, std::move(data)};
}

bool has(const PaxosInvariants& inv, const std::string& name) {
  for (const Violation& v : inv.violations()) {
    if (v.invariant == name) return true;
  }
  return false;
}

class PaxosInvariantsTest : public ::testing::Test {
 protected:
  PaxosInvariantsTest() { inv_.set_initial_conf(ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}}); }
  void durable(uint64_t node, std::vector<Entry> entries) {
    inv_.on_durable(NodeId(node), entries, std::nullopt);
  }
  PaxosInvariants inv_;
};

TEST_F(PaxosInvariantsTest, AValueIsChosenOnceAMajorityMadeItDurable) {
  durable(1, {e(1, 1, "x")});
  EXPECT_EQ(inv_.chosen_prefix(), Index(0));
  inv_.observe_learned(NodeId(1), e(1, 1, "x"));  // learned before a majority accepted it
  EXPECT_TRUE(has(inv_, "LearnedIsChosen"));
  PaxosInvariants ok;
  ok.set_initial_conf(ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}});
  ok.on_durable(NodeId(1), {e(1, 1, "x")}, std::nullopt);
  ok.on_durable(NodeId(2), {e(1, 1, "x")}, std::nullopt);
  EXPECT_EQ(ok.chosen_prefix(), Index(1));
  ok.observe_learned(NodeId(3), e(1, 1, "x"));
  ok.observe_learned(NodeId(3), e(4, 1, "x"));  // the same value, accepted at a later round
  EXPECT_TRUE(ok.ok());
}

TEST_F(PaxosInvariantsTest, ASecondValueWithAMajorityChangesAChosenSlot) {
  durable(1, {e(1, 1, "x")});
  durable(2, {e(1, 1, "x")});
  durable(2, {e(2, 1, "y")});
  durable(3, {e(2, 1, "y")});
  EXPECT_TRUE(has(inv_, "ChosenNeverChanges"));
}

TEST_F(PaxosInvariantsTest, LearningAnotherValueThanTheChosenOneIsReported) {
  durable(1, {e(1, 1, "x")});
  durable(2, {e(1, 1, "x")});
  inv_.observe_learned(NodeId(3), e(2, 1, "y"));
  EXPECT_TRUE(has(inv_, "LearnedIsChosen"));
}

TEST_F(PaxosInvariantsTest, TwoValuesAtOneRoundForOneSlotAreReported) {
  inv_.observe_accepted(NodeId(1), e(3, 5, "x"));
  inv_.observe_accepted(NodeId(2), e(3, 5, "x"));
  EXPECT_TRUE(inv_.ok());
  inv_.observe_accepted(NodeId(3), e(3, 5, "y"));
  EXPECT_TRUE(has(inv_, "OneValuePerRound"));
}

TEST_F(PaxosInvariantsTest, TwoLeadersOfOneRoundAreReported) {
  inv_.observe_leader(NodeId(1), Term(4));
  inv_.observe_leader(NodeId(1), Term(4));
  EXPECT_TRUE(inv_.ok());
  inv_.observe_leader(NodeId(2), Term(4));
  EXPECT_TRUE(has(inv_, "RoundSafety"));
}

TEST_F(PaxosInvariantsTest, APromiseThatGoesBackIsReported) {
  inv_.on_durable(NodeId(1), {}, raft::HardState{Term(5), NodeId(2), Index(0)});
  inv_.on_durable(NodeId(1), {}, raft::HardState{Term(4), NodeId(3), Index(0)});
  EXPECT_TRUE(has(inv_, "AcceptAbovePromise"));
}

TEST_F(PaxosInvariantsTest, AcceptingBelowThePromiseIsReported) {
  // The node's log after a step; the slot that changed must be at or above the promise it held
  // before the step.
  raft::Log log(raft::SnapshotMeta{}, {}, Index(0), Index(0));
  inv_.observe_log(NodeId(1), Term(0), log);  // first sight: taken as recovered
  log.append({e(2, 1, "x")});
  inv_.observe_log(NodeId(1), Term(2), log);
  EXPECT_TRUE(inv_.ok());
  log.overwrite({e(1, 1, "y")});
  inv_.observe_log(NodeId(1), Term(3), log);
  EXPECT_TRUE(has(inv_, "AcceptAbovePromise"));
}

TEST_F(PaxosInvariantsTest, AChosenValueLostInACrashIsReported) {
  durable(1, {e(1, 1, "x")});
  durable(2, {e(1, 1, "x")});
  raft::Persisted holds;
  holds.entries = {e(1, 1, "x")};
  raft::Persisted empty;
  inv_.on_crash(NodeId(1), {{NodeId(1), &holds}, {NodeId(2), &holds}, {NodeId(3), &empty}});
  EXPECT_TRUE(inv_.ok());
  inv_.on_crash(NodeId(2), {{NodeId(1), &holds}, {NodeId(2), &empty}, {NodeId(3), &empty}});
  EXPECT_TRUE(has(inv_, "ChosenDurable"));
}

}  // namespace
}  // namespace synod::check
