// What a simulator run is asked to do: its size, workload, faults, planted bugs and nemesis
// intensities, with the names the command line and the sweeps give them.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "replica/engine_factory.h"

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
  kByzantine,   // PBFT: `byzantine` replicas run adversarial behaviours (sim/byzantine.h)
  kRebalance,   // sharded: take a host off the ring or put it back; its shards move
};
const char* to_string(Fault f);
// Parses "partition,crash" (or "all", "none"). On error returns false and sets `error`.
bool parse_faults(const std::string& list, std::set<Fault>& out, std::string& error);
// What a sweep runs when no fault list is given: swarm testing, each seed its own mix.
inline constexpr const char* kSwarm = "swarm";
std::string fault_list(const std::set<Fault>& faults);
// Every crash and omission fault, in the order of the enum ("all" and the swarm's menu);
// Byzantine faults are asked for by name.
inline constexpr Fault kAllFaults[] = {
    Fault::kPartition, Fault::kCrash,      Fault::kPause,    Fault::kLoss,
    Fault::kDuplicate, Fault::kReorder,    Fault::kLatency,  Fault::kDrift,
    Fault::kTopology,  Fault::kMembership, Fault::kTransfer,
};

// What the clients run: the register workload (get, put, cas over a few keys, checked for
// linearizability), or a lock or semaphore recipe (sim/recipe_client.h, checked by
// check/coordination.h).
enum class Workload : uint8_t { kRegister, kLock, kSemaphore, kBank };
const char* to_string(Workload w);
bool parse_workload(const std::string& name, Workload& out, std::string& error);

// Bugs planted outside the Raft core, to prove the coordination and watch checkers fail.
struct WorkloadBugs {
  bool unfenced = false;                  // lock holders write with a plain put
  bool extra_permit = false;              // semaphore clients count one permit too many
  bool lessor_keeps_deadlines = false;    // a new leader does not restart leases (kv::LessorBugs)
  bool watch_resume_gap = false;          // a watcher resumes at its last revision + 2
  bool watch_resume_duplicate = false;    // a watcher resumes at its last revision
  bool client_accepts_one_reply = false;  // a PBFT client takes the first reply, not f + 1
  bool remove_before_catch_up = false;    // a move removes the old replica, then adds the new
  bool commit_before_decision = false;    // bank: participants commit before the decision
  bool cut_ignores_in_flight = false;     // bank: a cut's messages in flight are not delivered
};

struct SimOptions;
// Names of the bugs that tests plant (each engine's PlantedBugs and WorkloadBugs).
bool parse_bug(const std::string& name, SimOptions& options, std::string& error);

// The most hosts a sharded run may have (an unsharded one: 9).
inline constexpr int kMaxShardedHosts = 128;

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 5;
  replica::EngineKind engine = replica::EngineKind::kRaft;
  // The FLP duel (sim/duel.h): an adversary that holds every leader's traffic until a rival
  // preempts it, for duel_rounds rounds, then lets the network be timely. No other faults.
  bool duel = false;
  uint64_t duel_rounds = 10'000;
  std::set<Fault> faults;
  // PBFT with Byzantine faults: how many replicas are Byzantine, and the f the replicas are
  // configured to tolerate (quorums of nodes - f). At nodes < 3f + 1 quorums need not meet in
  // an honest replica: the simulator shows what breaks.
  int byzantine = 1;
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
  // Sharded: `shards` data groups of `replication` replicas each and a metadata group, placed
  // on the `nodes` hosts by the consistent-hash ring (sim/cluster.h). 0: one group on every node.
  int shards = 0;
  int replication = 3;
  // Bank: cross-shard transactions by three-phase commit (a precommit in every participant
  // between the votes and the decision) instead of two.
  bool three_phase = false;
  replica::EngineBugs bugs;
  Workload workload = Workload::kRegister;
  int64_t permits = 2;  // semaphore workload
  int watchers = 0;     // watch streams held open (and resumed) through the run, then checked
  WorkloadBugs workload_bugs;
  raft::ReadMode read_mode = raft::ReadMode::kReadIndex;
  uint32_t election_ticks = 10;
  uint64_t tick_us = 10'000;  // one tick is 10 ms of virtual time
  uint64_t client_timeout_us = 300'000;
  uint32_t liveness_ticks = 300;  // after the heal: leader and all final ops within this
                                  // (PBFT: twice this, liveness_bound_ticks)
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

// PBFT: the f the replicas are configured to tolerate: the Byzantine count in a run with
// Byzantine faults, otherwise the most the cluster's size tolerates, (nodes - 1) / 3.
int pbft_faults(const SimOptions& options);

// The liveness bound of a run: PBFT gets twice the others' (three phases a request, and a
// Byzantine replica that may be slow is in every quorum when an honest one is slow too).
uint32_t liveness_bound_ticks(const SimOptions& options);

// What makes no sense together (Byzantine faults without PBFT, ...): false and why.
bool check_options(const SimOptions& options, std::string& error);

// The command line that replays `options` exactly.
std::string replay_command(const SimOptions& options);

}  // namespace synod::sim
