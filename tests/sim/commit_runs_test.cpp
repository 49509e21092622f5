// Atomic commitment's classic results, over many seeds (message delays and timeouts vary): 2PC
// blocks when its coordinator crashes holding every vote, 3PC terminates and agrees, and under
// a partition 3PC decides both ways while 2PC only blocks. Each failure names its seed; `synod
// commit --protocol P --scenario S --seed N --verbose` prints the run.
#include "sim/commit_runs.h"

#include <gtest/gtest.h>

namespace synod::sim {
namespace {

using txn::Protocol;
using txn::State;

constexpr uint64_t kSeeds = 200;

CommitRunResult run(Protocol protocol, CommitScenario scenario, uint64_t seed, int votes_no = 0,
                    int participants = 3) {
  CommitRunOptions o;
  o.protocol = protocol;
  o.scenario = scenario;
  o.seed = seed;
  o.votes_no = votes_no;
  o.participants = participants;
  return run_commit(o);
}

TEST(Commit, WithoutFaultsEveryoneCommits) {
  for (Protocol p : {Protocol::kTwoPhase, Protocol::kThreePhase}) {
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      const CommitRunResult r = run(p, CommitScenario::kNone, seed);
      ASSERT_FALSE(r.blocked) << txn::to_string(p) << " seed " << seed;
      for (State s : r.states) ASSERT_EQ(s, State::kCommitted) << "seed " << seed;
      ASSERT_EQ(r.coordinator, State::kCommitted);
    }
  }
}

TEST(Commit, OneNoVoteAbortsEverywhere) {
  for (Protocol p : {Protocol::kTwoPhase, Protocol::kThreePhase}) {
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      const CommitRunResult r = run(p, CommitScenario::kCoordinatorCrash, seed, /*votes_no=*/2);
      ASSERT_FALSE(r.blocked) << txn::to_string(p) << " seed " << seed;
      for (State s : r.states) ASSERT_EQ(s, State::kAborted) << "seed " << seed;
    }
  }
}

TEST(Commit, TwoPhaseBlocksWhenTheCoordinatorCrashesHoldingEveryVote) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const CommitRunResult r = run(Protocol::kTwoPhase, CommitScenario::kCoordinatorCrash, seed);
    ASSERT_TRUE(r.blocked) << "seed " << seed;
    for (State s : r.states) ASSERT_EQ(s, State::kUncertain) << "seed " << seed;
    ASSERT_TRUE(r.agreement);
  }
}

TEST(Commit, ThreePhaseTerminatesWhenTheCoordinatorCrashes) {
  for (int participants : {2, 3, 5}) {
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      const CommitRunResult r =
          run(Protocol::kThreePhase, CommitScenario::kCoordinatorCrash, seed, 0, participants);
      ASSERT_FALSE(r.blocked) << "seed " << seed;
      ASSERT_TRUE(r.agreement) << "seed " << seed;
      for (State s : r.states) ASSERT_EQ(s, State::kAborted) << "seed " << seed;
    }
  }
}

TEST(Commit, ThreePhaseDecidesBothWaysUnderAPartition) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const CommitRunResult r = run(Protocol::kThreePhase, CommitScenario::kPartition, seed);
    ASSERT_FALSE(r.agreement) << "seed " << seed;
    ASSERT_EQ(r.states[0], State::kCommitted) << "seed " << seed;
    ASSERT_EQ(r.states[1], State::kAborted) << "seed " << seed;
  }
}

TEST(Commit, TwoPhaseOnlyBlocksUnderThePartition) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const CommitRunResult r = run(Protocol::kTwoPhase, CommitScenario::kPartition, seed);
    ASSERT_TRUE(r.agreement) << "seed " << seed;
    ASSERT_TRUE(r.blocked) << "seed " << seed;
    ASSERT_EQ(r.states[0], State::kCommitted) << "seed " << seed;
  }
}

// Crashes alone: whatever the coordinator managed to send, the others settle the same outcome.
TEST(Commit, BothAgreeWhenTheCoordinatorCrashesMidwayThroughItsMessages) {
  for (Protocol p : {Protocol::kTwoPhase, Protocol::kThreePhase}) {
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      const CommitRunResult r = run(p, CommitScenario::kPartialSend, seed);
      ASSERT_FALSE(r.blocked) << txn::to_string(p) << " seed " << seed;
      ASSERT_TRUE(r.agreement) << txn::to_string(p) << " seed " << seed;
      for (State s : r.states) ASSERT_EQ(s, State::kCommitted) << "seed " << seed;
    }
  }
}

TEST(Commit, ASeedReplaysItsRun) {
  CommitRunOptions o;
  o.protocol = Protocol::kThreePhase;
  o.scenario = CommitScenario::kPartition;
  o.seed = 7;
  o.verbose = true;
  EXPECT_EQ(run_commit(o).log, run_commit(o).log);
  EXPECT_NE(run_commit(o).log.find("p1 is committed"), std::string::npos);
}

}  // namespace
}  // namespace synod::sim
