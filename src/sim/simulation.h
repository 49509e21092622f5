// The deterministic simulator: 3 to 7 nodes of the real Raft core, a key-value workload, and a
// seeded schedule of faults, all on one thread in virtual time. One seed gives one run, byte for
// byte: every random draw comes from generators forked from the seed, and events at the same
// virtual instant run in the order they were scheduled.
#pragma once

#include <ostream>

#include "sim/options.h"
#include "sim/result.h"

namespace synod::sim {

// Runs one simulation, writing its event log (per the verbosity options) to `log`.
SimResult run_simulation(const SimOptions& options, std::ostream& log);
// The summary block printed after a run.
void print_summary(const SimOptions& options, const SimResult& result, std::ostream& out);

}  // namespace synod::sim
