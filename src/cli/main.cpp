// synod: one binary for every role. Today: `synod sim`. Server, ctl, bench and check follow.
#include <CLI/CLI.hpp>
#include <iostream>
#include <sstream>

#include "sim/simulation.h"

namespace {

int run_sim(synod::sim::SimOptions opts, const std::string& seeds) {
  using synod::sim::print_summary;
  using synod::sim::run_simulation;
  if (seeds.empty()) {
    auto result = run_simulation(opts, std::cout);
    print_summary(opts, result, std::cout);
    return result.passed() ? 0 : 1;
  }
  // A sweep: one progress line per seed on stderr, the failures in full on stdout.
  uint64_t first = 0;
  uint64_t last = 0;
  char dots[3] = {};
  std::istringstream in(seeds);
  if (!(in >> first) || !in.get(dots[0]) || !in.get(dots[1]) || dots[0] != '.' || dots[1] != '.' ||
      !(in >> last) || !in.eof() || last < first) {
    std::cerr << "synod sim: --seeds wants A..B with A <= B, got '" << seeds << "'\n";
    return 2;
  }
  uint64_t failed = 0;
  for (uint64_t s = first; s <= last; ++s) {
    opts.seed = s;
    std::ostringstream log;
    auto result = run_simulation(opts, log);
    std::cerr << "\rseed " << s << " (" << (s - first + 1) << "/" << (last - first + 1)
              << "), failures " << failed + (result.passed() ? 0 : 1) << std::flush;
    if (!result.passed()) {
      ++failed;
      std::cout << "\n";
      print_summary(opts, result, std::cout);
    }
  }
  std::cerr << "\n";
  std::cout << "swept seeds " << first << ".." << last << ": " << (last - first + 1 - failed)
            << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Synod: distributed coordination and storage"};
  app.require_subcommand(1);

  synod::sim::SimOptions opts;
  std::string faults = "none";
  std::string seeds;
  std::vector<std::string> bugs;
  bool lease_reads = false;
  CLI::App* sim = app.add_subcommand("sim", "run the deterministic cluster simulator");
  sim->add_option("--seed", opts.seed, "seed of the run (replays it exactly)");
  sim->add_option("--seeds", seeds, "sweep a range of seeds, A..B");
  sim->add_option("--nodes", opts.nodes, "cluster size")->check(CLI::Range(3, 7));
  sim->add_option("--faults", faults,
                  "comma list: partition,crash,pause,loss,dup,reorder,latency,drift,topology,"
                  "membership,transfer, or all / none");
  sim->add_option("--ops", opts.ops, "client operations in the fault phase")
      ->check(CLI::Range(1, 1000000));
  sim->add_option("--clients", opts.clients, "concurrent clients")->check(CLI::Range(1, 64));
  sim->add_option("--bug", bugs, "plant a known bug (tests only)");
  sim->add_option("--election-crash", opts.election_crash_probability,
                  "with crash faults, chance of killing a node right after each election")
      ->check(CLI::Range(0.0, 1.0));
  sim->add_option("--election-crash-delay-us", opts.election_crash_max_delay_us,
                  "the election crash lands up to this long after the election")
      ->check(CLI::Range(0, 10'000'000));
  sim->add_option("--window", opts.max_inflight_msgs,
                  "replication window in messages (default: chosen per seed)")
      ->check(CLI::Range(0, 1024));
  sim->add_flag("--lease-reads", lease_reads, "serve reads from the leader lease");
  sim->add_flag("--verbose", opts.verbose, "print elections, faults and heals");
  sim->add_flag("--trace", opts.trace, "print every message and client event");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "synod: " << e.what() << "\n";
    return 2;
  }
  if (sim->parsed()) {
    std::string error;
    if (!synod::sim::parse_faults(faults, opts.faults, error)) {
      std::cerr << "synod sim: " << error << "\n";
      return 2;
    }
    for (const std::string& b : bugs) {
      if (!synod::sim::parse_bug(b, opts.bugs, error)) {
        std::cerr << "synod sim: " << error << "\n";
        return 2;
      }
    }
    if (lease_reads) opts.read_mode = synod::raft::ReadMode::kLease;
    if (opts.trace) opts.verbose = true;
    return run_sim(opts, seeds);
  }
  return 2;
}
