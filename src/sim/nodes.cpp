#include "sim/nodes.h"

#include <algorithm>
#include <sstream>

#include "base/assert.h"
#include "check/paxos_invariants.h"
#include "check/pbft_invariants.h"
#include "check/raft_invariants.h"
#include "core/pbft/crypto.h"
#include "replica/memory_log.h"

namespace synod::sim {

using raft::Index;
using raft::NodeId;

// A simulated member's I/O under the one replica driver: a fake disk (the log as raft::Persisted,
// written at fsync events; the store's durable image), the simulated network, and the state
// machine. The server's Node is the other Host; the Ready loop, snapshots, compaction and reads
// are the driver's in both.
class NodeHost final : public replica::Host {
 public:
  NodeHost(Nodes& nodes, Node& node) : nodes_(nodes), node_(node) {}
  bool persist(const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state, bool sync) override;
  void save_snapshot(const raft::Snapshot& snapshot) override;
  void send(std::vector<raft::Message> messages) override;
  void fetch_state(raft::NodeId from, uint64_t min_index, bool retained) override;
  void retain_state(uint64_t index) override;
  std::vector<std::pair<uint64_t, std::string>> retained_states() const override;
  std::string image_digest(const std::string& image) const override;
  uint64_t applied_index() const override;
  void apply(std::span<const raft::Entry> entries) override;
  bool restore(const raft::SnapshotMeta& meta, const std::string& image) override;
  void flush_state(uint64_t applied) override;
  void note(const std::string& event) override {
    if (nodes_.o_.verbose) nodes_.world_.at() << "n" << node_.id << ": " << event << "\n";
  }

 private:
  Nodes& nodes_;
  Node& node_;
};

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
  uint64_t fsync_us = nodes_.world_.disk_rng.chance(0.1)
                          ? nodes_.world_.disk_rng.range(5'000, 20'000)
                          : nodes_.world_.disk_rng.range(100, 1'500);
  if (nodes_.world_.buggify(nodes_.world_.sites.slow_fsync, 0.05))
    fsync_us = nodes_.world_.disk_rng.range(50'000, 200'000);
  // A vote is promised only once durable: a crash inside its fsync must lose nothing promised.
  const raft::HardState& was = node_.durable.hard_state;
  if (hard_state && (hard_state->vote != was.vote || hard_state->term != was.term) &&
      nodes_.world_.buggify(nodes_.world_.sites.crash_in_vote_fsync, 0.5)) {
    Event& crash =
        nodes_.node_event(nodes_.world_.now() + nodes_.world_.disk_rng.range(0, fsync_us - 1),
                          EventType::kTargetedCrash, node_.id);
    crash.tag = 1;  // counted apart from the crashes after elections
  }
  Event& e = nodes_.node_event(nodes_.world_.now() + fsync_us, EventType::kFsyncDone, node_.id);
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
  nodes_.send(node_, messages);
}

void NodeHost::fetch_state(raft::NodeId from, uint64_t min_index, bool retained) {
  nodes_.request_state(node_, nodes_.slot_of(from), min_index, retained);
}

// Written out durably at once (the image is small); the digest reaches the driver a little
// later, as the server's hashing off the raft thread does.
void NodeHost::retain_state(uint64_t index) {
  std::string image = node_.kv->image();
  std::string digest = image_digest(image);
  node_.retained[index] = {std::move(image), digest};
  while (node_.retained.size() > kRetainedStates) node_.retained.erase(node_.retained.begin());
  Event& e = nodes_.node_event(nodes_.world_.now() + nodes_.world_.disk_rng.range(100, 5'000),
                               EventType::kStateRetained, node_.id);
  e.gen = node_.gen;
  e.index = index;
  e.image = std::move(digest);
}

std::vector<std::pair<uint64_t, std::string>> NodeHost::retained_states() const {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const auto& [index, kept] : node_.retained) out.emplace_back(index, kept.second);
  return out;
}

std::string NodeHost::image_digest(const std::string& image) const {
  const pbft::Digest d = pbft::hash(image);
  return std::string(d.begin(), d.end());
}

uint64_t NodeHost::applied_index() const {
  return node_.kv->applied().value;
}

void NodeHost::apply(std::span<const raft::Entry> entries) {
  nodes_.apply(node_, entries);
}

bool NodeHost::restore(const raft::SnapshotMeta& meta, const std::string& image) {
  return nodes_.restore_store(node_, meta, image);
}

void NodeHost::flush_state(uint64_t applied) {
  // RocksDB writing its memtables out: a few ms to tens of ms, off the raft thread.
  Event& e = nodes_.node_event(nodes_.world_.now() + nodes_.world_.disk_rng.range(1'000, 30'000),
                               EventType::kStoreFlushed, node_.id);
  e.gen = node_.gen;
  e.index = applied;
}

raft::EngineConfig Nodes::node_config(int id) const {
  raft::EngineConfig c;
  c.id = nodes_[id].member;
  c.seed = o_.seed * 1000 + id;
  c.election_ticks = o_.election_ticks;
  c.heartbeat_ticks = 1;
  c.read_mode = o_.read_mode;
  // Replication shape varies by seed: small messages and windows make replication take many
  // rounds, which is where interleavings with faults get interesting.
  c.max_msg_bytes = max_msg_bytes_;
  c.max_inflight_msgs = max_inflight_msgs_;
  c.snapshot_chunk_bytes = 128;
  c.max_open_slots = 64;  // small, so that what a new leader proposes again stays small
  return c;
}

// PBFT replicas hold keys drawn from the run's seed; every one knows the founding members'
// public keys. Checkpoints and the log window are small so that runs cross many of them.
replica::PbftOptions Nodes::pbft_options(const Node& n) const {
  replica::PbftOptions p;
  std::map<uint64_t, pbft::PublicKeys> replicas;
  for (NodeId v : initial_conf_.voters) {
    replicas[v.value] = pbft::make_keys_from_seed(o_.seed, v.value).pub;
  }
  p.keys = std::make_shared<pbft::Keyring>(pbft::make_keys_from_seed(o_.seed, n.member.value),
                                           std::move(replicas));
  p.faults = static_cast<uint32_t>(pbft_faults(o_));
  p.checkpoint_interval = 8;
  p.log_window = 32;
  p.state_interval = 16;
  p.max_batch = 8;
  p.status_ticks = 3;
  // As the server's: from the clock (here the simulated one), and above what the state
  // machine applied from this replica before it restarted.
  const pbft::PublicKey& me = p.keys->public_keys().kx;
  const uint64_t applied_from_me = n.kv->store().session_highest(
      std::string_view(reinterpret_cast<const char*>(me.data()), me.size()));
  p.timestamp_base = std::max((world_.now() + 1) << 20, applied_from_me + 1);
  return p;
}

void Nodes::start(int id) {
  Node& n = nodes_[id];
  n.up = true;
  n.paused = false;
  ++n.gen;
  n.writing.reset();
  n.has_unsynced = false;
  n.writes.clear();
  raft::EngineConfig c = node_config(id);
  c.seed += n.gen * 7919;
  n.kv = std::make_unique<KvMachine>(/*redeliveries=*/o_.engine != replica::EngineKind::kPbft);
  // As the server's: a new leader extends leases by the election timeout; a revoke that has
  // not applied is proposed again after a few election timeouts.
  const int64_t election_us = int64_t{o_.election_ticks} * static_cast<int64_t>(o_.tick_us);
  n.lessor = std::make_unique<kv::Lessor>(
      election_us, 5 * election_us,
      kv::LessorBugs{.keep_deadlines_on_promotion = o_.workload_bugs.lessor_keeps_deadlines});
  n.hub = std::make_unique<kv::WatchHub>(1 + static_cast<int64_t>(n.gen % 4));
  n.watch_out.clear();
  observer_.started(n);  // the old process's streams are gone
  n.compaction_proposed = 0;
  // Recovery, as the server's: the store as it was last made durable (at or past the log's
  // snapshot, which refers to it), then the log's entries after what the store applied.
  if (!n.store_image.empty() && !n.kv->restore(n.store_image)) {
    world_.flag("StoreRestore",
                "n" + std::to_string(id) + ": its durable store image does not restore");
  }
  c.applied = raft::Index(replica::recover(o_.engine, n.durable, n.kv->applied().value));
  // A founding member starts from the founding membership, as the server does with
  // --initial-cluster-state new, even if it died before its first fsync; a member added later
  // learns its membership from the leader.
  if (n.founding) c.initial_conf = initial_conf_;
  n.engine = replica::make_engine(
      o_.engine, c, n.durable, o_.bugs,
      o_.engine == replica::EngineKind::kPbft ? pbft_options(n) : replica::PbftOptions{});
  n.host = std::make_unique<NodeHost>(*this, n);
  replica::DriverOptions driver_options;
  driver_options.snapshot_entries = o_.compact_every;
  // Each process of the slot its own range of read contexts.
  driver_options.first_read_context = (n.gen << 32) + 1;
  n.driver = std::make_unique<replica::Driver>(
      *n.engine, *n.host, driver_options,
      n.durable.snapshot ? n.durable.snapshot->meta.index.value : 0);
  n.driver->set_ready_observer(
      [this](const Engine& engine, const raft::Ready& rd) { inv_->on_ready(engine, rd); });
  Event& t = node_event(world_.now() + n.tick_us, EventType::kTick, id);
  t.gen = n.gen;
}

void Nodes::after_input(Node& n) {
  inv_->on_step(*n.engine);
  if (duel_ != nullptr) duel_step();
  observe(n);
  if (!n.up || n.paused) return;
  n.driver->run();
  for (int i = 0; i < 100 && n.hub->has_unsynced(); ++i)
    n.hub->catch_up(n.kv->store(), &n.watch_out);
  observer_.stepped(n);
}

void Nodes::observe(Node& n) {
  if (n.engine->role() != raft::Role::kLeader) return;
  if (leaders_seen_.emplace(n.engine->term().value, n.id).second) {
    ++world_.result.elections;
    if (o_.verbose) world_.at() << "n" << n.id << " is leader of term " << n.engine->term() << "\n";
    observer_.elected(n);
  }
  if (!world_.fault_phase() && first_leader_after_heal_ == 0)
    first_leader_after_heal_ = world_.now();
}

Node* Nodes::leader() {
  Node* best = nullptr;
  for (size_t i = 1; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (!n.up || n.paused || n.engine->role() != raft::Role::kLeader) continue;
    if (best == nullptr || n.engine->term() > best->engine->term()) best = &n;
  }
  return best;
}

void Nodes::on_fsync(Node& n) {
  SYNOD_ASSERT(n.writing.has_value());
  if (n.has_unsynced) {
    replica::write_log(n.durable, n.unsynced.entries, n.unsynced.hard_state);
    n.unsynced = {};
    n.has_unsynced = false;
  }
  inv_->on_durable(n.member, n.writing->first, n.writing->second);
  replica::write_log(n.durable, n.writing->first, n.writing->second);
  n.writing.reset();
  n.driver->persisted();
  maybe_compact_history(n);
  after_input(n);
}

void Nodes::apply(Node& n, std::span<const raft::Entry> entries) {
  for (const raft::Entry& e : entries) {
    SYNOD_ASSERT(e.index > n.kv->applied());
    inv_->on_apply(n.engine->id(), e);
    world_.result.committed = std::max(world_.result.committed, e.index.value);
    // A PBFT entry names its client and timestamp: it takes effect once however often it was
    // ordered (an undecodable one is flagged by StoreApply below, as the server logs it).
    std::optional<raft::ClientOp> client_op;
    if (e.type == raft::EntryType::kClientOp) client_op = raft::decode_client_op(e.data);
    const bool normal = e.type == raft::EntryType::kNormal || e.type == raft::EntryType::kClientOp;
    const std::string& data = client_op ? client_op->op : e.data;
    if (!normal || e.data.empty()) {
      n.kv->advance(e.index);  // leader no-op or conf change: no KV effect
      continue;
    }
    const kv::ClientStamp stamp{client_op ? std::string_view(client_op->client) : "",
                                client_op ? client_op->timestamp : 0};
    const KvApplied applied = n.kv->apply(e.index, data, client_op ? &stamp : nullptr);
    if (applied.store_error) {
      std::ostringstream os;
      os << "n" << n.id << " index " << e.index << ": " << *applied.store_error;
      world_.flag("StoreApply", os.str());
    }
    const bool ok = applied.result && !applied.result->error;
    if (applied.result && applied.result->error && o_.workload == Workload::kRegister) {
      // The register workload's puts and txns are always valid: a refusal is a store bug.
      std::ostringstream os;
      os << "n" << n.id << " index " << e.index << ": " << *applied.result->error;
      world_.flag("StoreApply", os.str());
    }
    if (ok && applied.request.has_lease_grant()) {
      n.lessor->on_grant(applied.request.lease_grant().id(), applied.request.lease_grant().ttl(),
                         static_cast<int64_t>(world_.now()));
    } else if (ok && applied.request.has_lease_revoke()) {
      n.lessor->on_revoke(applied.request.lease_revoke().id());
    }
    if (applied.changed)
      n.hub->on_write(n.kv->revision(), applied.events, n.kv->store(), &n.watch_out);
    if (e.index > truth_.index()) truth_.record_apply(*n.kv, applied, ok);
    if (!applied.id) continue;
    auto it = n.writes.find({applied.id->client, applied.id->seq});
    if (it == n.writes.end()) continue;
    if (applied.result) reply(n, it->second, ReplyStatus::kOk, *applied.result);
    n.writes.erase(it);
  }
  // RocksDB may write its memtables out on its own at any time: the durable store then runs
  // ahead of the log's snapshot, which recovery must handle.
  if (world_.disk_rng.chance(0.02) || world_.buggify(world_.sites.store_written_out, 0.3)) {
    n.store_image = n.kv->image();
  }
}

// thesis 6.4 step 4: the driver calls this once the state machine has caught up with the read
// index.
void Nodes::serve_read(Node& n, const KvCommand& req) {
  if (req.op == KvOp::kKeepAlive) {
    answer_keepalive(n, req);
  } else if (req.op == KvOp::kRange) {
    reply(n, req, ReplyStatus::kOk, n.kv->range(req.range));
  } else {
    reply(n, req, ReplyStatus::kOk, n.kv->read(req.key));
  }
}

void Nodes::maybe_compact_history(Node& n) {
  // Auto-compaction, as an etcd deployment runs it: the leader proposes an MVCC compaction that
  // keeps the last kHistoryRevisions revisions. Without it the store keeps every version, and
  // the state images fetched for snapshots grow with the run.
  static constexpr int64_t kHistoryRevisions = 8;
  if (n.engine->role() != raft::Role::kLeader) return;
  const int64_t target = n.kv->revision() - kHistoryRevisions;
  if (target - std::max<int64_t>(n.kv->compact_revision(), n.compaction_proposed) <
      kHistoryRevisions) {
    return;
  }
  if (n.engine->propose(encode_compaction(target)).status == raft::Status::kOk) {
    n.compaction_proposed = target;
  }
}

// A fetched state replaces the node's store, durably. The member that served it had applied at
// least the snapshot's index; a state that does not restore, or restores below that, is a bug
// in the store's image or in the transfer.
bool Nodes::restore_store(Node& n, const raft::SnapshotMeta& meta, const std::string& image) {
  std::vector<kv::WatchOutput> marks;  // none: the simulator's hubs make no marks
  n.hub->on_restore(&marks);
  if (n.kv->restore(image) && n.kv->applied() >= meta.index) {
    n.store_image = image;
    inv_->on_snapshot_install(n.engine->id(), meta);
    return true;
  }
  std::ostringstream os;
  os << "n" << n.id << ": the state fetched for the snapshot at index " << meta.index << " ("
     << image.size() << " bytes) restores to applied index " << n.kv->applied();
  world_.flag("StoreRestore", os.str());
  return false;
}

// The production path of a snapshot's state (the server's Peer.FetchState): a request to the
// leader over the simulated network, the leader's whole store back. Either leg may be lost, the
// leader may be down or frozen, or behind the index asked for; the asker then hears of the
// failure after a timeout and its driver tries again.
void Nodes::request_state(Node& n, int from, uint64_t min_index, bool retained) {
  ++world_.result.state_fetches;
  auto fail_later = [&](const std::string& why) {
    Event& e = node_event(world_.now() + 200'000, EventType::kStateFetched, n.id);
    e.gen = n.gen;
    e.error = why;
  };
  if (from < 1 || from >= static_cast<int>(nodes_.size())) return fail_later("unknown member");
  const std::vector<uint64_t> times =
      world_.net.send(host(n.id), host(from), 64, world_.now(), world_.net_rng);
  if (times.empty()) return fail_later("request lost");
  Event& e = node_event(times.front(), EventType::kFetchServe, from);
  e.client = n.id;
  e.gen = n.gen;
  e.index = min_index;
  e.retained = retained;
}

void Nodes::serve_state(const Event& e) {
  Node& server = nodes_[e.node];
  Node& asker = nodes_[e.client];
  Event answer;
  answer.node = asker.id;
  answer.group = group_;
  answer.gen = e.gen;
  uint64_t at = world_.now() + 200'000;  // a failed fetch shows as a timeout
  auto kept = server.retained.lower_bound(e.index);
  if (!server.up || server.paused) {
    answer.error = "member down";
  } else if (e.retained ? kept == server.retained.end() : server.kv->applied().value < e.index) {
    answer.error = "member is behind the index asked for";
  } else if (world_.fault_phase() && !o_.faults.empty() &&
             world_.fault_rng.chance(world_.sites.failed_fetch ? 0.5 : 0.05)) {
    answer.error = "stream broken";  // a transfer cut short: the asker must try again
  } else {
    answer.index = e.retained ? kept->first : server.kv->applied().value;
    std::string image = e.retained ? kept->second.first : server.kv->image();
    if (server.byzantine && adversary_ != nullptr) adversary_->state(server.id, image);
    const std::vector<uint64_t> times = world_.net.send(host(server.id), host(asker.id),
                                                        image.size(), world_.now(), world_.net_rng);
    if (times.empty()) {
      answer.error = "answer lost";
    } else {
      at = times.front();
      answer.image = std::move(image);
    }
  }
  Event& out = world_.schedule(at, EventType::kStateFetched);
  const uint64_t seq = out.seq;
  out = std::move(answer);
  out.type = EventType::kStateFetched;
  out.time = at;
  out.seq = seq;
}

void Nodes::state_fetched(const Event& e) {
  Node& n = nodes_[e.node];
  if (!e.image) ++world_.result.state_fetch_failures;
  n.driver->state_fetched(e.image, e.index, e.error);
  after_input(n);
}

void Nodes::check_store_convergence() {
  // Replicas that applied the same prefix of the log hold byte-identical stores (kv::Store is
  // deterministic), however each got there: by entries, by snapshot, across restarts. A
  // Byzantine replica's store is no claim of the system's: only honest ones are compared.
  std::map<Index, std::pair<int, std::string>> image_at;  // applied index -> (node, image)
  for (size_t i = 1; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (!n.up || n.byzantine) continue;
    std::string image = n.kv->image();
    auto [it, inserted] = image_at.try_emplace(n.kv->applied(), n.id, image);
    if (inserted || it->second.second == image) continue;
    std::ostringstream os;
    os << "n" << it->second.first << " and n" << n.id << " both applied through index "
       << n.kv->applied() << " but their stores differ";
    world_.flag("StoreConvergence", os.str());
  }
}

void Nodes::send(Node& n, const std::vector<raft::Message>& msgs) {
  for (const raft::Message& m : msgs) {
    ++world_.result.messages_sent;
    if (m.type == raft::MessageType::kSnapshot) ++world_.result.snapshots_sent;
    const int to = slot_of(m.to);
    if (to == 0) continue;  // a removed member: nobody listens there
    if (duel_ != nullptr && duel_->hold(n.id, to, m)) {
      if (o_.trace) {
        world_.at() << raft::to_string(m.type) << " n" << m.from << "->n" << m.to
                    << " term=" << m.term << " HELD by the adversary\n";
      }
      continue;
    }
    if (n.byzantine && adversary_ != nullptr) {
      const bool primary = n.engine->role() == raft::Role::kLeader;
      for (const Adversary::Out& o : adversary_->outgoing(n.id, primary, m)) {
        transmit(n.id, to, o.msg, o.delay_us);
      }
      continue;
    }
    transmit(n.id, to, m);
  }
}

void Nodes::transmit(int from, int to, const raft::Message& m, uint64_t extra_delay_us) {
  auto times = world_.net.send(host(from), host(to), m.byte_size(), world_.now(), world_.net_rng);
  for (uint64_t& t : times) t += extra_delay_us;
  if (times.empty()) ++world_.result.messages_dropped;
  if (times.size() > 1) ++world_.result.messages_duplicated;
  if (o_.trace) {
    world_.at() << raft::to_string(m.type) << " n" << m.from << "->n" << m.to << " term=" << m.term
                << " idx=" << m.log_index << " entries=" << m.entries.size()
                << (m.reject ? " reject" : "") << (times.empty() ? " DROPPED" : "") << "\n";
  }
  for (uint64_t t : times) {
    Event& e = node_event(t, EventType::kDeliver, to);
    e.msg = m;
  }
}

void Nodes::duel_step() {
  std::vector<Duel::Member> members(nodes_.size());
  for (size_t i = 1; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    if (!n.up || n.engine == nullptr) continue;
    // A candidate (of either engine) has promised its term to itself.
    members[i] = {true, n.engine->role() == raft::Role::kCandidate, n.engine->role(),
                  n.engine->term().value, n.engine->committed_index().value};
  }
  for (const Duel::Held& h : duel_->observe(members, world_.now(), world_.log)) {
    transmit(h.from, h.to, h.msg);
  }
}

void Nodes::crash(Node& n) {
  n.up = false;
  n.writing.reset();  // the write whose fsync had not returned is lost, and so is
  n.unsynced = {};    // what was written without one
  n.has_unsynced = false;
  n.deferred.clear();
  observer_.crashed(n);
  if (o_.verbose) world_.at() << "crash n" << n.id << "\n";
  std::map<NodeId, const raft::Persisted*> durable;
  for (size_t i = 1; i < nodes_.size(); ++i) durable[nodes_[i].member] = &nodes_[i].durable;
  inv_->on_crash(n.member, durable);
}

void Nodes::restart(Node& n) {
  if (n.up || n.retired) return;
  if (o_.verbose) world_.at() << "restart n" << n.id << "\n";
  start(n.id);
}

bool Nodes::blocked(const Event& e) {
  Node& n = nodes_[e.node];
  if (!n.up) return true;
  if (n.paused) {
    n.deferred.push_back(e);
    return true;
  }
  return false;
}

void Nodes::on_client_request(Node& n, const KvCommand& req, const std::string& bft) {
  if (o_.trace) world_.at() << "n" << n.id << " <- c" << req.client << " #" << req.seq << "\n";
  if (req.op == KvOp::kKeepAlive && n.engine->role() != raft::Role::kLeader) {
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
    const raft::ProposeResult r = n.engine->propose(bft.empty() ? req.encode() : bft);
    if (r.status == raft::Status::kOk || r.status == raft::Status::kForwarded) {
      n.writes.emplace(std::make_pair(req.client, req.seq), req);
    } else {
      reply(n, req, ReplyStatus::kRejected, {});
    }
  }
  after_input(n);
}

void Nodes::answer_keepalive(Node& n, const KvCommand& req) {
  const auto now = static_cast<int64_t>(world_.now());
  n.lessor->set_leader(n.engine->role() == raft::Role::kLeader, n.engine->term().value,
                       n.kv->store(), now);
  if (!n.lessor->serving(n.kv->store())) return reply(n, req, ReplyStatus::kRejected, {});
  KvResult r;
  r.ttl = n.lessor->renew(req.lease, n.kv->store(), now);
  if (o_.trace) {
    world_.at() << "n" << n.id << " renews lease " << req.lease << " for c" << req.client << " #"
                << req.seq << ": ttl " << r.ttl << " (applied " << n.kv->applied() << ", term "
                << n.engine->term() << ")\n";
  }
  reply(n, req, ReplyStatus::kOk, std::move(r));
}

// At every tick, as Node::check_leases: the leader proposes the revokes of expired leases.
void Nodes::lessor_tick(Node& n) {
  const auto now = static_cast<int64_t>(world_.now());
  n.lessor->set_leader(n.engine->role() == raft::Role::kLeader, n.engine->term().value,
                       n.kv->store(), now);
  if (n.lessor->epoch_due(n.kv->store(), now)) {
    synodpb::Request epoch;
    epoch.set_lessor_epoch(n.lessor->term());
    n.engine->propose(epoch.SerializeAsString());
  }
  for (int64_t id : n.lessor->due_revokes(n.kv->store(), now, 100)) {
    synodpb::Request revoke;
    revoke.mutable_lease_revoke()->set_id(id);
    revoke.set_expiry_epoch(n.lessor->term());
    n.engine->propose(revoke.SerializeAsString());
  }
}

void Nodes::reply(Node& n, const KvCommand& req, ReplyStatus status, KvResult result) {
  if (n.byzantine && adversary_ != nullptr && status == ReplyStatus::kOk) {
    adversary_->reply(n.id, result);
  }
  Event& e = world_.schedule(world_.now() + world_.client_rng.range(200, 1000),
                             EventType::kClientResponse);
  e.client = static_cast<int>(req.client);
  e.reply.seq = req.seq;
  e.reply.status = status;
  e.reply.result = std::move(result);
  e.reply.leader_hint = slot_of(n.engine->leader());
  e.reply.from = n.id;
}

Nodes::Nodes(World& world, Truth& truth, NodeObserver& observer, GroupSpec spec)
    : world_(world),
      o_(world.options),
      truth_(truth),
      observer_(observer),
      group_(spec.group),
      hosts_(std::move(spec.hosts)) {
  SYNOD_ASSERT(!hosts_.empty());
  if (o_.engine == replica::EngineKind::kMultiPaxos) {
    inv_ = std::make_unique<check::PaxosInvariants>();
  } else if (o_.engine == replica::EngineKind::kPbft) {
    inv_ = std::make_unique<check::PbftInvariants>();
  } else {
    inv_ = std::make_unique<check::RaftInvariants>();
  }
}

Nodes::~Nodes() = default;

Event& Nodes::node_event(uint64_t at, EventType type, int slot) {
  Event& e = world_.schedule(at, type);
  e.node = slot;
  e.group = group_;
  return e;
}

void Nodes::start_all() {
  const int size = static_cast<int>(hosts_.size());
  nodes_.resize(static_cast<size_t>(size) + 1);
  next_member_ = 10;  // past every founding member's
  for (int i = 1; i <= size; ++i) initial_conf_.voters.push_back(NodeId(i));
  inv_->set_initial_conf(initial_conf_);
  Rng drift_rng = world_.rng.fork();
  Rng shape_rng = world_.rng.fork();
  static constexpr uint64_t kMsgBytes[] = {128, 256, 4096};
  static constexpr uint32_t kWindows[] = {1, 2, 4, 16};
  max_msg_bytes_ = kMsgBytes[shape_rng.uniform(3)];
  max_inflight_msgs_ = kWindows[shape_rng.uniform(4)];
  if (o_.max_inflight_msgs != 0) max_inflight_msgs_ = o_.max_inflight_msgs;
  if (o_.faults.contains(Fault::kByzantine)) {
    // The Byzantine replicas, drawn from the seed: any of them, the first primary included.
    Rng pick = world_.rng.fork();
    std::vector<int> slots;
    for (int i = 1; i <= size; ++i) slots.push_back(i);
    std::set<NodeId> members;
    for (int k = 0; k < o_.byzantine && !slots.empty(); ++k) {
      const size_t at = pick.uniform(slots.size());
      byzantine_.insert(slots[at]);
      members.insert(NodeId(slots[at]));
      slots.erase(slots.begin() + static_cast<std::ptrdiff_t>(at));
    }
    static_cast<check::PbftInvariants&>(*inv_).set_byzantine(members);
    adversary_ = std::make_unique<Adversary>(world_, byzantine_, size);
    if (o_.verbose) world_.at() << adversary_->describe() << "\n";
  }
  for (int i = 1; i <= size; ++i) {
    Node& n = nodes_[i];
    n.id = i;
    n.host_id = host(i);
    n.group = group_;
    n.member = NodeId(i);
    n.byzantine = byzantine_.contains(i);
    n.tick_us = o_.tick_us;
    if (o_.faults.contains(Fault::kDrift)) {
      // Up to 15% faster or slower than nominal.
      const int64_t skew_permille = static_cast<int64_t>(drift_rng.uniform(301)) - 150;
      n.tick_us =
          static_cast<uint64_t>(static_cast<int64_t>(o_.tick_us) * (1000 + skew_permille) / 1000);
    }
    start(i);
  }
}

void Nodes::handle(const Event& e) {
  switch (e.type) {
    case EventType::kTick: {
      Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen) return;
      Event& next = node_event(world_.now() + n.tick_us, EventType::kTick, e.node);
      next.gen = e.gen;
      if (n.paused) return;  // a frozen process does not see time pass
      n.driver->tick();
      lessor_tick(n);
      after_input(n);
      return;
    }
    case EventType::kDeliver:
      if (blocked(e)) return;
      nodes_[e.node].driver->step(e.msg);
      after_input(nodes_[e.node]);
      return;
    case EventType::kFsyncDone: {
      Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen || !n.writing) return;
      if (blocked(e)) return;
      on_fsync(n);
      return;
    }
    case EventType::kFetchServe:
      serve_state(e);
      return;
    case EventType::kStateFetched: {
      const Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen) return;  // the asker restarted: not its fetch any more
      if (blocked(e)) return;
      state_fetched(e);
      return;
    }
    case EventType::kStoreFlushed: {
      Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen) return;  // the flush died with the process
      if (blocked(e)) return;
      n.store_image = n.kv->image();  // everything applied so far is written out
      n.driver->state_flushed(e.index);
      after_input(n);
      return;
    }
    case EventType::kStateRetained: {
      Node& n = nodes_[e.node];
      if (!n.up || e.gen != n.gen) return;  // the next process reports it when it starts
      if (blocked(e)) return;
      n.driver->state_retained(e.index, *e.image);
      after_input(n);
      return;
    }
    case EventType::kClientRequest:
      if (blocked(e)) return;
      on_client_request(nodes_[e.node], e.request, e.bft);
      return;
    default:
      SYNOD_ASSERT(false && "not a node event");
  }
}

void Nodes::resume(Node& n) {
  n.paused = false;
  for (Event& e : n.deferred) world_.schedule(world_.now(), e);
  n.deferred.clear();
}

void Nodes::wipe(Node& n) {
  n.up = false;
  n.deferred.clear();
  n.durable = raft::Persisted{};
  n.store_image.clear();
  n.retained.clear();
  n.founding = false;  // it comes back as a member added later
  n.member = NodeId(next_member_++);
  start(n.id);
}

int Nodes::add_slot(int host) {
  hosts_.push_back(host);
  Node& n = nodes_.emplace_back();
  n.id = count();
  n.host_id = host;
  n.group = group_;
  n.member = NodeId(next_member_++);
  n.founding = false;
  n.tick_us = o_.tick_us;
  n.up = false;
  start(n.id);
  return n.id;
}

void Nodes::retire(Node& n) {
  if (n.up) crash(n);
  n.retired = true;
  n.durable = raft::Persisted{};
  n.store_image.clear();
  n.retained.clear();
}

std::vector<int> Nodes::live_slots() const {
  std::vector<int> out;
  for (size_t i = 1; i < nodes_.size(); ++i) {
    if (!nodes_[i].retired) out.push_back(static_cast<int>(i));
  }
  return out;
}

int Nodes::slot_of(raft::NodeId member) const {
  for (size_t i = 1; i < nodes_.size(); ++i) {
    if (nodes_[i].member == member) return static_cast<int>(i);
  }
  return 0;
}

std::string Nodes::describe() const {
  std::ostringstream os;
  for (size_t i = 1; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    os << "\n    n" << n.id;
    if (n.member != NodeId(n.id)) os << " (member " << n.member << ")";
    os << ": "
       << (!n.up      ? "down"
           : n.paused ? "paused"
                      : raft::to_string(n.engine->role()))
       << " term " << n.engine->term() << " leader n" << n.engine->leader() << " voters "
       << raft::to_string(n.engine->conf()) << " last " << n.engine->last_index() << " commit "
       << n.engine->committed_index() << " applied " << n.kv->applied()
       << (n.driver->ready_in_flight()
               ? std::string(" (a Ready waits for ") + n.driver->waiting_for() + ")"
               : std::string());
  }
  return os.str();
}

}  // namespace synod::sim
