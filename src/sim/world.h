// The world a simulator run happens in, shared by its parts (nodes, clients, watchers, nemesis):
// the options, the seeded generators, the virtual clock and its event queue, the network, the
// fault sites of the simulated disk and network (BUGGIFY), and what the run has found so far.
// The parts talk to each other by scheduling events here; the run's loop hands each event to
// the part it is for.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/consensus/types.h"
#include "core/rand.h"
#include "etcdserverpb/rpc.pb.h"
#include "sim/kv_command.h"
#include "sim/network.h"
#include "sim/options.h"
#include "sim/result.h"

namespace synod::sim {

enum class EventType : uint8_t {
  kTick,
  kDeliver,
  kFsyncDone,
  kClientRequest,
  kClientResponse,
  kClientTimeout,
  kClientNext,
  kFault,
  kHeal,
  kMembership,
  kTargetedCrash,
  kWatchConnect,
  kWatchDeliver,
  kFetchServe,       // a state fetch reaches the member asked (node), from `client` (the asker)
  kStateFetched,     // its answer reaches the asker (node)
  kStoreFlushed,     // a node's store flush is done
  kStateRetained,    // a node's retained state is written and digested (index, image: digest)
  kTargetedIsolate,  // cut a new leader off from the other members
  kRebalance,        // the rebalancer's next step (sharded runs)
  kTxnResolve,       // the transaction resolver's next step (bank workload)
};

enum class ReplyStatus : uint8_t { kOk, kRejected };

struct ClientReply {
  uint64_t seq = 0;
  ReplyStatus status = ReplyStatus::kOk;
  KvResult result;
  int leader_hint = 0;
  int from = 0;  // the node that answered
};

struct Event {
  uint64_t time = 0;
  uint64_t seq = 0;
  EventType type = EventType::kTick;
  int node = 0;        // node events: the replica's slot in its group
  uint32_t group = 0;  // node events: the replication group (0 unless the run is sharded)
  int client = 0;
  uint64_t gen = 0;  // node incarnation, or client op seq
  int tag = 0;       // fault kind for kHeal
  raft::Message msg;
  KvCommand request;
  std::string bft;  // kClientRequest, PBFT: the client's authenticated request (writes)
  ClientReply reply;
  etcdserverpb::WatchResponse watch;  // kWatchDeliver; gen is the stream
  uint64_t index = 0;     // kFetchServe: min index; kStoreFlushed: applied; kStateFetched: image's
  bool retained = false;  // kFetchServe: a retained state is asked for
  std::optional<std::string> image;  // kStateFetched: the state, or nullopt
  std::string error;                 // kStateFetched: why not
};

// BUGGIFY (FoundationDB): fault sites inside the simulated disk and network, each enabled for
// a run or not (SimOptions::buggify).
struct BuggifySites {
  bool crash_in_vote_fsync = false;  // a voter dies before its vote is durable
  bool slow_fsync = false;           // an fsync takes 50-200 ms
  bool failed_fetch = false;         // half the state fetches fail
  bool store_written_out = false;    // RocksDB writes its memtables out often
};

class World {
 public:
  World(const SimOptions& options, std::ostream& log);

  // Events: run in time order, and at the same instant in the order they were scheduled.
  // The returned event may be filled in, but not moved in time.
  Event& schedule(uint64_t at, EventType type);
  // `event`, filled in already, at `at`.
  void schedule(uint64_t at, Event event);
  // The earliest event, taken out of the queue (freed once handled); the clock stays.
  std::unique_ptr<Event> next_event();
  // The clock moves to `time` (an event's, so never backwards).
  void advance(uint64_t time) { now_ = time; }
  bool idle() const { return queue_.empty(); }
  size_t pending() const { return queue_.size(); }
  uint64_t now() const { return now_; }

  // The fault phase ends with the heal; the final phase after it demands progress.
  bool fault_phase() const { return !healed_; }
  void heal() {
    healed_ = true;
    heal_time_ = now_;
  }
  uint64_t heal_time() const { return heal_time_; }
  // BUGGIFY: whether an enabled fault site fires this time. Never after the heal.
  bool buggify(bool site, double p = 0.25) { return site && fault_phase() && disk_rng.chance(p); }

  // A line of the run's log, stamped with the virtual time.
  std::ostream& at();
  // Records a violation found outside the Raft invariants (store, watch, coordination).
  void flag(const std::string& invariant, const std::string& detail);

  SimOptions options;  // a swarm run fills in what it drew
  std::ostream& log;
  Rng rng;  // forks the others
  Rng net_rng, fault_rng, client_rng, disk_rng;
  Rng watch_rng{0};
  Network net;
  LinkParams baseline;  // the network's parameters outside network faults
  BuggifySites sites;
  SimResult result;
  std::vector<check::Violation> violations;  // StoreApply, StoreRestore, WatchStream, ...

 private:
  std::vector<std::unique_ptr<Event>> queue_;  // a heap: earliest time, then lowest seq, on top
  uint64_t next_seq_ = 0;
  uint64_t now_ = 0;
  bool healed_ = false;
  uint64_t heal_time_ = 0;
};

}  // namespace synod::sim
