// The deterministic simulator: 3 to 7 nodes of the real Raft core, a key-value workload, and a
// seeded schedule of faults, all on one thread in virtual time. One seed gives one run, byte for
// byte: every random draw comes from generators forked from the seed, and events at the same
// virtual instant run in the order they were scheduled.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "check/coordination.h"
#include "check/linearizability.h"
#include "check/raft_invariants.h"
#include "core/raft/raft.h"

namespace synod::sim {

enum class Fault : uint8_t {
  kPartition,   // halves, majority/minority, bridge, majorities-ring, isolated leader
  kCrash,       // kill a node (un-fsynced writes lost), restart it later
  kPause,       // freeze a node (SIGSTOP-like), resume it later
  kLoss,        // drop a share of messages
  kDuplicate,   // deliver a share of messages twice
  kReorder,     // wide latency jitter
  kLatency,     // slow links
  kDrift,       // per-node tick-rate skew
  kTopology,    // route over a ring, star or tree instead of a full mesh
  kMembership,  // remove a voter, re-add it as a learner, promote it
  kTransfer,    // leadership transfer to a random voter
};
const char* to_string(Fault f);
// Parses "partition,crash" (or "all", "none"). On error returns false and sets `error`.
bool parse_faults(const std::string& list, std::set<Fault>& out, std::string& error);
// What a sweep runs when no fault list is given: swarm testing, each seed its own mix.
inline constexpr const char* kSwarm = "swarm";
std::string fault_list(const std::set<Fault>& faults);

// What the clients run: the register workload (get, put, cas over a few keys, checked for
// linearizability), or a lock or semaphore recipe (sim/recipe_client.h, checked by
// check/coordination.h).
enum class Workload : uint8_t { kRegister, kLock, kSemaphore };
const char* to_string(Workload w);
bool parse_workload(const std::string& name, Workload& out, std::string& error);

// Bugs planted outside the Raft core, to prove the coordination and watch checkers fail.
struct WorkloadBugs {
  bool unfenced = false;                // lock holders write with a plain put
  bool extra_permit = false;            // semaphore clients count one permit too many
  bool lessor_keeps_deadlines = false;  // a new leader does not restart leases (kv::LessorBugs)
  bool watch_resume_gap = false;        // a watcher resumes at its last revision + 2
  bool watch_resume_duplicate = false;  // a watcher resumes at its last revision
};

struct SimOptions;
// Names of the bugs that tests plant (raft::PlantedBugs and WorkloadBugs).
bool parse_bug(const std::string& name, SimOptions& options, std::string& error);

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 5;
  std::set<Fault> faults;
  // Swarm testing (Groce et al., ISSTA 2012): the run draws its own fault mix and intensities
  // from its seed (the faults and nemesis options below are then ignored), and turns on the
  // BUGGIFY sites of the fake disk and network at random. A sweep over seeds so covers corners
  // that one fixed mix dilutes.
  bool swarm = false;
  // BUGGIFY (FoundationDB): fault sites inside the simulated disk and network, each enabled for
  // a run with probability 1/2 and firing at random when reached: a crash inside the fsync of a
  // vote, slow fsyncs, failed state fetches, the store written out at random points.
  bool buggify = false;
  int ops = 200;  // operations issued during the fault phase (recipes: not polls, keep-alives)
  int clients = 4;
  int final_ops = 2;  // successful operations (recipes: whole cycles) each client must finish
                      // after the heal
  int keys = 3;
  raft::PlantedBugs bugs;
  Workload workload = Workload::kRegister;
  int64_t permits = 2;  // semaphore workload
  int watchers = 0;     // watch streams held open (and resumed) through the run, then checked
  WorkloadBugs workload_bugs;
  raft::ReadMode read_mode = raft::ReadMode::kReadIndex;
  uint32_t election_ticks = 10;
  uint64_t tick_us = 10'000;  // one tick is 10 ms of virtual time
  uint64_t client_timeout_us = 300'000;
  uint32_t liveness_ticks = 300;  // after the heal: leader and all final ops within this
  uint64_t compact_every = 40;    // entries applied between snapshots
  // With crash faults: chance that a node is killed within 3 ms of each election.
  double election_crash_probability = 0.25;
  uint64_t election_crash_max_delay_us = 3'000;  // the crash lands 0..this after the election
  // With partition faults: chance that a new leader is cut off from every other member right
  // after its election, while clients still reach it.
  double election_isolate_probability = 0.0;
  uint64_t fault_gap_max_us = 600'000;  // between fault injections, 100 ms to this
  uint32_t max_inflight_msgs = 0;       // replication window; 0 picks one per seed
  bool verbose = false;                 // elections, faults, heals
  bool trace = false;                   // every message and client event
};

struct SimResult {
  uint64_t seed = 0;
  uint64_t ops_ok = 0, ops_fail = 0, ops_info = 0;
  uint64_t committed = 0;  // highest index applied anywhere
  uint64_t elections = 0;  // distinct (term, leader) pairs observed
  uint64_t messages_sent = 0, messages_dropped = 0, messages_duplicated = 0;
  uint64_t snapshots_sent = 0;
  uint64_t state_fetches = 0, state_fetch_failures = 0;  // snapshot states fetched from leaders
  std::map<std::string, uint64_t> faults_injected;
  std::string swarm;  // the mix a swarm run drew, as flags
  std::vector<check::Violation> violations;
  check::LinearizabilityResult linearizability;
  std::vector<check::Operation> history;  // the register workload's client history
  // Lock and semaphore workloads, summed over clients.
  uint64_t cycles = 0, acquisitions = 0, acts_ok = 0, acts_refused = 0, leases_lost = 0;
  uint64_t client_pauses = 0;
  uint64_t lease_expiries = 0;  // leases the lessor revoked
  // Watchers.
  uint64_t watch_streams = 0, watch_events = 0, watch_compaction_cancels = 0;
  bool liveness_ok = true;
  std::string liveness_detail;
  uint64_t end_time_us = 0;

  bool passed() const {
    // An unknown verdict fails too: clean runs check in a few hundred states, so hitting the
    // limit means something is badly off.
    return violations.empty() && liveness_ok &&
           linearizability.verdict == check::Verdict::kLinearizable;
  }
};

// Runs one simulation, writing its event log (per the verbosity options) to `log`.
SimResult run_simulation(const SimOptions& options, std::ostream& log);
// The summary block printed after a run.
void print_summary(const SimOptions& options, const SimResult& result, std::ostream& out);
// The command line that replays `options` exactly.
std::string replay_command(const SimOptions& options);

}  // namespace synod::sim
