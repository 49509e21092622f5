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
};

// Returns the first seed in [1, max_seeds] whose run reports a violation, or 0.
uint64_t first_failing_seed(const Planted& p, SimResult& failing) {
  for (uint64_t s = 1; s <= p.max_seeds; ++s) {
    SimOptions o;
    o.seed = s;
    o.nodes = p.nodes;
    o.ops = p.ops;
    std::string error;
    EXPECT_TRUE(parse_faults(p.faults, o.faults, error)) << error;
    EXPECT_TRUE(parse_bug(p.bug, o.bugs, error)) << error;
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
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"vote-before-persist", "partition,crash,pause", 5, 600, 1500}, r);
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

}  // namespace
}  // namespace synod::sim
