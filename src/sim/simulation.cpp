#include "sim/simulation.h"

#include <algorithm>
#include <cassert>
#include <memory>
#include <optional>
#include <queue>
#include <sstream>

#include "core/rand.h"
#include "sim/kv_machine.h"
#include "sim/network.h"

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

bool parse_bug(const std::string& name, raft::PlantedBugs& bugs, std::string& error) {
  if (name == "vote-without-log-check") {
    bugs.vote_without_log_check = true;
  } else if (name == "commit-previous-term") {
    bugs.commit_previous_term_by_count = true;
  } else if (name == "vote-before-persist") {
    bugs.vote_before_persist = true;
  } else if (name == "read-index-without-quorum") {
    bugs.read_index_without_quorum = true;
  } else {
    error = "unknown bug '" + name +
            "' (known: vote-without-log-check, commit-previous-term, vote-before-persist, "
            "read-index-without-quorum)";
    return false;
  }
  return true;
}

std::string replay_command(const SimOptions& o) {
  std::ostringstream os;
  os << "synod sim --seed " << o.seed << " --nodes " << o.nodes << " --faults "
     << fault_list(o.faults) << " --ops " << o.ops << " --clients " << o.clients;
  if (o.bugs.vote_without_log_check) os << " --bug vote-without-log-check";
  if (o.bugs.commit_previous_term_by_count) os << " --bug commit-previous-term";
  if (o.bugs.vote_before_persist) os << " --bug vote-before-persist";
  if (o.bugs.read_index_without_quorum) os << " --bug read-index-without-quorum";
  if (o.read_mode == raft::ReadMode::kLease) os << " --lease-reads";
  if (o.election_crash_probability != SimOptions{}.election_crash_probability) {
    os << " --election-crash " << o.election_crash_probability;
  }
  if (o.max_inflight_msgs != 0) os << " --window " << o.max_inflight_msgs;
  if (o.election_crash_max_delay_us != SimOptions{}.election_crash_max_delay_us) {
    os << " --election-crash-delay-us " << o.election_crash_max_delay_us;
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
};

struct EventOrder {
  bool operator()(const Event* a, const Event* b) const {
    return a->time != b->time ? a->time > b->time : a->seq > b->seq;
  }
};

struct Node {
  int id = 0;
  bool up = true;
  bool paused = false;
  uint64_t gen = 0;
  uint64_t tick_us = 0;
  std::unique_ptr<raft::Raft> raft;
  raft::Persisted durable;
  std::optional<raft::Ready> inflight;  // a Ready waiting for its fsync
  std::unique_ptr<KvMachine> kv;        // the replica's kv::Store; its applied index is the node's
  int64_t compaction_proposed = 0;      // highest MVCC compaction revision this leader proposed
  uint64_t next_read_context = 0;
  std::map<uint64_t, KvCommand> reads;                   // context -> request
  std::vector<std::pair<Index, KvCommand>> reads_ready;  // read index -> request
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
};

class Sim {
 public:
  Sim(const SimOptions& o, std::ostream& log)
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
  // Event plumbing.
  Event& schedule(uint64_t at, EventType type) {
    events_.push_back(std::make_unique<Event>());
    Event& e = *events_.back();
    e.time = at;
    e.seq = next_seq_++;
    e.type = type;
    queue_.push(&e);
    return e;
  }
  void dispatch(const Event& e);
  bool node_event_blocked(const Event& e);
  std::ostream& at() {
    log_ << "[" << now_ / 1000 << "ms] ";
    return log_;
  }

  // Nodes.
  void start_node(int id, bool fresh_member);
  raft::Config node_config(int id) const;
  void after_input(Node& n);
  void process_ready(Node& n);
  void on_fsync(Node& n);
  void persist(Node& n, const raft::Ready& rd);
  void apply(Node& n, const raft::Ready& rd);
  void serve_reads(Node& n);
  void maybe_compact(Node& n);
  void maybe_compact_history(Node& n);
  void restore_store(Node& n, const raft::Snapshot& snapshot);
  void check_store_convergence();
  void send(Node& n, const std::vector<raft::Message>& msgs);
  void crash(Node& n);
  void restart(Node& n);
  void on_client_request(Node& n, const KvCommand& req);
  void reply(Node& n, const KvCommand& req, ReplyStatus status, KvResult result);
  void observe(Node& n);
  Node* leader();

  // Clients.
  void client_next(Client& c);
  void client_reply(Client& c, const ClientReply& r);
  void client_timeout(Client& c, uint64_t seq);
  void finish_op(Client& c, check::Outcome outcome);

  // Faults.
  void inject_fault();
  void heal(Fault f);
  void heal_all();
  void membership_step();
  bool fault_phase() const { return !healed_; }

  const SimOptions& o_;
  std::ostream& log_;
  Rng rng_;
  Rng net_rng_, fault_rng_, client_rng_, disk_rng_;
  Network net_;
  LinkParams baseline_;
  check::RaftInvariants inv_;
  std::vector<check::Violation> store_violations_;  // StoreApply, StoreRestore, StoreConvergence
  SimResult result_;

  std::vector<std::unique_ptr<Event>> events_;
  std::priority_queue<Event*, std::vector<Event*>, EventOrder> queue_;
  uint64_t next_seq_ = 0;
  uint64_t now_ = 0;

  std::vector<Node> nodes_;  // index 0 unused
  std::vector<Client> clients_;
  std::vector<check::Operation> history_;
  raft::ConfState initial_conf_;
  std::set<std::pair<uint64_t, int>> leaders_seen_;
  int issued_ = 0;
  uint64_t max_msg_bytes_ = 256;
  uint32_t max_inflight_msgs_ = 4;

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

void Sim::start_node(int id, bool fresh_member) {
  Node& n = nodes_[id];
  n.up = true;
  n.paused = false;
  ++n.gen;
  n.inflight.reset();
  n.reads.clear();
  n.reads_ready.clear();
  n.writes.clear();
  raft::Config c = node_config(id);
  c.seed += n.gen * 7919;
  if (fresh_member) c.initial_conf = initial_conf_;
  n.kv = std::make_unique<KvMachine>();
  n.compaction_proposed = 0;
  if (n.durable.snapshot) {
    restore_store(n, *n.durable.snapshot);
    c.applied = n.durable.snapshot->meta.index;
  }
  if (!n.durable.snapshot && n.durable.entries.empty() && n.durable.hard_state.term.value == 0 &&
      !fresh_member) {
    c.initial_conf = {};  // a node joining later learns its membership from the leader
  } else if (!fresh_member) {
    c.initial_conf = initial_conf_;
  }
  n.raft = std::make_unique<raft::Raft>(c, n.durable);
  Event& t = schedule(now_ + n.tick_us, EventType::kTick);
  t.node = id;
  t.gen = n.gen;
}

void Sim::after_input(Node& n) {
  inv_.on_step(*n.raft);
  observe(n);
  process_ready(n);
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

void Sim::process_ready(Node& n) {
  if (!n.up || n.paused || n.inflight || !n.raft->has_ready()) return;
  raft::Ready rd = n.raft->ready();
  inv_.on_ready(*n.raft, rd);
  send(n, rd.immediate_messages);
  n.inflight = std::move(rd);
  // fsync latency: usually fast, with a slow tail, as real disks have.
  const uint64_t fsync_us =
      disk_rng_.chance(0.1) ? disk_rng_.range(5'000, 20'000) : disk_rng_.range(100, 1'500);
  Event& e = schedule(now_ + fsync_us, EventType::kFsyncDone);
  e.node = n.id;
  e.gen = n.gen;
}

void Sim::persist(Node& n, const raft::Ready& rd) {
  raft::Persisted& d = n.durable;
  if (rd.snapshot) {
    const raft::SnapshotMeta& meta = rd.snapshot->meta;
    d.snapshot = rd.snapshot;
    std::vector<raft::Entry> rest;
    for (const raft::Entry& e : d.entries) {
      if (e.index > meta.index) rest.push_back(e);
    }
    const bool contiguous = rest.empty() || rest.front().index == meta.index + 1;
    d.entries = contiguous ? std::move(rest) : std::vector<raft::Entry>{};
  }
  if (!rd.entries.empty()) {
    const Index first = rd.entries.front().index;
    while (!d.entries.empty() && d.entries.back().index >= first) d.entries.pop_back();
    d.entries.insert(d.entries.end(), rd.entries.begin(), rd.entries.end());
  }
  if (rd.hard_state) d.hard_state = *rd.hard_state;
}

void Sim::on_fsync(Node& n) {
  assert(n.inflight);
  raft::Ready rd = std::move(*n.inflight);
  n.inflight.reset();
  persist(n, rd);
  send(n, rd.messages);
  apply(n, rd);
  n.raft->advance();
  maybe_compact(n);
  maybe_compact_history(n);
  after_input(n);
}

void Sim::apply(Node& n, const raft::Ready& rd) {
  if (rd.snapshot) {
    restore_store(n, *rd.snapshot);
    inv_.on_snapshot_install(n.raft->id(), rd.snapshot->meta);
  }
  for (const raft::Entry& e : rd.committed) {
    if (e.index <= n.kv->applied()) continue;
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
    if (!applied.id) continue;
    auto it = n.writes.find({applied.id->client, applied.id->seq});
    if (it == n.writes.end()) continue;
    if (applied.result) reply(n, it->second, ReplyStatus::kOk, *applied.result);
    n.writes.erase(it);
  }
  for (const raft::ReadState& rs : rd.read_states) {
    auto it = n.reads.find(rs.context);
    if (it == n.reads.end()) continue;
    n.reads_ready.emplace_back(rs.index, it->second);
    n.reads.erase(it);
  }
  serve_reads(n);
}

void Sim::serve_reads(Node& n) {
  // thesis 6.4 step 4: answer once the state machine has caught up with the read index.
  auto it = std::remove_if(n.reads_ready.begin(), n.reads_ready.end(), [&](const auto& r) {
    if (r.first > n.kv->applied()) return false;
    reply(n, r.second, ReplyStatus::kOk, n.kv->read(r.second.key));
    return true;
  });
  n.reads_ready.erase(it, n.reads_ready.end());
}

void Sim::maybe_compact(Node& n) {
  const Index applied = n.kv->applied();
  if (applied - n.raft->log().snapshot().index < o_.compact_every) return;
  std::string image = n.kv->image();
  auto meta = n.raft->compact(applied, image);
  if (!meta) return;
  n.durable.snapshot = raft::Snapshot{*meta, std::move(image)};
  std::erase_if(n.durable.entries, [&](const raft::Entry& e) { return e.index <= meta->index; });
}

void Sim::maybe_compact_history(Node& n) {
  // Auto-compaction, as an etcd deployment runs it: the leader proposes an MVCC compaction that
  // keeps the last kHistoryRevisions revisions. Without it the store keeps every version, and
  // snapshot images (sent in 128-byte chunks) grow with the run.
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

void Sim::restore_store(Node& n, const raft::Snapshot& snapshot) {
  // The image was taken with the store at the snapshot's index, so it must restore to exactly
  // that index; anything else is a bug in the store's image or in snapshot transfer.
  if (n.kv->restore(snapshot.data) && n.kv->applied() == snapshot.meta.index) return;
  std::ostringstream os;
  os << "n" << n.id << ": the snapshot image at index " << snapshot.meta.index << " ("
     << snapshot.data.size() << " bytes) restores to applied index " << n.kv->applied();
  store_violations_.push_back({"StoreRestore", os.str()});
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
  n.inflight.reset();  // the un-fsynced Ready is lost
  n.deferred.clear();
  if (o_.verbose) at() << "crash n" << n.id << "\n";
  std::map<NodeId, const raft::Persisted*> durable;
  for (size_t i = 1; i < nodes_.size(); ++i) durable[NodeId(i)] = &nodes_[i].durable;
  inv_.on_crash(NodeId(n.id), durable);
}

void Sim::restart(Node& n) {
  if (n.up) return;
  if (o_.verbose) at() << "restart n" << n.id << "\n";
  start_node(n.id, false);
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
  if (req.op == KvOp::kGet) {
    const uint64_t context = ++n.next_read_context;
    const raft::Status st = n.raft->read_index(context);
    if (st == raft::Status::kOk || st == raft::Status::kForwarded) {
      n.reads.emplace(context, req);
    } else {
      reply(n, req, ReplyStatus::kRejected, {});
    }
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
  int target = c.leader_hint;
  if (target < 1 || target > o_.nodes || client_rng_.chance(0.2)) {
    target = 1 + static_cast<int>(client_rng_.uniform(o_.nodes));
  }
  Event& e = schedule(now_ + client_rng_.range(200, 1000), EventType::kClientRequest);
  e.node = target;
  e.request = req;
  Event& t = schedule(now_ + o_.client_timeout_us, EventType::kClientTimeout);
  t.client = static_cast<int>(c.id);
  t.gen = c.seq;
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
  // A read that timed out changed nothing; a write may still land.
  finish_op(c, c.op.kind == check::OpKind::kGet ? check::Outcome::kFail : check::Outcome::kInfo);
}

// ---------------------------------------------------------------------------------------------
// Faults: each one bounded in time and healed; all healed before the final phase.

void Sim::inject_fault() {
  if (!fault_phase()) return;
  std::vector<Fault> enabled(o_.faults.begin(), o_.faults.end());
  enabled.erase(std::remove(enabled.begin(), enabled.end(), Fault::kDrift), enabled.end());
  if (!enabled.empty()) {
    const Fault f = enabled[fault_rng_.uniform(enabled.size())];
    const uint64_t duration = fault_rng_.range(100'000, 1'500'000);
    bool injected = true;
    Node* lead = leader();
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
  schedule(now_ + fault_rng_.range(100'000, 600'000), EventType::kFault);
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
    Event& e = schedule(now_, EventType::kClientNext);
    e.client = static_cast<int>(c.id);
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
    if (membership_stage_ == 1) {
      // The removed node is wiped: it comes back as a new, empty member.
      Node& n = nodes_[membership_node_];
      n.up = false;
      n.inflight.reset();
      n.deferred.clear();
      n.durable = raft::Persisted{};
      start_node(membership_node_, false);
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
      n.raft->tick();
      after_input(n);
      return;
    }
    case EventType::kDeliver:
      if (node_event_blocked(e)) return;
      nodes_[e.node].raft->step(e.msg);
      after_input(nodes_[e.node]);
      return;
    case EventType::kFsyncDone: {
      Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen || !n.inflight) return;
      if (node_event_blocked(e)) return;
      on_fsync(n);
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
        process_ready(n);
      } else {
        heal(f);
      }
      return;
    }
    case EventType::kMembership:
      membership_step();
      return;
    case EventType::kTargetedCrash: {
      Node& n = nodes_[e.node];
      int down = 0;
      for (size_t i = 1; i < nodes_.size(); ++i) down += (!nodes_[i].up || nodes_[i].paused);
      // Unlike random crashes, these may take down a majority for a moment (a rack losing
      // power): that is what Raft figure 8 needs, and it is only liveness that suffers.
      if (!fault_phase() || !n.up || n.paused || down >= o_.nodes - 1) return;
      crash(n);
      ++result_.faults_injected["crash-after-election"];
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
    start_node(i, true);
  }
  clients_.resize(o_.clients);
  for (int c = 0; c < o_.clients; ++c) {
    clients_[c].id = static_cast<uint32_t>(c);
    Event& e = schedule(200'000 + client_rng_.range(0, 10'000), EventType::kClientNext);
    e.client = c;
  }
  if (!o_.faults.empty()) schedule(300'000, EventType::kFault);
  const uint64_t fault_phase_cap_us = 120'000'000;
  const uint64_t liveness_us = o_.liveness_ticks * o_.tick_us;
  while (!queue_.empty()) {
    const Event* e = queue_.top();
    queue_.pop();
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
  check_store_convergence();
  result_.violations = inv_.violations();
  result_.violations.insert(result_.violations.end(), store_violations_.begin(),
                            store_violations_.end());
  check::CheckOptions check_options;
  check_options.max_states = 500'000;
  result_.linearizability = check::check_kv(history_, check_options);
  return result_;
}

}  // namespace

SimResult run_simulation(const SimOptions& options, std::ostream& log) {
  Sim sim(options, log);
  return sim.run();
}

void print_summary(const SimOptions& o, const SimResult& r, std::ostream& out) {
  out << "seed " << o.seed << ": " << o.nodes << " nodes, faults " << fault_list(o.faults) << ", "
      << o.clients << " clients\n";
  out << "  operations   ok=" << r.ops_ok << " fail=" << r.ops_fail << " info=" << r.ops_info
      << "  committed entries=" << r.committed << "\n";
  out << "  elections    " << r.elections << "\n";
  out << "  messages     sent=" << r.messages_sent << " dropped=" << r.messages_dropped
      << " duplicated=" << r.messages_duplicated << " snapshot-chunks=" << r.snapshots_sent << "\n";
  out << "  faults      ";
  if (r.faults_injected.empty()) out << " none";
  for (const auto& [name, count] : r.faults_injected) out << " " << name << "=" << count;
  out << "\n";
  out << "  virtual time " << r.end_time_us / 1000 << " ms\n";
  out << "  invariants   " << (r.violations.empty() ? "ok" : "VIOLATED") << "\n";
  for (const check::Violation& v : r.violations) {
    out << "    " << v.invariant << ": " << v.detail << "\n";
  }
  out << "  linearizable " << check::to_string(r.linearizability.verdict) << " ("
      << r.linearizability.states_explored << " states)\n";
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
