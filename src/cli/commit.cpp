#include "cli/commit.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "sim/commit_runs.h"

namespace synod::cli {

namespace {

struct CommitArgs {
  std::string protocol = "both";
  std::string scenario = "coordinator-crash";
  int participants = 3;
  int votes_no = 0;
  uint64_t seed = 1;
  bool verbose = false;
};

int run_commit_command(const CommitArgs& a) {
  sim::CommitRunOptions o;
  if (!sim::parse_commit_scenario(a.scenario, &o.scenario)) {
    std::cerr << "synod commit: unknown scenario '" << a.scenario
              << "' (known: coordinator-crash, partition, partial-send, none)\n";
    return 2;
  }
  std::vector<txn::Protocol> protocols;
  if (a.protocol == "2pc" || a.protocol == "both") protocols.push_back(txn::Protocol::kTwoPhase);
  if (a.protocol == "3pc" || a.protocol == "both") protocols.push_back(txn::Protocol::kThreePhase);
  if (protocols.empty()) {
    std::cerr << "synod commit: unknown protocol '" << a.protocol << "' (known: 2pc, 3pc, both)\n";
    return 2;
  }
  if (a.votes_no < 0 || a.votes_no > a.participants) {
    std::cerr << "synod commit: --votes-no must name a participant, 1.." << a.participants << "\n";
    return 2;
  }
  o.participants = a.participants;
  o.votes_no = a.votes_no;
  o.seed = a.seed;
  o.verbose = a.verbose;
  for (txn::Protocol p : protocols) {
    o.protocol = p;
    const sim::CommitRunResult r = sim::run_commit(o);
    if (a.verbose) std::cout << r.log;
    std::cout << sim::describe(o, r);
  }
  return 0;
}

}  // namespace

std::function<int()> add_commit_command(CLI::App& app) {
  auto args = std::make_shared<CommitArgs>();
  CLI::App* cmd = app.add_subcommand(
      "commit", "run one transaction under 2PC and 3PC with an unreplicated coordinator");
  cmd->add_option("--protocol", args->protocol, "2pc, 3pc or both")->capture_default_str();
  cmd->add_option("--scenario", args->scenario,
                  "coordinator-crash, partition, partial-send or none")
      ->capture_default_str();
  cmd->add_option("--participants", args->participants, "participants in the transaction")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  cmd->add_option("--votes-no", args->votes_no, "this participant votes no (0: all vote yes)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "the run's seed (message delays, timeouts)")
      ->capture_default_str();
  cmd->add_flag("--verbose", args->verbose, "print every message, timeout and decision");
  return [args] { return run_commit_command(*args); };
}

}  // namespace synod::cli
