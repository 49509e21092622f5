#include "sim/simulation.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <memory>
#include <optional>
#include <queue>
#include <sstream>

#include "base/assert.h"
#include "check/watch.h"
#include "core/rand.h"
#include "kv/lessor.h"
#include "kv/recipe.h"
#include "kv/watch_hub.h"
#include "replica/driver.h"
#include "replica/memory_log.h"
#include "sim/kv_machine.h"
#include "sim/network.h"
#include "sim/recipe_client.h"

namespace synod::sim {

using raft::Index;
using raft::NodeId;

// ---------------------------------------------------------------------------------------------
// Names.

namespace {

struct FaultName {
  Fault fault;
  const char* name;
};
constexpr FaultName kFaultNames[] = {
    {Fault::kPartition, "partition"}, {Fault::kCrash, "crash"},
    {Fault::kPause, "pause"},         {Fault::kLoss, "loss"},
    {Fault::kDuplicate, "dup"},       {Fault::kReorder, "reorder"},
    {Fault::kLatency, "latency"},     {Fault::kDrift, "drift"},
    {Fault::kTopology, "topology"},   {Fault::kMembership, "membership"},
    {Fault::kTransfer, "transfer"},
};

}  // namespace

const char* to_string(Fault f) {
  for (const auto& [fault, name] : kFaultNames) {
    if (fault == f) return name;
  }
  return "?";
}

bool parse_faults(const std::string& list, std::set<Fault>& out, std::string& error) {
  out.clear();
  if (list == kSwarm) return true;  // the caller sets SimOptions::swarm
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item == "none") continue;
    if (item == "all") {
      for (const auto& [fault, name] : kFaultNames) out.insert(fault);
      continue;
    }
    bool found = false;
    for (const auto& [fault, name] : kFaultNames) {
      if (item == name) {
        out.insert(fault);
        found = true;
      }
    }
    if (!found) {
      std::string known;
      for (const auto& [fault, name] : kFaultNames)
        known += std::string(known.empty() ? "" : ",") + name;
      error = "unknown fault '" + item + "' (known: " + known + ",all,none)";
      return false;
    }
  }
  return true;
}

std::string fault_list(const std::set<Fault>& faults) {
  if (faults.empty()) return "none";
  std::string out;
  for (Fault f : faults) out += std::string(out.empty() ? "" : ",") + to_string(f);
  return out;
}

namespace {

constexpr std::pair<Workload, const char*> kWorkloadNames[] = {{Workload::kRegister, "register"},
                                                               {Workload::kLock, "lock"},
                                                               {Workload::kSemaphore, "semaphore"}};

// Every plantable bug: its name and the flag it sets.
struct BugName {
  const char* name;
  bool raft::PlantedBugs::*raft_flag;
  bool WorkloadBugs::*workload_flag;
};
constexpr BugName kBugNames[] = {
    {"vote-without-log-check", &raft::PlantedBugs::vote_without_log_check, nullptr},
    {"commit-previous-term", &raft::PlantedBugs::commit_previous_term_by_count, nullptr},
    {"vote-before-persist", &raft::PlantedBugs::vote_before_persist, nullptr},
    {"read-index-without-quorum", &raft::PlantedBugs::read_index_without_quorum, nullptr},
    {"unfenced-lock", nullptr, &WorkloadBugs::unfenced},
    {"extra-permit", nullptr, &WorkloadBugs::extra_permit},
    {"lessor-keeps-deadlines", nullptr, &WorkloadBugs::lessor_keeps_deadlines},
    {"watch-resume-gap", nullptr, &WorkloadBugs::watch_resume_gap},
    {"watch-resume-duplicate", nullptr, &WorkloadBugs::watch_resume_duplicate},
};

}  // namespace

const char* to_string(Workload w) {
  for (const auto& [workload, name] : kWorkloadNames) {
    if (workload == w) return name;
  }
  return "?";
}

bool parse_workload(const std::string& name, Workload& out, std::string& error) {
  for (const auto& [workload, known] : kWorkloadNames) {
    if (name == known) {
      out = workload;
      return true;
    }
  }
  error = "unknown workload '" + name + "' (known: register, lock, semaphore)";
  return false;
}

bool parse_bug(const std::string& name, SimOptions& options, std::string& error) {
  for (const BugName& b : kBugNames) {
    if (name != b.name) continue;
    if (b.raft_flag != nullptr) options.bugs.*b.raft_flag = true;
    if (b.workload_flag != nullptr) options.workload_bugs.*b.workload_flag = true;
    return true;
  }
  std::string known;
  for (const BugName& b : kBugNames) known += std::string(known.empty() ? "" : ", ") + b.name;
  error = "unknown bug '" + name + "' (known: " + known + ")";
  return false;
}

std::string replay_command(const SimOptions& o) {
  std::ostringstream os;
  os << "synod sim --seed " << o.seed << " --nodes " << o.nodes << " --faults "
     << (o.swarm ? kSwarm : fault_list(o.faults)) << " --ops " << o.ops << " --clients "
     << o.clients;
  if (o.workload != Workload::kRegister) os << " --workload " << to_string(o.workload);
  if (o.workload == Workload::kSemaphore) os << " --permits " << o.permits;
  if (o.watchers != 0) os << " --watchers " << o.watchers;
  for (const BugName& b : kBugNames) {
    if ((b.raft_flag != nullptr && o.bugs.*b.raft_flag) ||
        (b.workload_flag != nullptr && o.workload_bugs.*b.workload_flag)) {
      os << " --bug " << b.name;
    }
  }
  if (o.read_mode == raft::ReadMode::kLease) os << " --lease-reads";
  if (o.max_inflight_msgs != 0) os << " --window " << o.max_inflight_msgs;
  if (o.swarm) return os.str();  // the seed draws the rest
  if (o.buggify) os << " --buggify";
  if (o.election_crash_probability != SimOptions{}.election_crash_probability) {
    os << " --election-crash " << o.election_crash_probability;
  }
  if (o.election_crash_max_delay_us != SimOptions{}.election_crash_max_delay_us) {
    os << " --election-crash-delay-us " << o.election_crash_max_delay_us;
  }
  if (o.election_isolate_probability != SimOptions{}.election_isolate_probability) {
    os << " --election-isolate " << o.election_isolate_probability;
  }
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// The simulation.

namespace {

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
  kTargetedIsolate,  // cut a new leader off from the other members
};

enum class ReplyStatus : uint8_t { kOk, kRejected };

struct ClientReply {
  uint64_t seq = 0;
  ReplyStatus status = ReplyStatus::kOk;
  KvResult result;
  int leader_hint = 0;
};

struct Event {
  uint64_t time = 0;
  uint64_t seq = 0;
  EventType type = EventType::kTick;
  int node = 0;
  int client = 0;
  uint64_t gen = 0;  // node incarnation, or client op seq
  int tag = 0;       // fault kind for kHeal
  raft::Message msg;
  KvCommand request;
  ClientReply reply;
  etcdserverpb::WatchResponse watch;  // kWatchDeliver; gen is the stream
  uint64_t index = 0;                 // kFetchServe: min index; kStoreFlushed: applied
  std::optional<std::string> image;   // kStateFetched: the state, or nullopt
  std::string error;                  // kStateFetched: why not
};

struct EventOrder {
  bool operator()(const std::unique_ptr<Event>& a, const std::unique_ptr<Event>& b) const {
    return a->time != b->time ? a->time > b->time : a->seq > b->seq;
  }
};

class Sim;
struct Node;

// A simulated member's I/O under the one replica driver: a fake disk (the log as raft::Persisted,
// written at fsync events; the store's durable image), the simulated network, and the state
// machine. The server's Node is the other Host; the Ready loop, snapshots, compaction and reads
// are the driver's in both.
class NodeHost final : public replica::Host {
 public:
  NodeHost(Sim& sim, Node& node) : sim_(sim), node_(node) {}
  bool persist(const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state, bool sync) override;
  void save_snapshot(const raft::Snapshot& snapshot) override;
  void send(std::vector<raft::Message> messages) override;
  void fetch_state(raft::NodeId from, uint64_t min_index) override;
  uint64_t applied_index() const override;
  void apply(std::span<const raft::Entry> entries) override;
  bool restore(const raft::SnapshotMeta& meta, const std::string& image) override;
  void flush_state(uint64_t applied) override;

 private:
  Sim& sim_;
  Node& node_;
};

struct Node {
  int id = 0;
  bool up = true;
  bool paused = false;
  uint64_t gen = 0;
  uint64_t tick_us = 0;
  std::unique_ptr<raft::Raft> raft;
  std::unique_ptr<NodeHost> host;
  std::unique_ptr<replica::Driver> driver;
  // The fake disk. `durable` is what survives a crash; `unsynced` a write made without fsync
  // (lost by a crash); `writing` the write whose fsync is in flight.
  raft::Persisted durable;
  raft::Persisted unsynced;
  bool has_unsynced = false;
  std::optional<std::pair<std::vector<raft::Entry>, std::optional<raft::HardState>>> writing;
  // The store's durable image, as a flush (or RocksDB on its own) last left it; empty: none.
  std::string store_image;
  bool founding = true;                // started with the founding membership (not added later)
  std::unique_ptr<KvMachine> kv;       // the replica's kv::Store; its applied index is the node's
  std::unique_ptr<kv::Lessor> lessor;  // lease expiry, as the server's Node runs it
  std::unique_ptr<kv::WatchHub> hub;   // the node's watchers
  std::vector<kv::WatchOutput> watch_out;
  int64_t compaction_proposed = 0;  // highest MVCC compaction revision this leader proposed
  std::map<std::pair<uint32_t, uint64_t>, KvCommand> writes;
  std::vector<Event> deferred;  // events that reached a paused node
};

struct Client {
  uint32_t id = 0;
  uint64_t seq = 0;
  bool busy = false;
  bool done = false;
  int leader_hint = 0;
  int final_ok = 0;
  check::Operation op;
  std::map<std::string, std::string> last_seen;  // key -> value this client last saw
  std::unique_ptr<RecipeClient> recipe;          // lock and semaphore workloads
  uint64_t sent_us = 0;                          // when the outstanding request left
  uint64_t pause_next_us = 0;                    // a pause that strikes before its next act
  // Keep-alives go over one stream to one member, as clientv3's do, until it fails.
  int keepalive_node = 0;
  bool keepalive_outstanding = false;
};

// A client holding one watch open, resumed on another node when its connection breaks. Its
// responses since the last compaction cancel form one logical stream, judged as a whole.
struct Watcher {
  int id = 0;
  std::string key, range_end;
  int node = 0;         // connected to; 0: not connected
  uint64_t stream = 0;  // of the connection
  bool awaiting_created = false;
  bool fresh = true;          // the next connection starts a new logical stream
  int64_t next_revision = 1;  // the last event's revision + 1
  uint64_t last_delivery_us = 0;
  check::WatchSpec spec;  // of the current logical stream
  std::vector<check::WatchReceived> received;
  std::vector<std::pair<check::WatchSpec, std::vector<check::WatchReceived>>> finished;
};

class Sim {
  friend class NodeHost;

 public:
  Sim(SimOptions o, std::ostream& log)
      : o_(o),
        log_(log),
        rng_(o.seed),
        net_rng_(rng_.fork()),
        fault_rng_(rng_.fork()),
        client_rng_(rng_.fork()),
        disk_rng_(rng_.fork()),
        net_(o.nodes) {
    baseline_ = net_.params();
  }

  SimResult run();

 private:
  static constexpr size_t kMaxPendingEvents = 2'000'000;

  // Event plumbing.
  // The returned event may be filled in, but not moved in time.
  Event& schedule(uint64_t at, EventType type) {
    auto owned = std::make_unique<Event>();
    Event& e = *owned;
    e.time = at;
    e.seq = next_seq_++;
    e.type = type;
    queue_.push_back(std::move(owned));
    std::push_heap(queue_.begin(), queue_.end(), EventOrder{});
    return e;
  }
  // The earliest event, taken out of the queue (freed once handled).
  std::unique_ptr<Event> next_event() {
    std::pop_heap(queue_.begin(), queue_.end(), EventOrder{});
    std::unique_ptr<Event> e = std::move(queue_.back());
    queue_.pop_back();
    return e;
  }
  void dispatch(const Event& e);
  bool node_event_blocked(const Event& e);
  std::ostream& at() {
    log_ << "[" << now_ / 1000 << "ms] ";
    return log_;
  }

  // Nodes.
  void start_node(int id);
  raft::Config node_config(int id) const;
  void after_input(Node& n);
  void on_fsync(Node& n);
  void apply(Node& n, std::span<const raft::Entry> entries);
  void serve_read(Node& n, const KvCommand& req);
  void maybe_compact_history(Node& n);
  bool restore_store(Node& n, const raft::SnapshotMeta& meta, const std::string& image);
  void request_state(Node& n, int from, uint64_t min_index);
  void serve_state(const Event& e);
  void state_fetched(const Event& e);
  void check_store_convergence();
  void send(Node& n, const std::vector<raft::Message>& msgs);
  void crash(Node& n);
  void restart(Node& n);
  void on_client_request(Node& n, const KvCommand& req);
  void reply(Node& n, const KvCommand& req, ReplyStatus status, KvResult result);
  void answer_keepalive(Node& n, const KvCommand& req);
  void lessor_tick(Node& n);
  void record_first_apply(Node& n, const KvApplied& applied, bool ok);

  // Watchers.
  void watch_connect(Watcher& w);
  void watch_disconnect(Watcher& w, bool close);
  void flush_watch(Node& n);
  void watch_deliver(Watcher& w, uint64_t stream, const etcdserverpb::WatchResponse& r);
  void check_watchers();
  void observe(Node& n);
  Node* leader();

  // Clients.
  void client_next(Client& c);
  void recipe_next(Client& c);
  void send_request(Client& c, KvCommand req, uint64_t wait_us);
  void client_reply(Client& c, const ClientReply& r);
  void client_timeout(Client& c, uint64_t seq);
  void finish_op(Client& c, check::Outcome outcome);

  // Faults.
  void inject_fault();
  void pause_a_client();
  void heal(Fault f);
  void heal_all();
  void draw_swarm();
  void isolate_after_election(int node);
  bool removal_durable_everywhere() const;
  // BUGGIFY: whether an enabled fault site fires this time. Never after the heal: the final
  // phase demands progress from a healthy cluster.
  bool buggify(bool site, double p = 0.25) { return site && fault_phase() && disk_rng_.chance(p); }
  void membership_step();
  bool fault_phase() const { return !healed_; }

  SimOptions o_;  // a swarm run fills in what it drew
  std::ostream& log_;
  Rng rng_;
  Rng net_rng_, fault_rng_, client_rng_, disk_rng_;
  Network net_;
  LinkParams baseline_;
  check::RaftInvariants inv_;
  std::vector<check::Violation> store_violations_;  // StoreApply, StoreRestore, StoreConvergence
  SimResult result_;

  std::vector<std::unique_ptr<Event>> queue_;  // a heap in EventOrder
  uint64_t next_seq_ = 0;
  uint64_t now_ = 0;

  std::vector<Node> nodes_;  // index 0 unused
  std::vector<Client> clients_;
  std::vector<check::Operation> history_;
  std::vector<Watcher> watchers_;
  std::map<uint64_t, int> watcher_of_stream_;
  uint64_t next_stream_ = 0;
  Rng watch_rng_{0};
  // The log as first applied anywhere: the truth the coordination and watch checks judge by.
  Index truth_index_;
  std::vector<check::WatchEvent> truth_events_;
  std::vector<check::FencedAct> fenced_acts_;
  std::vector<check::Acquisition> acquisitions_;
  std::vector<check::HolderSet> slot_holders_;
  std::map<int64_t, check::LeaseLife> leases_;    // by ID, the current grant's
  std::vector<check::LeaseLife> retired_leases_;  // earlier grants of a reused ID
  raft::ConfState initial_conf_;
  std::set<std::pair<uint64_t, int>> leaders_seen_;
  int issued_ = 0;
  uint64_t max_msg_bytes_ = 256;
  uint32_t max_inflight_msgs_ = 4;

  // BUGGIFY sites enabled for this run (SimOptions::buggify).
  struct BuggifySites {
    bool crash_in_vote_fsync = false;  // a voter dies before its vote is durable
    bool slow_fsync = false;           // an fsync takes 50-200 ms
    bool failed_fetch = false;         // half the state fetches fail
    bool store_written_out = false;    // RocksDB writes its memtables out often
  } sites_;

  // Faults in effect.
  bool healed_ = false;
  uint64_t heal_time_ = 0;
  uint64_t first_leader_after_heal_ = 0;
  bool partition_active_ = false;
  bool net_fault_active_ = false;
  bool topology_active_ = false;
  int membership_stage_ = 0;  // 0 idle, 1 removing, 2 adding learner, 3 promoting
  int membership_node_ = 0;
  int membership_tries_ = 0;
  Index membership_index_;  // the removal entry, once proposed
  raft::Term membership_term_;
};

raft::Config Sim::node_config(int id) const {
  raft::Config c;
  c.id = NodeId(id);
  c.seed = o_.seed * 1000 + id;
  c.election_ticks = o_.election_ticks;
  c.heartbeat_ticks = 1;
  c.read_mode = o_.read_mode;
  // Replication shape varies by seed: small messages and windows make replication take many
  // rounds, which is where interleavings with faults get interesting.
  c.max_msg_bytes = max_msg_bytes_;
  c.max_inflight_msgs = max_inflight_msgs_;
  c.snapshot_chunk_bytes = 128;
  c.bugs = o_.bugs;
  return c;
}

void Sim::start_node(int id) {
  Node& n = nodes_[id];
  n.up = true;
  n.paused = false;
  ++n.gen;
  n.writing.reset();
  n.has_unsynced = false;
  n.writes.clear();
  raft::Config c = node_config(id);
  c.seed += n.gen * 7919;
  n.kv = std::make_unique<KvMachine>();
  // As the server's: a new leader extends leases by the election timeout; a revoke that has
  // not applied is proposed again after a few election timeouts.
  const int64_t election_us = int64_t{o_.election_ticks} * static_cast<int64_t>(o_.tick_us);
  n.lessor = std::make_unique<kv::Lessor>(
      election_us, 5 * election_us,
      kv::LessorBugs{.keep_deadlines_on_promotion = o_.workload_bugs.lessor_keeps_deadlines});
  n.hub = std::make_unique<kv::WatchHub>(1 + static_cast<int64_t>(n.gen % 4));
  n.watch_out.clear();
  for (Watcher& w : watchers_) {
    if (w.node == id) watch_disconnect(w, false);  // the old process's streams are gone
  }
  n.compaction_proposed = 0;
  // Recovery, as the server's: the store as it was last made durable (at or past the log's
  // snapshot, which refers to it), then the log's entries after what the store applied.
  if (!n.store_image.empty() && !n.kv->restore(n.store_image)) {
    store_violations_.push_back(
        {"StoreRestore", "n" + std::to_string(id) + ": its durable store image does not restore"});
  }
  replica::Driver::recover_commit(n.durable, n.kv->applied().value);
  c.applied = n.kv->applied();
  // A founding member starts from the founding membership, as the server does with
  // --initial-cluster-state new, even if it died before its first fsync; a member added later
  // learns its membership from the leader.
  if (n.founding) c.initial_conf = initial_conf_;
  n.raft = std::make_unique<raft::Raft>(c, n.durable);
  n.host = std::make_unique<NodeHost>(*this, n);
  replica::DriverOptions driver_options;
  driver_options.snapshot_entries = o_.compact_every;
  n.driver = std::make_unique<replica::Driver>(
      *n.raft, *n.host, driver_options,
      n.durable.snapshot ? n.durable.snapshot->meta.index.value : 0);
  n.driver->set_ready_observer([this](const Engine& engine, const raft::Ready& rd) {
    inv_.on_ready(static_cast<const raft::Raft&>(engine), rd);
  });
  Event& t = schedule(now_ + n.tick_us, EventType::kTick);
  t.node = id;
  t.gen = n.gen;
}

void Sim::after_input(Node& n) {
  inv_.on_step(*n.raft);
  observe(n);
  if (!n.up || n.paused) return;
  n.driver->run();
  for (int i = 0; i < 100 && n.hub->has_unsynced(); ++i)
    n.hub->catch_up(n.kv->store(), &n.watch_out);
  flush_watch(n);
}

void Sim::observe(Node& n) {
  if (n.raft->role() != raft::Role::kLeader) return;
  if (leaders_seen_.emplace(n.raft->term().value, n.id).second) {
    ++result_.elections;
    if (o_.verbose) at() << "n" << n.id << " is leader of term " << n.raft->term() << "\n";
    // Leader-targeted nemesis: elections are where Raft's subtle bugs live (a vote not yet
    // durable, a new leader's first Appends half-sent), so crash someone right after one.
    if (fault_phase() && o_.faults.contains(Fault::kCrash) &&
        fault_rng_.chance(o_.election_crash_probability)) {
      Event& e = schedule(now_ + fault_rng_.range(0, o_.election_crash_max_delay_us),
                          EventType::kTargetedCrash);
      e.node = fault_rng_.chance(0.5) ? n.id : 1 + static_cast<int>(fault_rng_.uniform(o_.nodes));
    }
    // A leader cut off right after its election, while clients still reach it: what a deposed
    // leader may still answer is where stale reads and lost writes show.
    if (fault_phase() && o_.faults.contains(Fault::kPartition) &&
        fault_rng_.chance(o_.election_isolate_probability)) {
      Event& e = schedule(now_ + fault_rng_.range(0, o_.election_crash_max_delay_us),
                          EventType::kTargetedIsolate);
      e.node = n.id;
    }
  }
  if (healed_ && first_leader_after_heal_ == 0) first_leader_after_heal_ = now_;
}

Node* Sim::leader() {
  Node* best = nullptr;
  for (size_t i = 1; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (!n.up || n.paused || n.raft->role() != raft::Role::kLeader) continue;
    if (best == nullptr || n.raft->term() > best->raft->term()) best = &n;
  }
  return best;
}

// --- The fake disk, network and state machine under the driver ---------------------------------

bool NodeHost::persist(const std::vector<raft::Entry>& entries,
                       const std::optional<raft::HardState>& hard_state, bool sync) {
  if (!sync) {
    // Written, not synced: a crash before the next sync loses it, as a page cache would.
    replica::write_log(node_.unsynced, entries, hard_state);
    node_.has_unsynced = true;
    return true;
  }
  node_.writing.emplace(entries, hard_state);
  // fsync latency: usually fast, with a slow tail, as real disks have.
  uint64_t fsync_us = sim_.disk_rng_.chance(0.1) ? sim_.disk_rng_.range(5'000, 20'000)
                                                 : sim_.disk_rng_.range(100, 1'500);
  if (sim_.buggify(sim_.sites_.slow_fsync, 0.05)) fsync_us = sim_.disk_rng_.range(50'000, 200'000);
  // A vote is promised only once durable: a crash inside its fsync must lose nothing promised.
  const raft::HardState& was = node_.durable.hard_state;
  if (hard_state && (hard_state->vote != was.vote || hard_state->term != was.term) &&
      sim_.buggify(sim_.sites_.crash_in_vote_fsync, 0.5)) {
    Event& crash =
        sim_.schedule(sim_.now_ + sim_.disk_rng_.range(0, fsync_us - 1), EventType::kTargetedCrash);
    crash.node = node_.id;
    crash.tag = 1;  // counted apart from the crashes after elections
  }
  Event& e = sim_.schedule(sim_.now_ + fsync_us, EventType::kFsyncDone);
  e.node = node_.id;
  e.gen = node_.gen;
  return false;
}

void NodeHost::save_snapshot(const raft::Snapshot& snapshot) {
  // As the WAL's: the snapshot record syncs what was written before it.
  if (node_.has_unsynced) {
    replica::write_log(node_.durable, node_.unsynced.entries, node_.unsynced.hard_state);
    node_.unsynced = {};
    node_.has_unsynced = false;
  }
  replica::write_snapshot(node_.durable, snapshot);
}

void NodeHost::send(std::vector<raft::Message> messages) {
  sim_.send(node_, messages);
}

void NodeHost::fetch_state(raft::NodeId from, uint64_t min_index) {
  sim_.request_state(node_, static_cast<int>(from.value), min_index);
}

uint64_t NodeHost::applied_index() const {
  return node_.kv->applied().value;
}

void NodeHost::apply(std::span<const raft::Entry> entries) {
  sim_.apply(node_, entries);
}

bool NodeHost::restore(const raft::SnapshotMeta& meta, const std::string& image) {
  return sim_.restore_store(node_, meta, image);
}

void NodeHost::flush_state(uint64_t applied) {
  // RocksDB writing its memtables out: a few ms to tens of ms, off the raft thread.
  Event& e =
      sim_.schedule(sim_.now_ + sim_.disk_rng_.range(1'000, 30'000), EventType::kStoreFlushed);
  e.node = node_.id;
  e.gen = node_.gen;
  e.index = applied;
}

void Sim::on_fsync(Node& n) {
  SYNOD_ASSERT(n.writing.has_value());
  if (n.has_unsynced) {
    replica::write_log(n.durable, n.unsynced.entries, n.unsynced.hard_state);
    n.unsynced = {};
    n.has_unsynced = false;
  }
  replica::write_log(n.durable, n.writing->first, n.writing->second);
  n.writing.reset();
  n.driver->persisted();
  maybe_compact_history(n);
  after_input(n);
}

void Sim::apply(Node& n, std::span<const raft::Entry> entries) {
  for (const raft::Entry& e : entries) {
    SYNOD_ASSERT(e.index > n.kv->applied());
    inv_.on_apply(n.raft->id(), e);
    result_.committed = std::max(result_.committed, e.index.value);
    if (e.type != raft::EntryType::kNormal || e.data.empty()) {
      n.kv->advance(e.index);  // leader no-op or conf change: no KV effect
      continue;
    }
    const KvApplied applied = n.kv->apply(e.index, e.data);
    if (applied.store_error) {
      std::ostringstream os;
      os << "n" << n.id << " index " << e.index << ": " << *applied.store_error;
      store_violations_.push_back({"StoreApply", os.str()});
    }
    const bool ok = applied.result && !applied.result->error;
    if (applied.result && applied.result->error && o_.workload == Workload::kRegister) {
      // The register workload's puts and txns are always valid: a refusal is a store bug.
      std::ostringstream os;
      os << "n" << n.id << " index " << e.index << ": " << *applied.result->error;
      store_violations_.push_back({"StoreApply", os.str()});
    }
    if (ok && applied.request.has_lease_grant()) {
      n.lessor->on_grant(applied.request.lease_grant().id(), applied.request.lease_grant().ttl(),
                         static_cast<int64_t>(now_));
    } else if (ok && applied.request.has_lease_revoke()) {
      n.lessor->on_revoke(applied.request.lease_revoke().id());
    }
    if (applied.changed)
      n.hub->on_write(n.kv->revision(), applied.events, n.kv->store(), &n.watch_out);
    if (e.index > truth_index_) record_first_apply(n, applied, ok);
    if (!applied.id) continue;
    auto it = n.writes.find({applied.id->client, applied.id->seq});
    if (it == n.writes.end()) continue;
    if (applied.result) reply(n, it->second, ReplyStatus::kOk, *applied.result);
    n.writes.erase(it);
  }
  // RocksDB may write its memtables out on its own at any time: the durable store then runs
  // ahead of the log's snapshot, which recovery must handle.
  if (disk_rng_.chance(0.02) || buggify(sites_.store_written_out, 0.3)) {
    n.store_image = n.kv->image();
  }
}

// The first replica to apply an entry records what the log did: every replica applies the same
// entries to the same effect (StoreConvergence checks that), so this is the cluster's history.
void Sim::record_first_apply(Node& n, const KvApplied& applied, bool ok) {
  truth_index_ = n.kv->applied();
  for (const mvccpb::Event& ev : applied.events) {
    truth_events_.push_back(check::WatchEvent{ev.kv().mod_revision(), ev.kv().key(),
                                              ev.type() == mvccpb::Event::DELETE});
  }
  if (!ok) return;
  const synodpb::Request& r = applied.request;
  const etcdserverpb::PutRequest* put = r.has_fenced_put() ? &r.fenced_put().put()
                                        : r.has_put()      ? &r.put()
                                                           : nullptr;
  if (put != nullptr && put->key() == kResourceKey) {
    // "c<client>.t<token>.<n>", as the lock client writes it.
    unsigned client = 0;
    long long token = 0;
    if (std::sscanf(put->value().c_str(), "c%u.t%lld.", &client, &token) == 2) {
      fenced_acts_.push_back({truth_index_.value, client, token});
    }
  }
  if (o_.workload == Workload::kSemaphore && applied.changed) {
    etcdserverpb::RangeRequest slots;
    slots.set_key(kSlotPrefix);
    slots.set_range_end(kv::recipe::prefix_end(kSlotPrefix));
    slots.set_keys_only(true);
    check::HolderSet now{truth_index_.value, {}};
    const KvResult got = n.kv->range(slots);
    for (const mvccpb::KeyValue& kv : got.range_response().kvs()) now.holders.push_back(kv.key());
    if (slot_holders_.empty() || slot_holders_.back().holders != now.holders) {
      slot_holders_.push_back(std::move(now));
    }
  }
  if (r.has_lease_grant()) {
    // A client whose grant timed out tries the same ID again; if the first try had landed and
    // expired meanwhile, this is a new lease under an old ID.
    auto old = leases_.find(r.lease_grant().id());
    if (old != leases_.end()) {
      retired_leases_.push_back(old->second);
      leases_.erase(old);
    }
  }
  if (r.has_lease_revoke() && !applied.id) {  // the lessor's, not a client's
    check::LeaseLife& life = leases_[r.lease_revoke().id()];
    life.id = r.lease_revoke().id();
    if (!life.revoked_by_expiry) life.revoked_at_us = now_;
    life.revoked_by_expiry = true;
    ++result_.lease_expiries;
  }
}

// thesis 6.4 step 4: the driver calls this once the state machine has caught up with the read
// index.
void Sim::serve_read(Node& n, const KvCommand& req) {
  if (req.op == KvOp::kKeepAlive) {
    answer_keepalive(n, req);
  } else if (req.op == KvOp::kRange) {
    reply(n, req, ReplyStatus::kOk, n.kv->range(req.range));
  } else {
    reply(n, req, ReplyStatus::kOk, n.kv->read(req.key));
  }
}

void Sim::maybe_compact_history(Node& n) {
  // Auto-compaction, as an etcd deployment runs it: the leader proposes an MVCC compaction that
  // keeps the last kHistoryRevisions revisions. Without it the store keeps every version, and
  // the state images fetched for snapshots grow with the run.
  static constexpr int64_t kHistoryRevisions = 8;
  if (n.raft->role() != raft::Role::kLeader) return;
  const int64_t target = n.kv->revision() - kHistoryRevisions;
  if (target - std::max<int64_t>(n.kv->compact_revision(), n.compaction_proposed) <
      kHistoryRevisions) {
    return;
  }
  if (n.raft->propose(encode_compaction(target)).status == raft::Status::kOk) {
    n.compaction_proposed = target;
  }
}

// A fetched state replaces the node's store, durably. The member that served it had applied at
// least the snapshot's index; a state that does not restore, or restores below that, is a bug
// in the store's image or in the transfer.
bool Sim::restore_store(Node& n, const raft::SnapshotMeta& meta, const std::string& image) {
  n.hub->on_restore();
  if (n.kv->restore(image) && n.kv->applied() >= meta.index) {
    n.store_image = image;
    inv_.on_snapshot_install(n.raft->id(), meta);
    return true;
  }
  std::ostringstream os;
  os << "n" << n.id << ": the state fetched for the snapshot at index " << meta.index << " ("
     << image.size() << " bytes) restores to applied index " << n.kv->applied();
  store_violations_.push_back({"StoreRestore", os.str()});
  return false;
}

// The production path of a snapshot's state (the server's Peer.FetchState): a request to the
// leader over the simulated network, the leader's whole store back. Either leg may be lost, the
// leader may be down or frozen, or behind the index asked for; the asker then hears of the
// failure after a timeout and its driver tries again.
void Sim::request_state(Node& n, int from, uint64_t min_index) {
  ++result_.state_fetches;
  auto fail_later = [&](const std::string& why) {
    Event& e = schedule(now_ + 200'000, EventType::kStateFetched);
    e.node = n.id;
    e.gen = n.gen;
    e.error = why;
  };
  if (from < 1 || from >= static_cast<int>(nodes_.size())) return fail_later("unknown member");
  const std::vector<uint64_t> times = net_.send(n.id, from, 64, now_, net_rng_);
  if (times.empty()) return fail_later("request lost");
  Event& e = schedule(times.front(), EventType::kFetchServe);
  e.node = from;
  e.client = n.id;
  e.gen = n.gen;
  e.index = min_index;
}

void Sim::serve_state(const Event& e) {
  Node& server = nodes_[e.node];
  Node& asker = nodes_[e.client];
  Event answer;
  answer.node = asker.id;
  answer.gen = e.gen;
  uint64_t at = now_ + 200'000;  // a failed fetch shows as a timeout
  if (!server.up || server.paused) {
    answer.error = "member down";
  } else if (server.kv->applied().value < e.index) {
    answer.error = "member is behind the index asked for";
  } else if (fault_phase() && !o_.faults.empty() &&
             fault_rng_.chance(sites_.failed_fetch ? 0.5 : 0.05)) {
    answer.error = "stream broken";  // a transfer cut short: the asker must try again
  } else {
    std::string image = server.kv->image();
    const std::vector<uint64_t> times =
        net_.send(server.id, asker.id, image.size(), now_, net_rng_);
    if (times.empty()) {
      answer.error = "answer lost";
    } else {
      at = times.front();
      answer.image = std::move(image);
    }
  }
  Event& out = schedule(at, EventType::kStateFetched);
  const uint64_t seq = out.seq;
  out = std::move(answer);
  out.type = EventType::kStateFetched;
  out.time = at;
  out.seq = seq;
}

void Sim::state_fetched(const Event& e) {
  Node& n = nodes_[e.node];
  if (!e.image) ++result_.state_fetch_failures;
  n.driver->state_fetched(e.image, e.error);
  after_input(n);
}

void Sim::check_store_convergence() {
  // Replicas that applied the same prefix of the log hold byte-identical stores (kv::Store is
  // deterministic), however each got there: by entries, by snapshot, across restarts.
  std::map<Index, std::pair<int, std::string>> image_at;  // applied index -> (node, image)
  for (size_t i = 1; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (!n.up) continue;
    std::string image = n.kv->image();
    auto [it, inserted] = image_at.try_emplace(n.kv->applied(), n.id, image);
    if (inserted || it->second.second == image) continue;
    std::ostringstream os;
    os << "n" << it->second.first << " and n" << n.id << " both applied through index "
       << n.kv->applied() << " but their stores differ";
    store_violations_.push_back({"StoreConvergence", os.str()});
  }
}

void Sim::send(Node& n, const std::vector<raft::Message>& msgs) {
  for (const raft::Message& m : msgs) {
    ++result_.messages_sent;
    if (m.type == raft::MessageType::kSnapshot) ++result_.snapshots_sent;
    const int to = static_cast<int>(m.to.value);
    if (to < 1 || to >= static_cast<int>(nodes_.size())) continue;
    auto times = net_.send(n.id, to, m.byte_size(), now_, net_rng_);
    if (times.empty()) ++result_.messages_dropped;
    if (times.size() > 1) ++result_.messages_duplicated;
    if (o_.trace) {
      at() << raft::to_string(m.type) << " n" << m.from << "->n" << m.to << " term=" << m.term
           << " idx=" << m.log_index << " entries=" << m.entries.size()
           << (m.reject ? " reject" : "") << (times.empty() ? " DROPPED" : "") << "\n";
    }
    for (uint64_t t : times) {
      Event& e = schedule(t, EventType::kDeliver);
      e.node = to;
      e.msg = m;
    }
  }
}

void Sim::crash(Node& n) {
  n.up = false;
  n.writing.reset();  // the write whose fsync had not returned is lost, and so is
  n.unsynced = {};    // what was written without one
  n.has_unsynced = false;
  n.deferred.clear();
  for (Watcher& w : watchers_) {
    if (w.node == n.id) watch_disconnect(w, false);
  }
  if (o_.verbose) at() << "crash n" << n.id << "\n";
  std::map<NodeId, const raft::Persisted*> durable;
  for (size_t i = 1; i < nodes_.size(); ++i) durable[NodeId(i)] = &nodes_[i].durable;
  inv_.on_crash(NodeId(n.id), durable);
}

void Sim::restart(Node& n) {
  if (n.up) return;
  if (o_.verbose) at() << "restart n" << n.id << "\n";
  start_node(n.id);
}

bool Sim::node_event_blocked(const Event& e) {
  Node& n = nodes_[e.node];
  if (!n.up) return true;
  if (n.paused) {
    n.deferred.push_back(e);
    return true;
  }
  return false;
}

void Sim::on_client_request(Node& n, const KvCommand& req) {
  if (o_.trace) at() << "n" << n.id << " <- c" << req.client << " #" << req.seq << "\n";
  if (req.op == KvOp::kKeepAlive && n.raft->role() != raft::Role::kLeader) {
    reply(n, req, ReplyStatus::kRejected, {});  // only the leader renews (the server's kNotLeader)
  } else if (req.op == KvOp::kGet || req.op == KvOp::kRange || req.op == KvOp::kKeepAlive) {
    // A keep-alive, like a read, waits for a ReadIndex round and the apply of everything
    // committed before it (Node::lease_keepalive). The driver fails it at the client's timeout.
    const auto timeout_ticks = static_cast<uint32_t>(o_.client_timeout_us / o_.tick_us);
    n.driver->read(
        [this, id = n.id, gen = n.gen, req](replica::ReadOutcome outcome) {
          Node& node = nodes_[id];
          if (!node.up || node.gen != gen) return;
          if (outcome == replica::ReadOutcome::kOk) {
            serve_read(node, req);
          } else {
            reply(node, req, ReplyStatus::kRejected, {});
          }
        },
        timeout_ticks);
  } else {
    const raft::ProposeResult r = n.raft->propose(req.encode());
    if (r.status == raft::Status::kOk || r.status == raft::Status::kForwarded) {
      n.writes.emplace(std::make_pair(req.client, req.seq), req);
    } else {
      reply(n, req, ReplyStatus::kRejected, {});
    }
  }
  after_input(n);
}

void Sim::answer_keepalive(Node& n, const KvCommand& req) {
  const auto now = static_cast<int64_t>(now_);
  n.lessor->set_leader(n.raft->role() == raft::Role::kLeader, n.kv->store(), now);
  if (!n.lessor->leader()) return reply(n, req, ReplyStatus::kRejected, {});
  KvResult r;
  r.ttl = n.lessor->renew(req.lease, n.kv->store(), now);
  if (o_.trace) {
    at() << "n" << n.id << " renews lease " << req.lease << " for c" << req.client << " #"
         << req.seq << ": ttl " << r.ttl << " (applied " << n.kv->applied() << ", term "
         << n.raft->term() << ")\n";
  }
  reply(n, req, ReplyStatus::kOk, std::move(r));
}

// At every tick, as Node::check_leases: the leader proposes the revokes of expired leases.
void Sim::lessor_tick(Node& n) {
  const auto now = static_cast<int64_t>(now_);
  n.lessor->set_leader(n.raft->role() == raft::Role::kLeader, n.kv->store(), now);
  for (int64_t id : n.lessor->due_revokes(now, 100)) {
    synodpb::Request revoke;
    revoke.mutable_lease_revoke()->set_id(id);
    n.raft->propose(revoke.SerializeAsString());
  }
}

void Sim::reply(Node& n, const KvCommand& req, ReplyStatus status, KvResult result) {
  Event& e = schedule(now_ + client_rng_.range(200, 1000), EventType::kClientResponse);
  e.client = static_cast<int>(req.client);
  e.reply.seq = req.seq;
  e.reply.status = status;
  e.reply.result = std::move(result);
  e.reply.leader_hint = static_cast<int>(n.raft->leader().value);
}

// ---------------------------------------------------------------------------------------------
// Clients: one operation at a time each, over a small key space.

void Sim::client_next(Client& c) {
  if (c.recipe) return recipe_next(c);
  if (c.busy || c.done) return;
  if (fault_phase() && issued_ >= o_.ops) return;  // waits for the heal
  if (!fault_phase() && c.final_ok >= o_.final_ops) {
    c.done = true;
    return;
  }
  ++issued_;
  c.busy = true;
  ++c.seq;
  check::Operation op;
  op.client = c.id;
  op.key = "k" + std::to_string(client_rng_.uniform(o_.keys));
  op.invoke_time = now_;
  const uint64_t dice = client_rng_.uniform(10);
  KvCommand req;
  req.client = c.id;
  req.seq = c.seq;
  req.key = op.key;
  if (dice < 4) {
    op.kind = check::OpKind::kGet;
    req.op = KvOp::kGet;
  } else if (dice < 8 || !c.last_seen.contains(op.key)) {
    op.kind = check::OpKind::kPut;
    op.value = "v" + std::to_string(c.id) + "." + std::to_string(c.seq);
    req.op = KvOp::kPut;
  } else {
    op.kind = check::OpKind::kCas;
    op.expected = c.last_seen[op.key];
    op.value = "v" + std::to_string(c.id) + "." + std::to_string(c.seq);
    req.op = KvOp::kCas;
  }
  req.value = op.value;
  req.expected = op.expected;
  c.op = op;
  send_request(c, std::move(req), 0);
}

// Sends after a network delay, plus `wait_us` on the client's side first.
void Sim::send_request(Client& c, KvCommand req, uint64_t wait_us) {
  int target = c.leader_hint;
  c.keepalive_outstanding = req.op == KvOp::kKeepAlive;
  if (c.keepalive_outstanding && c.keepalive_node != 0) {
    target = c.keepalive_node;
  } else if (target < 1 || target > o_.nodes || client_rng_.chance(0.2)) {
    target = 1 + static_cast<int>(client_rng_.uniform(o_.nodes));
  }
  if (c.keepalive_outstanding) c.keepalive_node = target;
  const uint64_t send_at = now_ + wait_us + client_rng_.range(200, 1000);
  c.sent_us = send_at;
  Event& e = schedule(send_at, EventType::kClientRequest);
  e.node = target;
  e.request = std::move(req);
  Event& t = schedule(now_ + wait_us + o_.client_timeout_us, EventType::kClientTimeout);
  t.client = static_cast<int>(c.id);
  t.gen = c.seq;
}

// A recipe client's next step. A pause planted on the client strikes between deciding on a
// request and sending it, as a GC pause or SIGSTOP of a lock holder that is about to write.
void Sim::recipe_next(Client& c) {
  if (c.busy || c.done) return;
  if (fault_phase() && issued_ >= o_.ops) return;  // waits for the heal
  if (!fault_phase() && c.final_ok >= o_.final_ops) {
    c.done = true;
    return;
  }
  const bool was_holding = c.recipe->holding();
  RecipeStep step = c.recipe->next(now_, client_rng_);
  if (step.counted) ++issued_;
  c.busy = true;
  ++c.seq;
  step.cmd.client = c.id;
  step.cmd.seq = c.seq;
  uint64_t wait_us = step.delay_us;
  if (c.pause_next_us != 0 && was_holding && step.cmd.op == KvOp::kPropose) {
    if (o_.verbose)
      at() << "pause client c" << c.id << " for " << c.pause_next_us / 1000 << " ms\n";
    wait_us += c.pause_next_us;
    c.pause_next_us = 0;
  }
  send_request(c, std::move(step.cmd), wait_us);
}

void Sim::finish_op(Client& c, check::Outcome outcome) {
  c.op.outcome = outcome;
  c.op.complete_time = now_;
  c.op.id = history_.size();
  if (outcome == check::Outcome::kOk) {
    if (c.op.kind == check::OpKind::kGet) {
      if (c.op.output) c.last_seen[c.op.key] = *c.op.output;
    } else if (c.op.kind == check::OpKind::kPut || c.op.cas_succeeded) {
      c.last_seen[c.op.key] = c.op.value;
    }
  }
  switch (outcome) {
    case check::Outcome::kOk:
      ++result_.ops_ok;
      break;
    case check::Outcome::kFail:
      ++result_.ops_fail;
      break;
    case check::Outcome::kInfo:
      ++result_.ops_info;
      break;
  }
  if (!fault_phase() && outcome == check::Outcome::kOk && c.op.invoke_time >= heal_time_) {
    ++c.final_ok;
  }
  if (o_.trace) at() << "c" << c.id << " " << check::to_string(c.op) << "\n";
  history_.push_back(c.op);
  c.busy = false;
  Event& e = schedule(now_ + client_rng_.range(0, 2000), EventType::kClientNext);
  e.client = static_cast<int>(c.id);
}

void Sim::client_reply(Client& c, const ClientReply& r) {
  if (!c.busy || r.seq != c.seq) return;  // answer to an operation that already timed out
  c.leader_hint = r.leader_hint;
  if (c.recipe) {
    c.busy = false;
    if (r.status == ReplyStatus::kRejected) {
      ++result_.ops_fail;
      if (c.keepalive_outstanding) c.keepalive_node = 0;
      c.recipe->on_failure();
    } else {
      ++result_.ops_ok;
      const RecipeClient::Learned learned =
          c.recipe->on_reply(r.result, c.sent_us, now_, client_rng_);
      if (learned.promise) {
        check::LeaseLife& life = leases_[learned.promise->first];
        life.id = learned.promise->first;
        life.promised_until_us = std::max(life.promised_until_us, learned.promise->second);
      }
      if (learned.acquired) {
        acquisitions_.push_back({c.id, learned.acquired->first, learned.acquired->second});
      }
      if (learned.cycle_done && !fault_phase() && learned.cycle_start_us >= heal_time_)
        ++c.final_ok;
    }
    Event& e = schedule(now_ + client_rng_.range(0, 2000), EventType::kClientNext);
    e.client = static_cast<int>(c.id);
    return;
  }
  if (r.status == ReplyStatus::kRejected) {
    finish_op(c, check::Outcome::kFail);  // never proposed, so it never takes effect
    return;
  }
  c.op.output = r.result.value;
  c.op.cas_succeeded = r.result.cas_succeeded;
  finish_op(c, check::Outcome::kOk);
}

void Sim::client_timeout(Client& c, uint64_t seq) {
  if (!c.busy || seq != c.seq) return;
  c.leader_hint = 0;
  if (c.recipe) {
    c.busy = false;
    ++result_.ops_info;
    if (c.keepalive_outstanding) c.keepalive_node = 0;
    c.recipe->on_failure();
    Event& e = schedule(now_ + client_rng_.range(0, 2000), EventType::kClientNext);
    e.client = static_cast<int>(c.id);
    return;
  }
  // A read that timed out changed nothing; a write may still land.
  finish_op(c, c.op.kind == check::OpKind::kGet ? check::Outcome::kFail : check::Outcome::kInfo);
}

// ---------------------------------------------------------------------------------------------
// Watchers: each holds one watch open on some node; when the connection breaks (the node
// crashed, or the client gave up on it) it resumes elsewhere from its last revision + 1, as
// clientv3 does. Responses travel in order per connection.

void Sim::watch_connect(Watcher& w) {
  if (w.node != 0) return;
  Node& n = nodes_[1 + watch_rng_.uniform(o_.nodes)];
  if (!n.up || n.paused) {
    Event& e = schedule(now_ + watch_rng_.range(20'000, 100'000), EventType::kWatchConnect);
    e.client = w.id;
    return;
  }
  etcdserverpb::WatchCreateRequest create;
  create.set_key(w.key);
  create.set_range_end(w.range_end);
  int64_t start = w.next_revision;
  if (w.fresh) {
    start = w.finished.empty() ? 1 : 0;  // the first from the beginning, later ones from now
  } else if (o_.workload_bugs.watch_resume_gap) {
    start = w.next_revision + 1;
  } else if (o_.workload_bugs.watch_resume_duplicate && w.next_revision > 1) {
    start = w.next_revision - 1;
  }
  create.set_start_revision(start);
  if (w.fresh) {
    w.spec = check::WatchSpec{w.key, w.range_end, start == 0 ? n.kv->revision() + 1 : start};
    w.received.clear();
    w.next_revision = w.spec.start_revision;
    w.fresh = false;
  }
  w.node = n.id;
  w.stream = ++next_stream_;
  w.awaiting_created = true;
  watcher_of_stream_[w.stream] = w.id;
  ++result_.watch_streams;
  if (o_.trace)
    at() << "watcher w" << w.id << " connects to n" << n.id << " from " << start << "\n";
  n.hub->create(w.stream, create, n.kv->store(), &n.watch_out);
  for (int i = 0; i < 100 && n.hub->has_unsynced(); ++i)
    n.hub->catch_up(n.kv->store(), &n.watch_out);
  flush_watch(n);
}

void Sim::watch_disconnect(Watcher& w, bool close) {
  if (w.node == 0) return;
  if (close && nodes_[w.node].up) nodes_[w.node].hub->close_stream(w.stream);
  watcher_of_stream_.erase(w.stream);
  w.node = 0;
  w.stream = 0;
  Event& e = schedule(now_ + watch_rng_.range(20'000, 200'000), EventType::kWatchConnect);
  e.client = w.id;
}

void Sim::flush_watch(Node& n) {
  for (kv::WatchOutput& out : n.watch_out) {
    auto it = watcher_of_stream_.find(out.stream);
    if (it == watcher_of_stream_.end()) continue;
    Watcher& w = watchers_[it->second];
    // One connection delivers in order: never before what it sent earlier.
    w.last_delivery_us = std::max(w.last_delivery_us, now_ + watch_rng_.range(200, 1000));
    Event& e = schedule(w.last_delivery_us, EventType::kWatchDeliver);
    e.client = w.id;
    e.gen = out.stream;
    e.watch = std::move(out.response);
  }
  n.watch_out.clear();
}

void Sim::watch_deliver(Watcher& w, uint64_t stream, const etcdserverpb::WatchResponse& r) {
  if (stream != w.stream) return;  // from a connection already given up
  auto flag = [&](const char* what) {
    std::ostringstream os;
    os << "watcher w" << w.id << " on n" << w.node << ": " << what;
    store_violations_.push_back({"WatchStream", os.str()});
  };
  if (r.created()) {
    if (!w.awaiting_created) flag("a second created response");
    if (r.canceled()) flag(("its watch was refused: " + r.cancel_reason()).c_str());
    w.awaiting_created = false;
    return;
  }
  if (w.awaiting_created) flag("a response before the created one");
  check::WatchReceived got;
  for (const mvccpb::Event& e : r.events()) {
    got.events.push_back(
        check::WatchEvent{e.kv().mod_revision(), e.kv().key(), e.type() == mvccpb::Event::DELETE});
    w.next_revision = e.kv().mod_revision() + 1;
    ++result_.watch_events;
  }
  got.canceled = r.canceled();
  got.compact_revision = r.compact_revision();
  w.received.push_back(std::move(got));
  if (r.canceled()) {
    // Compacted past what it is owed: the logical stream ends; a new one starts from now.
    ++result_.watch_compaction_cancels;
    w.finished.emplace_back(w.spec, std::move(w.received));
    w.received.clear();
    w.fresh = true;
    watch_disconnect(w, true);
  }
}

// Every logical stream must match the log's history; the current one must also be complete up
// to its node's revision, once that node is caught up and everything sent has arrived.
void Sim::check_watchers() {
  for (Watcher& w : watchers_) {
    auto judge = [&](const check::WatchSpec& spec, const std::vector<check::WatchReceived>& got,
                     const std::vector<check::WatchEvent>& history, bool complete) {
      auto verdict = check::check_watch_stream(spec, history, got, complete);
      if (!verdict) return;
      std::ostringstream os;
      os << "watcher w" << w.id << " (from revision " << spec.start_revision << "): " << *verdict;
      store_violations_.push_back({"WatchStream", os.str()});
    };
    for (const auto& [spec, got] : w.finished) judge(spec, got, truth_events_, false);
    if (w.fresh) continue;
    const bool connected = w.node != 0 && !w.awaiting_created;
    std::vector<check::WatchEvent> history = truth_events_;
    if (connected) {
      // Its node may be behind what earlier connections delivered (it restarted, say).
      const int64_t revision = std::max(nodes_[w.node].kv->revision(), w.next_revision - 1);
      std::erase_if(history, [&](const check::WatchEvent& e) { return e.revision > revision; });
    }
    judge(w.spec, w.received, history, connected);
  }
}

// ---------------------------------------------------------------------------------------------
// Faults: each one bounded in time and healed; all healed before the final phase.

// Pauses a client, a holder if there is one, for longer than its lease: it wakes up believing
// it still holds, and acts.
void Sim::pause_a_client() {
  std::vector<Client*> holders;
  for (Client& c : clients_) {
    if (c.recipe->holding()) holders.push_back(&c);
  }
  Client& victim = holders.empty() ? clients_[fault_rng_.uniform(clients_.size())]
                                   : *holders[fault_rng_.uniform(holders.size())];
  victim.pause_next_us = fault_rng_.range(1'200'000, 2'500'000);  // strikes before an act
  ++result_.client_pauses;
  ++result_.faults_injected["client-pause"];
}

void Sim::inject_fault() {
  if (!fault_phase()) return;
  std::vector<Fault> enabled(o_.faults.begin(), o_.faults.end());
  enabled.erase(std::remove(enabled.begin(), enabled.end(), Fault::kDrift), enabled.end());
  if (!enabled.empty()) {
    const Fault f = enabled[fault_rng_.uniform(enabled.size())];
    const uint64_t duration = fault_rng_.range(100'000, 1'500'000);
    bool injected = true;
    Node* lead = leader();
    // Watchers give up on a connection now and then, and on a frozen node more often.
    for (Watcher& w : watchers_) {
      const bool frozen = w.node != 0 && nodes_[w.node].paused;
      if (w.node != 0 && fault_rng_.chance(frozen ? 0.5 : 0.15)) watch_disconnect(w, true);
    }
    if (f == Fault::kPause && o_.workload != Workload::kRegister && fault_rng_.chance(0.5)) {
      pause_a_client();
    } else {
      switch (f) {
        case Fault::kPartition: {
          if (partition_active_) {
            injected = false;
            break;
          }
          partition_active_ = true;
          std::string desc;
          if (lead != nullptr && fault_rng_.chance(0.3)) {
            net_.isolate(lead->id);
            desc = "isolate leader n" + std::to_string(lead->id);
          } else {
            const auto kind = static_cast<PartitionKind>(fault_rng_.uniform(4));
            desc = std::string(to_string(kind)) + " " + net_.partition(kind, fault_rng_);
          }
          if (o_.verbose) at() << "partition " << desc << "\n";
          break;
        }
        case Fault::kCrash:
        case Fault::kPause: {
          int down = 0;
          for (size_t i = 1; i < nodes_.size(); ++i) down += (!nodes_[i].up || nodes_[i].paused);
          if (down >= (o_.nodes - 1) / 2) {
            injected = false;
            break;
          }
          Node* victim = lead;
          if (victim == nullptr || fault_rng_.chance(0.6)) {
            victim = &nodes_[1 + fault_rng_.uniform(o_.nodes)];
          }
          if (!victim->up || victim->paused) {
            injected = false;
            break;
          }
          if (f == Fault::kCrash) {
            crash(*victim);
          } else {
            victim->paused = true;
            if (o_.verbose) at() << "pause n" << victim->id << "\n";
          }
          Event& h = schedule(now_ + duration, EventType::kHeal);
          h.tag = static_cast<int>(f);
          h.node = victim->id;
          break;
        }
        case Fault::kLoss:
        case Fault::kDuplicate:
        case Fault::kReorder:
        case Fault::kLatency: {
          if (net_fault_active_) {
            injected = false;
            break;
          }
          net_fault_active_ = true;
          LinkParams p = baseline_;
          if (f == Fault::kLoss) p.loss = 0.05 + 0.25 * fault_rng_.uniform(100) / 100.0;
          if (f == Fault::kDuplicate) p.duplicate = 0.05 + 0.25 * fault_rng_.uniform(100) / 100.0;
          if (f == Fault::kReorder) p.latency_max_us = 30'000;
          if (f == Fault::kLatency) {
            p.latency_min_us = 5'000;
            p.latency_max_us = 15'000;
            p.bandwidth_bytes_per_ms = 200;
          }
          net_.set_params(p);
          if (o_.verbose) at() << "network " << to_string(f) << "\n";
          break;
        }
        case Fault::kTopology: {
          if (topology_active_) {
            injected = false;
            break;
          }
          topology_active_ = true;
          const auto t = static_cast<Topology>(1 + fault_rng_.uniform(3));
          net_.set_topology(t);
          if (partition_active_) partition_active_ = false;  // set_topology heals cuts
          if (o_.verbose) at() << "topology " << to_string(t) << "\n";
          break;
        }
        case Fault::kMembership:
          if (membership_stage_ != 0 || o_.nodes < 4) {
            injected = false;
            break;
          }
          membership_stage_ = 1;
          membership_tries_ = 0;
          membership_step();
          break;
        case Fault::kTransfer: {
          if (lead == nullptr) {
            injected = false;
            break;
          }
          const auto& voters = lead->raft->conf().voters;
          const NodeId target = voters[fault_rng_.uniform(voters.size())];
          const raft::Status st = lead->raft->transfer_leadership(target);
          if (o_.verbose) {
            at() << "transfer leadership n" << lead->id << " -> n" << target << ": "
                 << raft::to_string(st) << "\n";
          }
          after_input(*lead);
          break;
        }
        case Fault::kDrift:
          injected = false;
          break;
      }
      if (injected) {
        ++result_.faults_injected[to_string(f)];
        if (f != Fault::kCrash && f != Fault::kPause && f != Fault::kMembership &&
            f != Fault::kTransfer) {
          Event& h = schedule(now_ + duration, EventType::kHeal);
          h.tag = static_cast<int>(f);
        }
      }
    }
  }
  schedule(now_ + fault_rng_.range(100'000, std::max<uint64_t>(100'000, o_.fault_gap_max_us)),
           EventType::kFault);
}

void Sim::heal(Fault f) {
  switch (f) {
    case Fault::kPartition:
      if (!partition_active_) return;
      net_.heal();
      partition_active_ = false;
      if (o_.verbose) at() << "heal partition\n";
      return;
    case Fault::kLoss:
    case Fault::kDuplicate:
    case Fault::kReorder:
    case Fault::kLatency:
      if (!net_fault_active_) return;
      net_.set_params(baseline_);
      net_fault_active_ = false;
      if (o_.verbose) at() << "heal network " << to_string(f) << "\n";
      return;
    case Fault::kTopology:
      if (!topology_active_) return;
      net_.set_topology(Topology::kMesh);
      partition_active_ = false;
      topology_active_ = false;
      if (o_.verbose) at() << "topology mesh\n";
      return;
    default:
      return;
  }
}

void Sim::heal_all() {
  healed_ = true;
  heal_time_ = now_;
  if (o_.verbose) at() << "heal all: final phase begins\n";
  net_.set_params(baseline_);
  net_.set_topology(Topology::kMesh);
  partition_active_ = net_fault_active_ = topology_active_ = false;
  for (size_t i = 1; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (!n.up) restart(n);
    if (n.paused) {
      n.paused = false;
      for (Event& e : n.deferred) {
        Event& again = schedule(now_, e.type);
        const uint64_t seq = again.seq;
        again = e;
        again.time = now_;
        again.seq = seq;
      }
      n.deferred.clear();
    }
  }
  for (Client& c : clients_) {
    c.pause_next_us = 0;
    Event& e = schedule(now_, EventType::kClientNext);
    e.client = static_cast<int>(c.id);
  }
}

bool Sim::removal_durable_everywhere() const {
  for (size_t i = 1; i < nodes_.size(); ++i) {
    if (static_cast<int>(i) == membership_node_) continue;
    const raft::Persisted& d = nodes_[i].durable;
    if (d.snapshot && d.snapshot->meta.index >= membership_index_) continue;
    const bool held = std::any_of(d.entries.begin(), d.entries.end(), [&](const raft::Entry& e) {
      return e.index == membership_index_ && e.term == membership_term_;
    });
    if (!held) return false;
  }
  return true;
}

void Sim::isolate_after_election(int node) {
  if (!fault_phase() || partition_active_ || topology_active_) return;
  partition_active_ = true;
  // Half the time it keeps one follower: its entries then reach a minority before it loses
  // leadership, the start of Raft's figure 8.
  int keep = 0;
  if (fault_rng_.chance(0.5)) {
    keep = 1 + static_cast<int>(fault_rng_.uniform(o_.nodes));
    if (keep == node) keep = 0;
  }
  net_.isolate(node, keep);
  ++result_
        .faults_injected[keep != 0 ? "isolate-after-election-but-one" : "isolate-after-election"];
  if (o_.verbose) {
    at() << "isolate new leader n" << node << (keep != 0 ? " but for n" + std::to_string(keep) : "")
         << "\n";
  }
  Event& h = schedule(now_ + fault_rng_.range(50'000, 500'000), EventType::kHeal);
  h.tag = static_cast<int>(Fault::kPartition);
}

// Swarm testing: this seed's own fault mix, nemesis intensities and BUGGIFY sites, drawn from
// a generator of its own so the rest of the run's randomness is as without the swarm.
void Sim::draw_swarm() {
  Rng r(o_.seed ^ 0x5357'4152'4d00'0000ULL);
  if (o_.swarm) {
    o_.faults.clear();
    for (const auto& [fault, name] : kFaultNames) {
      if (r.chance(0.5)) o_.faults.insert(fault);
    }
    // Lease reads assume clocks that keep running: a frozen process breaks that assumption,
    // not the protocol (docs/raft.md), so a lease-read run draws no pauses.
    if (o_.read_mode == raft::ReadMode::kLease) o_.faults.erase(Fault::kPause);
    if (o_.faults.empty()) o_.faults.insert(Fault::kPartition);
    static constexpr double kCrashChances[] = {0.0, 0.25, 0.6, 1.0, 1.0};
    static constexpr uint64_t kDelaysUs[] = {500, 3'000, 20'000, 20'000};
    static constexpr uint64_t kGapsUs[] = {200'000, 600'000, 1'500'000};
    o_.election_crash_probability = kCrashChances[r.uniform(std::size(kCrashChances))];
    o_.election_crash_max_delay_us = kDelaysUs[r.uniform(std::size(kDelaysUs))];
    o_.election_isolate_probability = r.chance(0.5) ? 0.0 : 0.5;
    o_.fault_gap_max_us = kGapsUs[r.uniform(std::size(kGapsUs))];
    o_.buggify = r.chance(0.75);
    std::ostringstream os;
    os << "--faults " << fault_list(o_.faults) << " --election-crash "
       << o_.election_crash_probability << " --election-crash-delay-us "
       << o_.election_crash_max_delay_us << " --election-isolate "
       << o_.election_isolate_probability << " --fault-gap-us " << o_.fault_gap_max_us
       << (o_.buggify ? " --buggify" : "");
    result_.swarm = os.str();
  }
  if (o_.buggify) {
    sites_.crash_in_vote_fsync = r.chance(0.75);
    sites_.slow_fsync = r.chance(0.5);
    sites_.failed_fetch = r.chance(0.5);
    sites_.store_written_out = r.chance(0.5);
  }
}

void Sim::membership_step() {
  // remove a voter -> wipe it and re-add it as a learner -> promote it once caught up
  if (membership_stage_ == 0) return;
  Node* lead = leader();
  bool advanced = false;
  if (lead != nullptr) {
    raft::Raft& r = *lead->raft;
    if (membership_stage_ == 1) {
      std::vector<NodeId> candidates;
      for (NodeId v : r.conf().voters) {
        if (v != r.id()) candidates.push_back(v);
      }
      if (membership_node_ == 0 && !candidates.empty()) {
        membership_node_ =
            static_cast<int>(candidates[fault_rng_.uniform(candidates.size())].value);
      }
      if (r.conf().contains(NodeId(membership_node_))) {
        auto pr =
            r.propose_conf_change({raft::ConfChangeType::kRemoveNode, NodeId(membership_node_)});
        if (pr.status == raft::Status::kOk) {
          membership_index_ = pr.index;
          membership_term_ = pr.term;
        }
      } else if (membership_index_ > Index(0) && r.log().committed() >= membership_index_ &&
                 (membership_index_ <= r.log().snapshot().index ||
                  r.log().term(membership_index_) == membership_term_)) {
        // Only once the removal is committed may the node lose its state: until then its
        // acknowledgements may be what makes earlier entries committed.
        advanced = true;
      }
    } else if (membership_stage_ == 2) {
      auto pr =
          r.propose_conf_change({raft::ConfChangeType::kAddLearner, NodeId(membership_node_)});
      advanced = pr.status == raft::Status::kOk;
    } else {
      auto pr = r.propose_conf_change({raft::ConfChangeType::kAddVoter, NodeId(membership_node_)});
      advanced = pr.status == raft::Status::kOk;
    }
    after_input(*lead);
  }
  if (advanced) {
    if (o_.verbose) {
      static constexpr const char* kStage[] = {"", "remove", "add learner", "promote"};
      at() << "membership: " << kStage[membership_stage_] << " n" << membership_node_ << "\n";
    }
    // The removed node comes back under the same id. It is wiped, to come back as a new, empty
    // member, only if every other member's durable log holds its removal: a log with an older
    // configuration still counts that id as a voter, and an empty member under it would vote
    // for a candidate that lacks committed entries (etcd retires a removed member's id for
    // good; this nemesis reuses it). Otherwise it comes back with its state.
    if (membership_stage_ == 1 && removal_durable_everywhere()) {
      ++result_.faults_injected["membership-wipe"];
      Node& n = nodes_[membership_node_];
      n.up = false;
      n.deferred.clear();
      n.durable = raft::Persisted{};
      n.store_image.clear();
      n.founding = false;  // it comes back as a member added later
      start_node(membership_node_);
    }
    membership_stage_ = membership_stage_ == 3 ? 0 : membership_stage_ + 1;
    membership_tries_ = 0;
    membership_index_ = Index(0);
    if (membership_stage_ == 0) {
      membership_node_ = 0;
      return;
    }
  } else if (++membership_tries_ > 400) {
    if (o_.verbose) at() << "membership: giving up at stage " << membership_stage_ << "\n";
    membership_stage_ = 0;
    membership_node_ = 0;
    return;
  }
  schedule(now_ + 50'000, EventType::kMembership);
}

// ---------------------------------------------------------------------------------------------
// The run.

void Sim::dispatch(const Event& e) {
  switch (e.type) {
    case EventType::kTick: {
      Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen) return;
      Event& next = schedule(now_ + n.tick_us, EventType::kTick);
      next.node = e.node;
      next.gen = e.gen;
      if (n.paused) return;  // a frozen process does not see time pass
      n.driver->tick();
      lessor_tick(n);
      after_input(n);
      return;
    }
    case EventType::kDeliver:
      if (node_event_blocked(e)) return;
      nodes_[e.node].driver->step(e.msg);
      after_input(nodes_[e.node]);
      return;
    case EventType::kFsyncDone: {
      Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen || !n.writing) return;
      if (node_event_blocked(e)) return;
      on_fsync(n);
      return;
    }
    case EventType::kFetchServe:
      serve_state(e);
      return;
    case EventType::kStateFetched: {
      const Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen) return;  // the asker restarted: not its fetch any more
      if (node_event_blocked(e)) return;
      state_fetched(e);
      return;
    }
    case EventType::kStoreFlushed: {
      Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen) return;  // the flush died with the process
      if (node_event_blocked(e)) return;
      n.store_image = n.kv->image();  // everything applied so far is written out
      n.driver->state_flushed(e.index);
      after_input(n);
      return;
    }
    case EventType::kClientRequest:
      if (node_event_blocked(e)) return;
      on_client_request(nodes_[e.node], e.request);
      return;
    case EventType::kClientResponse:
      client_reply(clients_[e.client], e.reply);
      return;
    case EventType::kClientTimeout:
      client_timeout(clients_[e.client], e.gen);
      return;
    case EventType::kClientNext:
      client_next(clients_[e.client]);
      return;
    case EventType::kFault:
      inject_fault();
      return;
    case EventType::kHeal: {
      const auto f = static_cast<Fault>(e.tag);
      if (f == Fault::kCrash) {
        restart(nodes_[e.node]);
      } else if (f == Fault::kPause) {
        Node& n = nodes_[e.node];
        if (!n.paused) return;
        n.paused = false;
        if (o_.verbose) at() << "resume n" << n.id << "\n";
        for (Event& d : n.deferred) {
          Event& again = schedule(now_, d.type);
          const uint64_t seq = again.seq;
          again = d;
          again.time = now_;
          again.seq = seq;
        }
        n.deferred.clear();
        after_input(n);
      } else {
        heal(f);
      }
      return;
    }
    case EventType::kMembership:
      membership_step();
      return;
    case EventType::kWatchConnect:
      watch_connect(watchers_[e.client]);
      return;
    case EventType::kWatchDeliver:
      watch_deliver(watchers_[e.client], e.gen, e.watch);
      return;
    case EventType::kTargetedIsolate:
      isolate_after_election(e.node);
      return;
    case EventType::kTargetedCrash: {
      Node& n = nodes_[e.node];
      int down = 0;
      for (size_t i = 1; i < nodes_.size(); ++i) down += (!nodes_[i].up || nodes_[i].paused);
      // Unlike random crashes, these may take down a majority for a moment (a rack losing
      // power): that is what Raft figure 8 needs, and it is only liveness that suffers.
      if (!fault_phase() || !n.up || n.paused || down >= o_.nodes - 1) return;
      crash(n);
      ++result_.faults_injected[e.tag == 1 ? "crash-in-vote-fsync" : "crash-after-election"];
      // Half the time the process comes straight back, as under a supervisor.
      const uint64_t downtime = fault_rng_.chance(0.5) ? fault_rng_.range(500, 20'000)
                                                       : fault_rng_.range(100'000, 1'000'000);
      Event& h = schedule(now_ + downtime, EventType::kHeal);
      h.tag = static_cast<int>(Fault::kCrash);
      h.node = n.id;
      return;
    }
  }
}

SimResult Sim::run() {
  assert(o_.nodes >= 1 && o_.nodes <= 9);
  result_.seed = o_.seed;
  draw_swarm();
  nodes_.resize(o_.nodes + 1);
  for (int i = 1; i <= o_.nodes; ++i) initial_conf_.voters.push_back(NodeId(i));
  inv_.set_initial_conf(initial_conf_);
  Rng drift_rng = rng_.fork();
  Rng shape_rng = rng_.fork();
  static constexpr uint64_t kMsgBytes[] = {128, 256, 4096};
  static constexpr uint32_t kWindows[] = {1, 2, 4, 16};
  max_msg_bytes_ = kMsgBytes[shape_rng.uniform(3)];
  max_inflight_msgs_ = kWindows[shape_rng.uniform(4)];
  if (o_.max_inflight_msgs != 0) max_inflight_msgs_ = o_.max_inflight_msgs;
  for (int i = 1; i <= o_.nodes; ++i) {
    Node& n = nodes_[i];
    n.id = i;
    n.tick_us = o_.tick_us;
    if (o_.faults.contains(Fault::kDrift)) {
      // Up to 15% faster or slower than nominal.
      const int64_t skew_permille = static_cast<int64_t>(drift_rng.uniform(301)) - 150;
      n.tick_us =
          static_cast<uint64_t>(static_cast<int64_t>(o_.tick_us) * (1000 + skew_permille) / 1000);
    }
    start_node(i);
  }
  watch_rng_ = rng_.fork();
  clients_.resize(o_.clients);
  for (int c = 0; c < o_.clients; ++c) {
    clients_[c].id = static_cast<uint32_t>(c);
    if (o_.workload != Workload::kRegister) {
      RecipeOptions ro;
      ro.recipe = o_.workload == Workload::kLock ? Recipe::kLock : Recipe::kSemaphore;
      ro.permits = o_.permits;
      ro.unfenced = o_.workload_bugs.unfenced;
      ro.extra_permit = o_.workload_bugs.extra_permit;
      clients_[c].recipe = std::make_unique<RecipeClient>(static_cast<uint32_t>(c), ro);
    }
    Event& e = schedule(200'000 + client_rng_.range(0, 10'000), EventType::kClientNext);
    e.client = c;
  }
  watchers_.resize(o_.watchers);
  for (int i = 0; i < o_.watchers; ++i) {
    Watcher& w = watchers_[i];
    w.id = i;
    // Even watchers see every key; odd ones the workload's busiest range.
    if (i % 2 == 0) {
      w.key = w.range_end = std::string(1, '\0');
    } else if (o_.workload == Workload::kRegister) {
      w.key = "k1";
    } else {
      w.key = o_.workload == Workload::kLock ? "lock/" : kSlotPrefix;
      w.range_end = kv::recipe::prefix_end(w.key);
    }
    Event& e = schedule(100'000 + watch_rng_.range(0, 50'000), EventType::kWatchConnect);
    e.client = i;
  }
  if (!o_.faults.empty()) schedule(300'000, EventType::kFault);
  const uint64_t fault_phase_cap_us = 120'000'000;
  const uint64_t liveness_us = o_.liveness_ticks * o_.tick_us;
  while (!queue_.empty()) {
    // A run whose events multiply without bound (a message storm) fails here, not by running
    // out of memory: a correct cluster never keeps this many events pending.
    if (queue_.size() > kMaxPendingEvents) {
      std::ostringstream os;
      os << queue_.size() << " events pending at " << now_ / 1000 << " ms (bound "
         << kMaxPendingEvents << ")";
      store_violations_.push_back({"EventStorm", os.str()});
      break;
    }
    const std::unique_ptr<Event> e = next_event();
    now_ = e->time;
    dispatch(*e);
    if (!healed_) {
      bool idle = issued_ >= o_.ops;
      for (const Client& c : clients_) idle = idle && !c.busy;
      if (idle || now_ > fault_phase_cap_us) heal_all();
    } else {
      bool done = true;
      for (const Client& c : clients_) done = done && c.done;
      if (done && membership_stage_ == 0) break;
      if (now_ > heal_time_ + liveness_us) {
        result_.liveness_ok = false;
        std::ostringstream os;
        os << "cluster did not finish within " << o_.liveness_ticks << " ticks of the heal (";
        os << (first_leader_after_heal_ ? "a leader was elected" : "no leader elected");
        int unfinished = 0;
        for (const Client& c : clients_) unfinished += c.done ? 0 : 1;
        os << ", " << unfinished << " client(s) unfinished";
        if (membership_stage_ != 0)
          os << ", membership change stuck at stage " << membership_stage_;
        os << ")";
        // Where each member stands, for whoever replays it.
        for (size_t i = 1; i < nodes_.size(); ++i) {
          const Node& n = nodes_[i];
          os << "\n    n" << n.id << ": "
             << (!n.up      ? "down"
                 : n.paused ? "paused"
                            : raft::to_string(n.raft->role()))
             << " term " << n.raft->term() << " leader n" << n.raft->leader() << " voters "
             << raft::to_string(n.raft->conf()) << " last " << n.raft->log().last_index()
             << " commit " << n.raft->log().committed() << " applied " << n.kv->applied()
             << (n.driver->ready_in_flight()
                     ? std::string(" (a Ready waits for ") + n.driver->waiting_for() + ")"
                     : std::string());
        }
        result_.liveness_detail = os.str();
        break;
      }
    }
  }
  result_.end_time_us = now_;
  if (result_.liveness_ok) {
    std::ostringstream os;
    os << "leader "
       << (first_leader_after_heal_ >= heal_time_ && first_leader_after_heal_
               ? (first_leader_after_heal_ - heal_time_) / o_.tick_us
               : 0)
       << " ticks after the heal; clients finished " << (now_ - heal_time_) / o_.tick_us
       << " ticks after (bound " << o_.liveness_ticks << ")";
    result_.liveness_detail = os.str();
  }
  if (!watchers_.empty()) {
    // Everything sent arrives; every node catches its watchers up; that arrives too.
    auto drain = [&] {
      while (!queue_.empty()) {
        const std::unique_ptr<Event> e = next_event();
        if (e->type == EventType::kWatchDeliver) dispatch(*e);
      }
    };
    drain();
    for (size_t i = 1; i < nodes_.size(); ++i) {
      Node& n = nodes_[i];
      if (!n.up) continue;
      for (int k = 0; k < 10'000 && n.hub->has_unsynced(); ++k) {
        n.hub->catch_up(n.kv->store(), &n.watch_out);
      }
      flush_watch(n);
    }
    drain();
    check_watchers();
  }
  for (const Client& c : clients_) {
    if (!c.recipe) continue;
    const RecipeStats& st = c.recipe->stats();
    result_.cycles += st.cycles;
    result_.acquisitions += st.acquisitions;
    result_.acts_ok += st.acts_ok;
    result_.acts_refused += st.acts_refused;
    result_.leases_lost += st.leases_lost;
  }
  for (check::Violation& v : check::check_fenced_acts(fenced_acts_)) store_violations_.push_back(v);
  if (o_.workload == Workload::kLock) {
    for (check::Violation& v : check::check_lock_fifo(acquisitions_))
      store_violations_.push_back(v);
  }
  for (check::Violation& v : check::check_semaphore(slot_holders_, o_.permits)) {
    store_violations_.push_back(v);
  }
  for (const auto& [id, life] : leases_) retired_leases_.push_back(life);
  for (check::Violation& v : check::check_lease_expiry(retired_leases_)) {
    store_violations_.push_back(v);
  }
  check_store_convergence();
  result_.violations = inv_.violations();
  result_.violations.insert(result_.violations.end(), store_violations_.begin(),
                            store_violations_.end());
  check::CheckOptions check_options;
  check_options.max_states = 500'000;
  result_.linearizability = check::check_kv(history_, check_options);
  result_.history = std::move(history_);
  return result_;
}

}  // namespace

SimResult run_simulation(const SimOptions& options, std::ostream& log) {
  Sim sim(options, log);
  return sim.run();
}

void print_summary(const SimOptions& o, const SimResult& r, std::ostream& out) {
  out << "seed " << o.seed << ": " << o.nodes << " nodes, faults "
      << (o.swarm ? "swarm" : fault_list(o.faults)) << ", " << o.clients << " clients, workload "
      << to_string(o.workload) << "\n";
  if (!r.swarm.empty()) out << "  swarm drew   " << r.swarm << "\n";
  out << "  operations   ok=" << r.ops_ok << " fail=" << r.ops_fail << " info=" << r.ops_info
      << "  committed entries=" << r.committed << "\n";
  out << "  elections    " << r.elections << "\n";
  out << "  messages     sent=" << r.messages_sent << " dropped=" << r.messages_dropped
      << " duplicated=" << r.messages_duplicated << " snapshot-chunks=" << r.snapshots_sent
      << " state-fetches=" << r.state_fetches << " (failed " << r.state_fetch_failures << ")\n";
  out << "  faults      ";
  if (r.faults_injected.empty()) out << " none";
  for (const auto& [name, count] : r.faults_injected) out << " " << name << "=" << count;
  out << "\n";
  out << "  virtual time " << r.end_time_us / 1000 << " ms\n";
  if (o.workload != Workload::kRegister) {
    out << "  " << to_string(o.workload) << (o.workload == Workload::kLock ? "         " : "    ")
        << "cycles=" << r.cycles << " acquisitions=" << r.acquisitions << " acts ok=" << r.acts_ok
        << " refused=" << r.acts_refused << " leases lost=" << r.leases_lost
        << " expired=" << r.lease_expiries << " client pauses=" << r.client_pauses << "\n";
  }
  if (o.watchers > 0) {
    out << "  watches      watchers=" << o.watchers << " streams=" << r.watch_streams
        << " events=" << r.watch_events << " compaction-cancels=" << r.watch_compaction_cancels
        << "\n";
  }
  out << "  invariants   " << (r.violations.empty() ? "ok" : "VIOLATED") << "\n";
  for (const check::Violation& v : r.violations) {
    out << "    " << v.invariant << ": " << v.detail << "\n";
  }
  if (o.workload == Workload::kRegister) {
    out << "  linearizable " << check::to_string(r.linearizability.verdict) << " ("
        << r.linearizability.states_explored << " states)\n";
  }
  if (r.linearizability.verdict == check::Verdict::kNotLinearizable) {
    out << "    " << r.linearizability.explanation;
    out << "    failing window:\n";
    for (const check::Operation& op : r.linearizability.failing_window) {
      out << "      " << check::to_string(op) << "\n";
    }
  }
  out << "  liveness     " << (r.liveness_ok ? "ok" : "VIOLATED") << ": " << r.liveness_detail
      << "\n";
  out << "  verdict      " << (r.passed() ? "PASS" : "FAIL") << "\n";
  if (!r.passed()) out << "  replay with:  " << replay_command(o) << " --trace\n";
}

}  // namespace synod::sim
