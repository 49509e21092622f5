// The simulated members. Each runs the production code under the one replica driver: the Raft
// core, replica::Driver, kv::Store (through KvMachine), kv::Lessor and kv::WatchHub. Only the
// I/O is simulated (NodeHost): a fake disk whose writes are lost by a crash unless fsynced, the
// simulated network, the state fetch of a snapshot over that network, and a virtual clock. A
// node can be crashed, restarted, paused (its inputs wait) and resumed, or wiped.
//
// After every input the Raft invariants (check/raft_invariants.h) are checked; replicas that
// applied the same prefix must hold byte-identical stores (StoreConvergence).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "check/engine_invariants.h"
#include "core/engine.h"
#include "kv/lessor.h"
#include "kv/watch_hub.h"
#include "replica/driver.h"
#include "sim/byzantine.h"
#include "sim/duel.h"
#include "sim/kv_machine.h"
#include "sim/truth.h"
#include "sim/world.h"

namespace synod::sim {

class NodeHost;

// A node is a slot (a host: its network address, its disk) running one member at a time. A
// member wiped and added again comes back under a new member ID, as `etcdctl member add` gives
// one: an ID is never reused for an empty member, or acknowledgements of its earlier process,
// still in flight, would be taken for what the new one holds.
struct Node {
  int id = 0;           // the slot in its group, 1..size
  int host_id = 0;      // the host it runs on (the network address), 1..options.nodes
  uint32_t group = 0;   // the replication group it is a replica of
  raft::NodeId member;  // the Raft ID of the member it runs
  bool up = true;
  bool paused = false;
  uint64_t gen = 0;  // incarnation: events of an earlier process are ignored
  uint64_t tick_us = 0;
  std::unique_ptr<Engine> engine;  // the consensus engine the member runs
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
  // States retained for state transfer (Host::retain_state), durable: index -> image, digest.
  std::map<uint64_t, std::pair<std::string, std::string>> retained;
  bool founding = true;                // started with the founding membership (not added later)
  bool retired = false;                // its replica moved away: down for good, its state dropped
  bool byzantine = false;              // PBFT: runs the adversary's behaviours (sim/byzantine.h)
  std::unique_ptr<KvMachine> kv;       // the replica's kv::Store; its applied index is the node's
  std::unique_ptr<kv::Lessor> lessor;  // lease expiry, as the server's Node runs it
  std::unique_ptr<kv::WatchHub> hub;   // the node's watchers
  std::vector<kv::WatchOutput> watch_out;
  int64_t compaction_proposed = 0;  // highest MVCC compaction revision this leader proposed
  std::map<std::pair<uint32_t, uint64_t>, KvCommand> writes;  // proposed for a client
  std::vector<Event> deferred;                                // events that reached a paused node
};

// What the rest of the run hears from the nodes, as it happens.
class NodeObserver {
 public:
  // A process started or crashed: the streams of its previous process are gone.
  virtual void started(Node& node) = 0;
  virtual void crashed(Node& node) = 0;
  // After every input a node took: its watch hub's output waits in node.watch_out.
  virtual void stepped(Node& node) = 0;
  // A node seen as leader of a term for the first time.
  virtual void elected(Node& node) = 0;

 protected:
  ~NodeObserver() = default;
};

// Where a replication group runs: its number (on every event for it) and the hosts (network
// addresses, 1..options.nodes) of its slots, slot i on hosts[i - 1] (sim/cluster.h places them).
struct GroupSpec {
  uint32_t group = 0;
  std::vector<int> hosts;
};

class Nodes {
 public:
  Nodes(World& world, Truth& truth, NodeObserver& observer, GroupSpec spec);
  ~Nodes();

  // Starts `options.nodes` founding members. Draws each node's clock drift and the run's
  // replication shape (message size, window) from the world's generator.
  void start_all();
  int count() const { return static_cast<int>(nodes_.size()) - 1; }
  uint32_t group() const { return group_; }
  // The host (network address) slot `slot` of this group runs on.
  int host(int slot) const { return hosts_[static_cast<size_t>(slot) - 1]; }
  const std::vector<int>& hosts() const { return hosts_; }
  Node& operator[](int id) { return nodes_[static_cast<size_t>(id)]; }
  const Node& operator[](int id) const { return nodes_[static_cast<size_t>(id)]; }

  // Takes a node event (tick, delivery, fsync, state fetch, store flush, client request).
  void handle(const Event& e);

  void crash(Node& n);
  void restart(Node& n);
  // A paused node takes, now, what reached it while it was frozen.
  void resume(Node& n);
  // The node loses everything and comes back as an empty member added later, under a new
  // member ID.
  void wipe(Node& n);
  // The slot that runs `member`, or 0 if none does (a removed member's ID).
  int slot_of(raft::NodeId member) const;
  // A new, empty member on host `host`, under a new member ID, started (to be added to the
  // group as a learner): its slot.
  int add_slot(int host);
  // The slot's replica was removed from the group: its process stops for good and its state
  // goes. A retired slot is never restarted.
  void retire(Node& n);
  // The slots not retired.
  std::vector<int> live_slots() const;
  // Runs the node's Ready loop after an input from outside (a proposal, a transfer).
  void after_input(Node& n);
  // The up, unpaused leader of the highest term, if any.
  Node* leader();

  // Replicas that applied the same prefix hold byte-identical stores.
  void check_store_convergence();
  const check::EngineInvariants& invariants() const { return *inv_; }
  // The FLP adversary, while it runs (null otherwise).
  void set_duel(Duel* duel) { duel_ = duel; }
  // When a leader was first seen after the heal (0: not yet).
  uint64_t first_leader_after_heal() const { return first_leader_after_heal_; }
  // PBFT: the replicas the run made Byzantine (empty otherwise).
  const std::set<int>& byzantine() const { return byzantine_; }
  // One line per member: role, term, log and apply positions, what its driver waits for.
  std::string describe() const;

 private:
  friend class NodeHost;

  raft::EngineConfig node_config(int id) const;
  replica::PbftOptions pbft_options(const Node& n) const;
  void start(int id);
  void observe(Node& n);
  bool blocked(const Event& e);
  void on_fsync(Node& n);
  void apply(Node& n, std::span<const raft::Entry> entries);
  void serve_read(Node& n, const KvCommand& req);
  void maybe_compact_history(Node& n);
  bool restore_store(Node& n, const raft::SnapshotMeta& meta, const std::string& image);
  void request_state(Node& n, int from, uint64_t min_index, bool retained);
  void serve_state(const Event& e);
  void state_fetched(const Event& e);
  void send(Node& n, const std::vector<raft::Message>& msgs);
  void transmit(int from, int to, const raft::Message& m, uint64_t extra_delay_us = 0);
  // An event for slot `slot` of this group (node and group filled in).
  Event& node_event(uint64_t at, EventType type, int slot);
  void duel_step();
  void on_client_request(Node& n, const KvCommand& req, const std::string& bft);
  void reply(Node& n, const KvCommand& req, ReplyStatus status, KvResult result);
  void answer_keepalive(Node& n, const KvCommand& req);
  void lessor_tick(Node& n);

  World& world_;
  const SimOptions& o_;
  Truth& truth_;
  NodeObserver& observer_;
  uint32_t group_ = 0;
  std::vector<int> hosts_;                        // slot i runs on hosts_[i - 1]
  std::unique_ptr<check::EngineInvariants> inv_;  // the engine's own checker
  std::deque<Node> nodes_;  // index 0 unused; a deque, so that adding a slot moves no node
  raft::ConfState initial_conf_;
  std::set<std::pair<uint64_t, int>> leaders_seen_;
  uint64_t first_leader_after_heal_ = 0;
  uint64_t max_msg_bytes_ = 256;
  uint32_t max_inflight_msgs_ = 4;
  uint64_t next_member_ = 0;  // the next new member ID
  Duel* duel_ = nullptr;
  std::set<int> byzantine_;
  std::unique_ptr<Adversary> adversary_;  // what the Byzantine replicas do (null: none)
};

}  // namespace synod::sim
