// Proof that the simulator's checks can fail: each planted bug must be reported within a
// bounded seed sweep. The sweeps are deterministic, so each prints the seed that caught it.
#include <gtest/gtest.h>

#include <sstream>

#include "sim/simulation.h"

namespace synod::sim {
namespace {

struct Planted {
  const char* bug;
  const char* faults;
  int nodes;
  int ops;
  uint64_t max_seeds;
  double election_crash = SimOptions{}.election_crash_probability;
  uint64_t election_crash_delay_us = SimOptions{}.election_crash_max_delay_us;
  Workload workload = Workload::kRegister;
  int watchers = 0;
};

// Returns the first seed in [1, max_seeds] whose run reports a violation, or 0.
uint64_t first_failing_seed(const Planted& p, SimResult& failing) {
  for (uint64_t s = 1; s <= p.max_seeds; ++s) {
    SimOptions o;
    o.seed = s;
    o.nodes = p.nodes;
    o.ops = p.ops;
    o.election_crash_probability = p.election_crash;
    o.election_crash_max_delay_us = p.election_crash_delay_us;
    o.workload = p.workload;
    o.watchers = p.watchers;
    std::string error;
    EXPECT_TRUE(parse_faults(p.faults, o.faults, error)) << error;
    EXPECT_TRUE(parse_bug(p.bug, o, error)) << error;
    std::ostringstream log;
    SimResult r = run_simulation(o, log);
    // Only a reported violation counts; a search that gave up (unknown) proves nothing.
    if (!r.violations.empty() || r.linearizability.verdict == check::Verdict::kNotLinearizable) {
      failing = r;
      return s;
    }
  }
  return 0;
}

bool has(const SimResult& r, const std::string& invariant) {
  for (const auto& v : r.violations) {
    if (v.invariant == invariant) return true;
  }
  return false;
}

TEST(PlantedBugs, VoteWithoutLogCheckBreaksLeaderCompleteness) {
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"vote-without-log-check", "partition,crash,pause", 5, 300, 200}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "LeaderCompleteness") || has(r, "StateMachineSafety"));
}

TEST(PlantedBugs, VoteBeforePersistBreaksElectionSafety) {
  // A vote answered before it is durable is lost only if the voter crashes inside its fsync
  // window; the default election-crash nemesis caught it in 1 seed of 3,000 (docs/simulator.md),
  // a crash after every election raises that.
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"vote-before-persist", "partition,crash,pause", 5, 600, 1500, 1.0}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "ElectionSafety") || has(r, "LogMatching") || has(r, "StateMachineSafety"));
}

TEST(PlantedBugs, ReadIndexWithoutQuorumServesStaleReads) {
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"read-index-without-quorum", "partition,crash,pause", 3, 300, 500}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_EQ(r.linearizability.verdict, check::Verdict::kNotLinearizable);
  EXPECT_FALSE(r.linearizability.failing_window.empty());
}

TEST(PlantedBugs, CommittingAPreviousTermEntryByCountLosesIt) {
  // Raft figure 8 needs three leaders in quick succession, each cut off or killed right after
  // its election; a harsher election-crash nemesis makes that reachable in a bounded sweep.
  // At 0.6 the catch rate was 1 seed in 3,000 (measured before and after the kv::Store change,
  // see docs/simulator.md); a crash after every election raises it.
  SimResult r;
  const uint64_t seed = first_failing_seed(
      {"commit-previous-term", "partition,crash,pause", 3, 600, 1100, 1.0, 20'000}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "LeaderCompleteness") || has(r, "StateMachineSafety") ||
              has(r, "CommittedDurable"));
}

// The coordination and watch checkers (check/coordination.h, check/watch.h) judged inside the
// cluster simulator, each proven by a bug planted outside the Raft core.
const double kElectionCrash = SimOptions{}.election_crash_probability;
const uint64_t kDelay = SimOptions{}.election_crash_max_delay_us;

TEST(PlantedBugs, AnUnfencedLockLetsAPausedHolderWriteAfterItsSuccessor) {
  // The holder pauses past its lease right before a write; the next waiter acquires and
  // writes; the old holder wakes and its plain put lands. Fenced, the store refuses it.
  SimResult r;
  const uint64_t seed = first_failing_seed({"unfenced-lock", "pause,partition,crash", 5, 300, 50,
                                            kElectionCrash, kDelay, Workload::kLock},
                                           r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "StaleFencingToken") || has(r, "SharedFencingToken"));
}

TEST(PlantedBugs, ASemaphoreClientCountingOnePermitTooManyOverflowsIt) {
  SimResult r;
  const uint64_t seed = first_failing_seed(
      {"extra-permit", "all", 5, 300, 20, kElectionCrash, kDelay, Workload::kSemaphore}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "SemaphoreOverflow"));
}

TEST(PlantedBugs, ALessorThatKeepsItsDeadlinesOnPromotionExpiresLeasesEarly) {
  // A new leader that does not restart every lease from its promotion expires those the old
  // leader kept renewing as soon as their grant time + TTL has passed.
  SimResult r;
  const uint64_t seed = first_failing_seed({"lessor-keeps-deadlines", "partition,crash,transfer", 5,
                                            300, 50, kElectionCrash, kDelay, Workload::kLock},
                                           r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "LeaseExpiredEarly"));
}

TEST(PlantedBugs, AWatcherResumingAtTheWrongRevisionHasAGapOrADuplicate) {
  // One revision late skips the events of its last revision + 1; one early repeats its last.
  for (const char* bug : {"watch-resume-gap", "watch-resume-duplicate"}) {
    SimResult r;
    const uint64_t seed = first_failing_seed(
        {bug, "all", 5, 200, 20, kElectionCrash, kDelay, Workload::kRegister, 2}, r);
    std::cout << bug << " caught at seed " << seed << "\n";
    ASSERT_NE(seed, 0u);
    EXPECT_TRUE(has(r, "WatchStream"));
  }
}

}  // namespace
}  // namespace synod::sim
