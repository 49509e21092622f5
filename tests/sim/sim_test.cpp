// Simulation tests: determinism, seed sweeps across every fault mix (safety, linearizability
// and liveness on each run), and the planted bugs that prove the checks can fail.
#include <gtest/gtest.h>

#include <sstream>

#include "sim/simulation.h"

namespace synod::sim {
namespace {

SimOptions options(uint64_t seed, const std::string& faults, int nodes = 5, int ops = 200) {
  SimOptions o;
  o.seed = seed;
  o.nodes = nodes;
  o.ops = ops;
  std::string error;
  EXPECT_TRUE(parse_faults(faults, o.faults, error)) << error;
  return o;
}

std::string run_to_text(SimOptions o) {
  o.verbose = true;
  o.trace = true;
  std::ostringstream out;
  SimResult r = run_simulation(o, out);
  print_summary(o, r, out);
  return out.str();
}

TEST(SimDeterminism, SameSeedGivesByteIdenticalOutput) {
  const SimOptions o = options(42, "all");
  std::cout << "seed 42\n";
  const std::string a = run_to_text(o);
  const std::string b = run_to_text(o);
  EXPECT_GT(a.size(), 10'000u);
  EXPECT_EQ(a, b);
}

TEST(SimDeterminism, LockRunsWithWatchersReplayExactly) {
  SimOptions o = options(43, "all", 5, 300);
  o.workload = Workload::kLock;
  o.watchers = 2;
  std::cout << "seed 43\n";
  EXPECT_EQ(run_to_text(o), run_to_text(o));
}

// The recipe checks are not vacuous: under pauses, holders do lose their leases mid-hold, and
// the store refuses their late writes; watchers do reconnect and resume.
TEST(SimRecipes, PausedLockHoldersAreFencedOff) {
  uint64_t refused = 0, pauses = 0, streams = 0, watchers = 0;
  for (uint64_t s = 1; s <= 10; ++s) {
    SimOptions o = options(s, "pause,partition,crash", 5, 300);
    o.workload = Workload::kLock;
    o.watchers = 2;
    std::ostringstream log;
    SimResult r = run_simulation(o, log);
    EXPECT_TRUE(r.passed()) << "seed " << s;
    refused += r.acts_refused;
    pauses += r.client_pauses;
    streams += r.watch_streams;
    watchers += 2;
  }
  std::cout << "seeds 1..10: " << pauses << " client pauses, " << refused
            << " stale writes refused, " << streams << " watch connections\n";
  EXPECT_GT(pauses, 0u);
  EXPECT_GT(refused, 0u);
  EXPECT_GT(streams, watchers);
}

TEST(SimDeterminism, DifferentSeedsDiffer) {
  EXPECT_NE(run_to_text(options(1, "all")), run_to_text(options(2, "all")));
}

// Every seed of every fault mix must pass: no invariant violated, the client history is
// linearizable, and after the heal a leader is elected and all clients finish in time.
struct Mix {
  const char* name;
  const char* faults;
  uint64_t first_seed;
  uint64_t seeds;
  bool lease_reads = false;
  Workload workload = Workload::kRegister;
};

void PrintTo(const Mix& mix, std::ostream* os) {
  *os << mix.name;
}

class SimSweep : public ::testing::TestWithParam<Mix> {};

// The sanitizer build runs a third of each mix's seeds and an eighth of the recipes' (ten times
// slower per seed, it looks for memory errors, which the first seeds of every mix reach as well
// as the rest; the release build runs them all).
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kShare = 3;
#else
constexpr uint64_t kShare = 1;
#endif
constexpr uint64_t kMixSeeds = 300 / kShare;
constexpr uint64_t kLeaseSeeds = 200 / kShare;
constexpr uint64_t kRecipeSeeds = kShare == 1 ? 200 : 25;

TEST_P(SimSweep, EverySeedPasses) {
  const Mix& mix = GetParam();
  std::cout << "sweeping seeds " << mix.first_seed << ".." << mix.first_seed + mix.seeds - 1
            << " with faults " << mix.faults << "\n";
  uint64_t failures = 0;
  for (uint64_t s = mix.first_seed; s < mix.first_seed + mix.seeds; ++s) {
    SimOptions o = options(s, mix.faults, 3 + static_cast<int>(s % 5));
    if (mix.lease_reads) o.read_mode = raft::ReadMode::kLease;
    // Two watchers ride along every run: their streams are checked against the log.
    o.watchers = 2;
    o.workload = mix.workload;
    if (mix.workload != Workload::kRegister) o.ops = 300;
    std::ostringstream log;
    SimResult r = run_simulation(o, log);
    if (!r.passed()) {
      ++failures;
      std::ostringstream summary;
      print_summary(o, r, summary);
      ADD_FAILURE() << "seed " << s << " failed:\n" << summary.str();
      if (failures >= 3) break;
    }
  }
  EXPECT_EQ(failures, 0u);
}

// Release: 7 mixes x 300 seeds + 200 with lease reads + 4 recipe mixes x 200 = 3,100 seeds, node
// counts 3..7, each with two watchers.
INSTANTIATE_TEST_SUITE_P(
    FaultMixes, SimSweep,
    ::testing::Values(Mix{"partition", "partition", 1000, kMixSeeds},
                      Mix{"crash", "crash", 2000, kMixSeeds},
                      Mix{"pause", "pause", 3000, kMixSeeds},
                      Mix{"network", "loss,dup,reorder,latency", 4000, kMixSeeds},
                      Mix{"clocks", "drift,topology", 5000, kMixSeeds},
                      Mix{"membership", "membership,transfer,crash", 6000, kMixSeeds},
                      Mix{"all", "all", 7000, kMixSeeds},
                      // Lease reads assume bounded drift (15% here, 20% allowed).
                      Mix{"lease", "partition,crash,drift,transfer", 8000, kLeaseSeeds, true},
                      // The lock and semaphore recipes, with client pauses past the lease.
                      Mix{"lock", "all", 9000, kRecipeSeeds, false, Workload::kLock},
                      Mix{"lock_pauses", "pause,partition,crash", 10000, kRecipeSeeds, false,
                          Workload::kLock},
                      Mix{"semaphore", "all", 11000, kRecipeSeeds, false, Workload::kSemaphore},
                      Mix{"semaphore_pauses", "pause,partition,crash", 12000, kRecipeSeeds, false,
                          Workload::kSemaphore}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(SimLiveness, ClusterRecoversAfterHeal) {
  SimOptions o = options(11, "all");
  std::ostringstream log;
  SimResult r = run_simulation(o, log);
  EXPECT_TRUE(r.liveness_ok) << r.liveness_detail;
  EXPECT_GT(r.ops_ok, 0u);
  EXPECT_FALSE(r.faults_injected.empty());
}

// FLP, as a run: the duel adversary keeps every round's winner from getting a value chosen for
// 1,000 rounds while every invariant holds, and once it stops a value is chosen within the
// liveness bound (partial synchrony). Both engines, 3 and 5 members.
TEST(SimDuel, NoValueIsChosenWhileTheAdversaryRunsAndOneIsOnceItStops) {
  for (replica::EngineKind engine :
       {replica::EngineKind::kRaft, replica::EngineKind::kMultiPaxos}) {
    for (int nodes : {3, 5}) {
      SimOptions o = options(21, "none", nodes);
      o.engine = engine;
      o.duel = true;
      o.duel_rounds = 1'000;
      std::ostringstream log;
      SimResult r = run_simulation(o, log);
      std::ostringstream summary;
      print_summary(o, r, summary);
      SCOPED_TRACE(summary.str());
      EXPECT_EQ(r.duel_rounds, 1'000u);
      EXPECT_EQ(r.duel_chosen, 0u);
      EXPECT_GT(r.duel_refused, 1'000u);  // the preempted leaders' messages, refused late
      EXPECT_TRUE(r.duel_decided_after);
      EXPECT_LE(r.duel_first_chosen_ms, o.liveness_ticks * o.tick_us / 1000);
      EXPECT_TRUE(r.passed());
      EXPECT_NE(log.str().find("duel round 1000:"), std::string::npos);
    }
  }
}

TEST(SimDuel, AReplayedDuelIsTheSameDuel) {
  SimOptions o = options(22, "none", 3);
  o.engine = replica::EngineKind::kMultiPaxos;
  o.duel = true;
  o.duel_rounds = 50;
  EXPECT_EQ(run_to_text(o), run_to_text(o));
}

TEST(SimLiveness, ReportsAClusterThatCannotRecover) {
  // A liveness bound of zero ticks cannot be met: the check must say so.
  SimOptions o = options(12, "crash");
  o.liveness_ticks = 0;
  std::ostringstream log;
  SimResult r = run_simulation(o, log);
  EXPECT_FALSE(r.liveness_ok);
  EXPECT_FALSE(r.passed());
}

// PBFT's bound, shown (OSDI 4.5.1: n >= 3f + 1). Three replicas configured to tolerate one
// Byzantine replica have quorums of n - f = 2, which meet in one replica: possibly the faulty
// one. The adversary (an equivocating primary) then gets two honest replicas to execute
// different requests at one sequence number. With four replicas the same adversary finds
// nothing.
SimOptions byzantine_only(uint64_t seed, int nodes) {
  SimOptions o;
  o.seed = seed;
  o.engine = replica::EngineKind::kPbft;
  o.nodes = nodes;
  o.byzantine = 1;
  std::string error;
  EXPECT_TRUE(parse_faults("byzantine", o.faults, error)) << error;
  return o;
}

bool honest_replicas_disagree(const SimResult& r) {
  for (const auto& v : r.violations) {
    if (v.invariant == "HonestReplicasAgree" || v.invariant == "HonestHistoriesAgree") return true;
  }
  return false;
}

TEST(PbftBound, ThreeReplicasAgainstOneByzantineBreakSafety) {
  uint64_t found = 0;
  for (uint64_t seed = 1; seed <= 50 && found == 0; ++seed) {
    std::ostringstream log;
    const SimResult r = run_simulation(byzantine_only(seed, 3), log);
    if (honest_replicas_disagree(r)) found = seed;
  }
  std::cout << "n = 3f: safety broken at seed " << found << "\n";
  EXPECT_NE(found, 0u);
}

TEST(PbftBound, FourReplicasAgainstTheSameAdversaryStaySafeAndLive) {
  for (uint64_t seed = 1; seed <= 50 / kShare; ++seed) {
    std::ostringstream log;
    const SimOptions o = byzantine_only(seed, 4);
    const SimResult r = run_simulation(o, log);
    std::ostringstream summary;
    print_summary(o, r, summary);
    EXPECT_TRUE(r.passed()) << summary.str();
  }
}

}  // namespace
}  // namespace synod::sim
