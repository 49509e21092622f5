// The CI sweep: a 5,000-operation history, and every cell of engine {raft, multipaxos} x nodes
// {3, 5, 7} x workload {register, lock, semaphore} x nemesis {swarm, swarm with lease reads, all
// faults with a crash after every election} runs its own range of seeds, and every seed must
// pass (safety, the engine's invariants, the checkers, liveness after the heal). PBFT runs at
// 4 and 7 replicas with f = 1 and 2 Byzantine ones, under {swarm, Byzantine faults alone, all
// faults with a crash after every election}, the register workload.
// scripts/sweep runs the same matrix over many more seeds offline.
#include <gtest/gtest.h>

#include <sstream>

#include "sim/simulation.h"

namespace synod::sim {
namespace {

enum class Nemesis : uint8_t { kSwarm, kSwarmLeaseReads, kElectionCrash, kByzantineOnly };

struct Cell {
  replica::EngineKind engine;
  int nodes;
  Workload workload;
  Nemesis nemesis;
};

std::string cell_name(const Cell& c) {
  static constexpr const char* kNemesis[] = {"swarm", "lease_reads", "election_crash",
                                             "byzantine_only"};
  return std::string(replica::to_string(c.engine)) + "_" + std::to_string(c.nodes) + "_nodes_" +
         to_string(c.workload) + "_" + kNemesis[static_cast<int>(c.nemesis)];
}

// The sanitizer build runs the first seeds of each cell: every cell's code paths, memory-checked.
#if defined(__SANITIZE_ADDRESS__)
uint64_t seeds_per_cell(const Cell& c) {
  return c.engine == replica::EngineKind::kRaft ? 4 : 2;
}
#else
// 27 cells per engine: 3,024 seeds for Raft, 1,080 for Multi-Paxos; 6 cells of PBFT, 1,020.
uint64_t seeds_per_cell(const Cell& c) {
  switch (c.engine) {
    case replica::EngineKind::kRaft:
      return 112;
    case replica::EngineKind::kMultiPaxos:
      return 40;
    case replica::EngineKind::kPbft:
      return 170;
  }
  return 0;
}
#endif

SimOptions cell_options(const Cell& c, uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.engine = c.engine;
  o.nodes = c.nodes;
  o.workload = c.workload;
  o.ops = c.workload == Workload::kRegister ? 200 : 300;
  o.watchers = seed % 3 == 0 ? 2 : 0;
  if (c.engine == replica::EngineKind::kPbft) {
    o.byzantine = (c.nodes - 1) / 3;
    o.watchers = 0;
  }
  std::string error;
  if (c.nemesis == Nemesis::kElectionCrash) {
    EXPECT_TRUE(parse_faults("all", o.faults, error)) << error;
    o.election_crash_probability = 1.0;
    if (c.engine == replica::EngineKind::kPbft) {
      o.faults.erase(Fault::kMembership);
      o.faults.erase(Fault::kTransfer);
      o.faults.insert(Fault::kByzantine);
    }
  } else if (c.nemesis == Nemesis::kByzantineOnly) {
    EXPECT_TRUE(parse_faults("byzantine", o.faults, error)) << error;
  } else {
    o.swarm = true;
  }
  if (c.nemesis == Nemesis::kSwarmLeaseReads) o.read_mode = raft::ReadMode::kLease;
  return o;
}

class SweepMatrix : public ::testing::TestWithParam<Cell> {};

TEST_P(SweepMatrix, EverySeedPasses) {
  const Cell& c = GetParam();
  // Each cell its own seeds, so the matrix covers distinct runs.
  const uint64_t first =
      500'000 +
      1'000 * static_cast<uint64_t>(c.nodes * 100 + static_cast<int>(c.workload) * 10 +
                                    static_cast<int>(c.nemesis)) +
      1'000'000 * static_cast<uint64_t>(c.engine);
  const uint64_t count = seeds_per_cell(c);
  std::cout << cell_name(c) << ": seeds " << first << ".." << first + count - 1 << "\n";
  uint64_t failures = 0;
  for (uint64_t s = first; s < first + count && failures < 3; ++s) {
    const SimOptions o = cell_options(c, s);
    std::ostringstream log;
    const SimResult r = run_simulation(o, log);
    if (r.passed()) continue;
    ++failures;
    std::ostringstream summary;
    print_summary(o, r, summary);
    ADD_FAILURE() << summary.str();
  }
  EXPECT_EQ(failures, 0u);
}

std::vector<Cell> all_cells() {
  std::vector<Cell> cells;
  for (replica::EngineKind e : {replica::EngineKind::kRaft, replica::EngineKind::kMultiPaxos}) {
    for (int nodes : {3, 5, 7}) {
      for (Workload w : {Workload::kRegister, Workload::kLock, Workload::kSemaphore}) {
        for (Nemesis n : {Nemesis::kSwarm, Nemesis::kSwarmLeaseReads, Nemesis::kElectionCrash}) {
          cells.push_back({e, nodes, w, n});
        }
      }
    }
  }
  for (int nodes : {4, 7}) {
    for (Nemesis n : {Nemesis::kSwarm, Nemesis::kByzantineOnly, Nemesis::kElectionCrash}) {
      cells.push_back({replica::EngineKind::kPbft, nodes, Workload::kRegister, n});
    }
  }
  return cells;
}

INSTANTIATE_TEST_SUITE_P(Cells, SweepMatrix, ::testing::ValuesIn(all_cells()),
                         [](const ::testing::TestParamInfo<Cell>& info) {
                           return cell_name(info.param);
                         });

// A long history: 5,000 operations of 20 clients under every fault, decided by the checker (not
// unknown) along with every other check.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kLongOps = 1'000;
#else
constexpr int kLongOps = 5'000;
#endif

TEST(SweepLongHistory, FiveThousandOperationsUnderEveryFaultAreDecided) {
  for (uint64_t seed : {930'001, 930'002, 930'003}) {
    SimOptions o;
    o.seed = seed;
    o.engine = seed == 930'003 ? replica::EngineKind::kMultiPaxos : replica::EngineKind::kRaft;
    o.nodes = 5;
    o.ops = kLongOps;
    o.clients = 20;
    std::string error;
    ASSERT_TRUE(parse_faults("all", o.faults, error)) << error;
    std::ostringstream log;
    const SimResult r = run_simulation(o, log);
    std::cout << "seed " << seed << ": " << r.history.size() << " operations, "
              << check::to_string(r.linearizability.verdict) << " in "
              << r.linearizability.states_explored << " states\n";
    EXPECT_GE(r.history.size(), static_cast<size_t>(kLongOps));
    std::ostringstream summary;
    print_summary(o, r, summary);
    EXPECT_TRUE(r.passed()) << summary.str();
  }
}

}  // namespace
}  // namespace synod::sim
