// A member's replica: the Raft engine under the one replica driver (src/replica/driver.h), with
// this process's I/O as the driver's Host: the WAL for the log, the peer transport, and the MVCC
// store on RocksDB. Everything runs on one thread, the "raft thread" (a thread of the node's own,
// or the group loop that a sharded member's data groups share: group_loop.h): inputs from any
// thread go through a bounded inbox; the driver persists (WAL append + one fsync per Ready, or
// per loop round), sends, applies and advances. Nothing is acknowledged to a client before the
// entry it depends on is fsynced on a quorum and applied here.
//
// The class is one concept spread over files by responsibility: node.cpp (the raft thread and
// the Host), node_requests.cpp (proposals, membership and leadership requests, their
// deadlines), node_state.cpp (recovery, store flushes, snapshot state) and node_leases.cpp
// (leases and watches).
//
// Thread-safety: the public methods may be called from any thread (gRPC handlers, the peer
// transport). Callbacks run on the raft thread and must not block; hand heavy work off.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/deadline_table.h"
#include "base/metrics.h"
#include "core/engine.h"
#include "kv/buffered_backend.h"
#include "kv/lessor.h"
#include "kv/store.h"
#include "kv/watch_hub.h"
#include "net/transport.h"
#include "replica/driver.h"
#include "replica/engine_factory.h"
#include "replica/host.h"
#include "server/group_loop.h"
#include "synodpb/request.pb.h"

namespace synod::storage {
class Wal;
class RocksBackend;
}  // namespace synod::storage

namespace synod::server {

using Clock = std::chrono::steady_clock;

struct NodeOptions {
  raft::NodeId id;
  uint64_t cluster_id = 0;
  uint32_t group = 0;  // the replication group (0: the member's own), named by its messages
  std::string data_dir;
  raft::ConfState initial_conf;  // founding members (fresh start with state "new"); else empty
  replica::EngineKind engine = replica::EngineKind::kRaft;
  replica::PbftOptions pbft;          // engine kPbft: the member's keys (required) and tuning
  uint32_t tick_ms = 100;             // etcd's default heartbeat interval
  uint32_t election_ticks = 10;       // etcd's default election timeout: 1 s
  uint64_t snapshot_entries = 10000;  // compact the Raft log after this many applied entries
  std::chrono::milliseconds request_timeout{7000};
  // Progress notifications to watchers that asked for them (etcd's default: 10 minutes).
  std::chrono::milliseconds watch_progress_interval{600000};
  // A sharded cluster's data group (shards.h): where write revisions come from. The group's
  // leader asks for `count` timestamps for the proposals waiting for one (called on the raft
  // thread); `done`, on any thread, gets the first of `count` consecutive ones, or nullopt.
  // Every proposal is stamped by the leader, in log order; another member forwards its
  // proposals to the leader (kForwardRequest) instead of proposing them. Unset: the store
  // numbers revisions densely.
  // A sharded cluster's data group holds copies of the metadata group's leases (for the keys
  // attached to them there); only the metadata group's leader expires leases.
  bool expire_leases = true;
  // A sharded member's data groups run on one loop (group_loop.h) rather than a raft thread
  // each. Unset: the node runs a thread of its own.
  GroupLoop* loop = nullptr;
  using TimestampDone = std::function<void(std::optional<int64_t> first)>;
  std::function<void(uint32_t count, TimestampDone done)> timestamps;
};

// An error as etcd sends it: gRPC status code and message.
using Error = kv::Error;

// What a member counts and times for /metrics; updated on the raft thread, read by any.
struct NodeMetrics {
  metrics::Counter leader_changes;    // a leader (other than none) seen, new or changed
  metrics::Counter proposals_failed;  // proposals answered with a timeout or no leader
  // PBFT: entries a client's request took effect in before (ordered again): no effect
  metrics::Counter duplicates_applied;
  metrics::Counter health_success;   // /health answered true
  metrics::Counter health_failures;  // and false
  metrics::Histogram wal_fsync{metrics::exponential_buckets(0.001, 2, 14)};       // seconds
  metrics::Histogram backend_commit{metrics::exponential_buckets(0.001, 2, 14)};  // seconds
  // Client requests this member answered, from arrival to answer (seconds): writes through the
  // log, and reads (KV Range, serializable or not).
  metrics::Histogram write_latency{metrics::exponential_buckets(0.0001, 2, 16)};
  metrics::Histogram read_latency{metrics::exponential_buckets(0.0001, 2, 16)};
  std::atomic<int64_t> watch_streams{0};  // client watch streams open
  std::atomic<int64_t> lock_waiters{0};   // Lock, Campaign and Acquire calls not yet answered

  // Round trips to each peer (seconds), from a probe every few seconds (etcd's
  // etcd_network_peer_round_trip_time_seconds, labelled with the peer's ID).
  void observe_peer_rtt(uint64_t peer, double seconds) {
    std::lock_guard lock(peer_rtt_mu_);
    auto& h = peer_rtt_[peer];
    if (!h) h = std::make_unique<metrics::Histogram>(metrics::exponential_buckets(0.0001, 2, 16));
    h->observe(seconds);
  }
  template <typename F>  // f(uint64_t peer, const metrics::Histogram&), in peer order
  void for_each_peer_rtt(F&& f) const {
    std::lock_guard lock(peer_rtt_mu_);
    for (const auto& [peer, h] : peer_rtt_) f(peer, *h);
  }

 private:
  mutable std::mutex peer_rtt_mu_;
  std::map<uint64_t, std::unique_ptr<metrics::Histogram>> peer_rtt_;
};

// Something an operator wants to see in the dashboard: a leader elected, the membership changed.
struct NodeEvent {
  std::chrono::system_clock::time_point time;
  std::string text;
};

struct NodeStatus {
  raft::NodeId leader;
  raft::Term term;
  raft::Role role = raft::Role::kFollower;
  uint64_t last_index = 0;
  uint64_t committed = 0;
  uint64_t applied = 0;
  raft::ConfState conf;
};

class Node : private replica::Host, private GroupLoop::Member {
 public:
  using ApplyDone = std::function<void(const kv::ApplyResult&)>;
  using Done = std::function<void(std::optional<Error>)>;

  // Opens (or creates) the WAL and the store under options.data_dir. Returns an error message
  // on unrecoverable storage (a corrupted WAL middle, say).
  static std::unique_ptr<Node> open(const NodeOptions& options, net::Transport& transport,
                                    std::string* error);
  ~Node();

  void start();
  void stop();

  // Replicates `request` (its id is assigned here) and calls `done` once it is applied here.
  void propose(synodpb::Request request, ApplyDone done);
  // PBFT: proposes a BFT client's request (`raw`, encoded for the engine) whose op is
  // `request`; `done` gets the result of applying it here, matched by the client's
  // request.id(). A second one with the same id while the first waits is refused.
  void propose_raw(synodpb::Request request, std::string raw, ApplyDone done);
  // Calls `done` once this member's state machine reflects every write committed before the
  // call (ReadIndex, thesis 6.4).
  void read_barrier(Done done);
  // options.timestamps: moves the group's revision on to a fresh timestamp (an entry that
  // writes nothing), so that its watch marks pass every revision handed out before the call.
  void advance_revision();
  void change_membership(raft::ConfChange change, Done done);
  void transfer_leadership(raft::NodeId target, Done done);
  // Watch streams (etcdserverpb.Watch): a stream's create, cancel and progress requests, and
  // its end. Answers and events reach the sink, on the raft thread, in order per stream.
  // A client's stream passes its caller (or the error resolving it) and a create is refused
  // unless the caller may read the watched range; a member's own watches pass nullopt.
  using WatchCaller = std::optional<kv::Expected<kv::Caller, Error>>;
  void watch(uint64_t stream, const etcdserverpb::WatchRequest& request,
             WatchCaller caller = std::nullopt);
  void watch_closed(uint64_t stream);
  using WatchSink = std::function<void(std::vector<kv::WatchOutput>&&)>;
  void set_watch_sink(WatchSink sink) { watch_sink_ = std::move(sink); }
  // A test seam (server.h, OutboundFilter): set before start(), applied to every send.
  void set_outbound_filter(std::function<void(std::vector<raft::Message>&)> filter) {
    outbound_filter_ = std::move(filter);
  }

  // Leases. Their state (ID, granted TTL, keys) is the store's; when each expires is decided
  // by the leader alone, which proposes the revoke (kv::Lessor). A new leader extends every
  // lease by the election timeout, so a failover never expires a lease early.
  // The smallest TTL granted: 1.5 election timeouts, in whole seconds (etcd's minTTL).
  int64_t min_lease_ttl_seconds() const;
  static constexpr int64_t kNotLeader = -2;
  static constexpr int64_t kNoQuorum = -3;
  // On the leader: renews the lease and answers its TTL, 0 if there is no such lease (or it
  // has expired). On another member answers kNotLeader. The renewal waits for a ReadIndex
  // round and the apply of everything committed before it, so a deposed leader that has not
  // heard of its successor cannot renew (kNoQuorum when the round fails), and a revoke a
  // predecessor committed is applied first (the answer is then 0, not a TTL the log is about
  // to take back).
  void lease_keepalive(int64_t id, std::function<void(int64_t ttl)> done);
  struct LeaseTtl {
    int64_t remaining = -1;  // seconds; -1: no such lease
    int64_t granted = 0;
    std::vector<std::string> keys;
  };
  // On the leader: the lease's remaining and granted TTL and its keys. nullopt elsewhere.
  void lease_time_to_live(int64_t id, std::function<void(std::optional<LeaseTtl>)> done);

  // Peer input: one frame's messages, handed to the raft thread at once.
  void receive(std::vector<raft::Message> messages);

  NodeStatus status() const;
  NodeMetrics& metrics() { return metrics_; }
  // The most recent leader changes and membership changes seen here, oldest first (at most
  // kMaxEvents).
  static constexpr size_t kMaxEvents = 32;
  std::vector<NodeEvent> recent_events() const;
  raft::NodeId id() const { return options_.id; }
  uint64_t cluster_id() const { return options_.cluster_id; }
  // The consensus engine this member runs: "raft" or "multipaxos".
  std::string engine_name() const { return replica::to_string(options_.engine); }

  // Runs f(const kv::Store&) under the store's shared lock.
  template <typename F>
  auto read_store(F&& f) const {
    std::shared_lock lock(store_mu_);
    return f(static_cast<const kv::Store&>(*store_));
  }
  // The group's state recorded at consistent cut `epoch` (kv::CutRecord), if this replica
  // applied that cut since it started; the newest kMaxCuts are kept (each a copy of the store).
  static constexpr size_t kMaxCuts = 2;
  std::optional<kv::CutRecord> cut(uint64_t epoch) const;
  // Flushes the backend and returns the state as a bbolt file in etcd 3.4's layout (the
  // Maintenance.Snapshot stream).
  std::string snapshot_image();
  void defragment();
  uint64_t backend_size_bytes() const;
  // Called on the raft thread after every applied membership change.
  void set_on_conf_change(std::function<void(const raft::ConfState&)> f);
  // Called on the raft thread after every auth request applied without error. Set before start().
  void set_on_auth_applied(std::function<void(const synodpb::AuthRequest&)> f) {
    on_auth_applied_ = std::move(f);
  }
  // Called on the raft thread after every lease revoke applied (a client's or an expiry).
  // Set before start().
  void set_on_lease_revoked(std::function<void(int64_t id)> f) { on_lease_revoked_ = std::move(f); }
  // The auth store's state as of the last apply, readable without the store's lock.
  bool auth_enabled() const { return auth_enabled_.load(std::memory_order_acquire); }
  uint64_t auth_revision() const { return auth_revision_.load(std::memory_order_acquire); }

  // Raft log compaction keeps only a reference to the store in the Raft snapshot (the store
  // itself is flushed and is the state): a follower that installs such a snapshot fetches the
  // state from the leader through this function, set by the server before start(). It runs on
  // a thread of its own, never the raft thread, and may block; `cancel` set by stop() asks it
  // to give up. Returns the image (at an applied index >= min_index; with `retained`, a state
  // the member retained, Host::retain_state) and its applied index in `index`, or nullopt with
  // `error`.
  class FetchCancel {
   public:
    // While a fetch blocks, `interrupt` can make it return (gRPC's TryCancel, say); run now if
    // stop() already came. clear() before what it refers to goes away.
    void set(std::function<void()> interrupt);
    void clear();
    void cancel();

   private:
    std::mutex mu_;
    std::function<void()> interrupt_;
    bool cancelled_ = false;
  };
  using FetchState = std::function<std::optional<std::string>(raft::NodeId from, uint64_t min_index,
                                                              bool retained, FetchCancel& cancel,
                                                              uint64_t* index, std::string* error)>;
  void set_fetch_state(FetchState f) { fetch_state_ = std::move(f); }
  // This member's whole state as a kv::Store image, and the applied index it reflects.
  std::string state_image(uint64_t* applied_index) const;
  // The oldest state this member retained (Host::retain_state) at or past `min_index`, as an
  // image, and its applied index; nullopt if it kept none. Any thread.
  std::optional<std::string> retained_image(uint64_t min_index, uint64_t* applied_index) const;

 private:
  // Bounds on what waits on the raft thread. Past them a client gets etcd's "too many
  // requests" rather than a queue that grows until the process runs out of memory.
  static constexpr size_t kMaxPendingProposals = 20000;
  // etcd refuses new proposals once applying lags committing by more than this many entries.
  static constexpr uint64_t kMaxApplyLag = 5000;
  // Peer messages waiting in the inbox; past it new ones are dropped (Raft retransmits).
  static constexpr size_t kMaxInboxMessages = 100000;

  struct Proposal {
    synodpb::Request request;
    ApplyDone done;
    Clock::time_point deadline;
    std::string raw;         // propose_raw: the bytes proposed (request.id() is the client's)
    int64_t stamp = 0;       // options.timestamps: the revision stamp, once the leader has one
    bool forwarded = false;  // another member's (its request ID kept); nobody waits here
  };
  struct StampsReady {  // an answer to options.timestamps
    std::optional<int64_t> first;
    uint32_t count = 0;
    uint64_t last_arrival = 0;       // the proposals it is for: unstamped, arrived up to here
    uint64_t term = 0;               // the leader's term when it asked
    Clock::time_point not_before{};  // tests: used no earlier (SYNOD_TEST_STAMP_DELAY)
  };
  struct ReadInput {
    Done done;
  };
  struct ConfRequest {
    raft::ConfChange change;
    Done done;
    Clock::time_point deadline;
  };
  struct TransferRequest {
    raft::NodeId target;
    Done done;
    Clock::time_point deadline;
  };
  struct LeaseInput {
    int64_t id = 0;
    std::function<void(int64_t)> keepalive;                     // set for a keepalive
    std::function<void(std::optional<LeaseTtl>)> time_to_live;  // set for a TTL query
  };
  struct WatchInput {
    uint64_t stream = 0;
    bool closed = false;  // the stream ended; request unused
    etcdserverpb::WatchRequest request;
    WatchCaller caller;
  };
  struct StoreFlushed {  // the store is durable through this applied index
    uint64_t applied = 0;
  };
  struct StateRetained {  // a state retained: written out and digested
    uint64_t index = 0;
    std::string digest;
  };
  struct StateFetched {  // the answer to a state fetch
    std::optional<std::string> image;
    uint64_t index = 0;
    std::string error;
  };
  using Input =
      std::variant<raft::Message, Proposal, ReadInput, ConfRequest, TransferRequest, WatchInput,
                   LeaseInput, StoreFlushed, StateFetched, StateRetained, StampsReady>;

  // What a waiter is waiting for, which decides its answer when its deadline passes.
  enum class WaiterKind : uint8_t {
    kUnsentProposal,  // a leader to propose to: no_leader
    kProposal,        // its apply here: timed_out
    kUnsentConf,      // a leader to propose the change to: no_leader
    kConf,            // the configuration it asked for: timed_out
    kTransfer,        // the target to lead: leadership_transfer_timed_out
  };
  // A waiter in the deadline table: its kind and its key in that kind's container (the request
  // id for kProposal, the arrival number for the others).
  struct WaiterKey {
    WaiterKind kind = WaiterKind::kUnsentProposal;
    uint64_t id = 0;
    auto operator<=>(const WaiterKey&) const = default;
  };

  Node(const NodeOptions& options, net::Transport& transport);
  // node.cpp: the raft thread, a thread of the node's own (run) or a group loop's (pass).
  void run();
  // One pass: the inputs in `batch`, a tick if `tick`, then the Ready loop. Returns whether
  // there is work to do at once (watchers catching up from history).
  bool step(std::vector<Input>& batch, bool tick);
  // GroupLoop::Member.
  bool pass(bool tick) override;
  void leave() override;
  void synced(bool data_synced) override;
  [[noreturn]] void wal_failed(const std::string& message);
  void on_tick(Clock::time_point now);
  void handle(Input&& input);
  void post(Input&& input);
  // Tells the raft thread that the inbox has input.
  void wake();
  void read(Done done);
  uint32_t timeout_ticks() const;
  void publish_status();
  // node.cpp: replica::Host.
  bool persist(const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state, bool sync) override;
  void save_snapshot(const raft::Snapshot& snapshot) override;
  void send(std::vector<raft::Message> messages) override;
  void fetch_state(raft::NodeId from, uint64_t min_index, bool retained) override;
  void retain_state(uint64_t index) override;
  std::vector<std::pair<uint64_t, std::string>> retained_states() const override;
  std::string image_digest(const std::string& image) const override;
  void load_retained_states();
  uint64_t applied_index() const override;
  void apply(std::span<const raft::Entry> entries) override;
  bool restore(const raft::SnapshotMeta& meta, const std::string& image) override;
  void flush_state(uint64_t applied) override;
  void note(const std::string& event) override;
  void apply_conf_entry(const raft::Entry& entry);
  // node_requests.cpp: proposals, membership and leadership requests.
  void accept_proposal(Proposal&& p);
  // Assigns the request id and queues the proposal for a leader, past the bounds (the member's
  // own lease revokes).
  void queue_proposal(Proposal&& p);
  void submit_proposals();
  // options.timestamps: a follower's proposals go to the leader; the leader's wait for stamps.
  void forward_proposals();
  void request_stamps();
  void stamps_ready(const StampsReady& ready);
  void accept_forwarded(const raft::Message& m);
  void accept_conf_change(ConfRequest&& c);
  void submit_conf_changes();
  void start_transfer(TransferRequest&& t);
  void check_transfers();
  void answer_applied(uint64_t request_id, kv::ApplyResult&& result,
                      std::vector<std::pair<ApplyDone, kv::ApplyResult>>& replies);
  void conf_applied(const raft::ConfState& conf);
  void forget_deadline(WaiterKey key);
  void move_deadline(WaiterKey from, WaiterKey to);
  void expire(Clock::time_point now);
  void fail_all_waiting();
  // node_state.cpp: recovery and the store's durability.
  bool recover(std::string* error);
  void wait_background();
  // node_leases.cpp: leases and watches.
  void handle_watch(WatchInput& input);
  // Why the caller may not create this watch (etcd's isWatchPermitted), as a cancel reason.
  std::optional<std::string> watch_refusal(const WatchCaller& caller,
                                           const etcdserverpb::WatchCreateRequest& create) const;
  void handle_lease(LeaseInput& input);
  void check_leases(Clock::time_point now);
  void lease_applied(const synodpb::Request& request, const kv::ApplyResult& result);
  void record_event_locked(std::string text);  // status_mu_ held
  // Publishes the store's auth state to auth_enabled() and auth_revision().
  void publish_auth();
  void notify_watch_progress(Clock::time_point now);
  void emit_watch_output();

  NodeOptions options_;
  net::Transport& transport_;
  std::unique_ptr<storage::Wal> wal_;
  std::unique_ptr<storage::RocksBackend> backend_;
  std::unique_ptr<kv::BufferedBackend> buffered_;  // over backend_; the store writes here
  std::unique_ptr<kv::Store> store_;
  std::deque<NodeEvent> events_;  // guarded by status_mu_
  mutable std::shared_mutex store_mu_;
  std::function<void(const synodpb::AuthRequest&)> on_auth_applied_;
  std::function<void(int64_t)> on_lease_revoked_;
  std::atomic<bool> auth_enabled_{false};
  std::atomic<uint64_t> auth_revision_{0};
  std::unique_ptr<Engine> raft_;  // the consensus engine (Raft, Multi-Paxos or PBFT)
  std::function<void(std::vector<raft::Message>&)> outbound_filter_;  // tests only
  // PBFT: the results of requests applied here that no one here waited for, by request ID, the
  // newest few thousand. A BFT client's request reaches every member, and it may execute at a
  // member before the client's copy arrives there; that copy is answered from here (TOCS 4.2:
  // replicas keep the last reply to each client and send it again).
  std::unordered_map<uint64_t, kv::ApplyResult> recent_results_;
  std::deque<uint64_t> recent_order_;
  std::unique_ptr<replica::Driver> driver_;

  // Inbox: filled by any thread, drained by the raft thread.
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<Input> inbox_;
  std::vector<Input> batch_;              // the raft thread's: the inbox taken for a pass
  Clock::time_point sync_started_{};      // on a group loop: when the deferred sync was asked
  bool wal_on_sync_file_system_ = false;  // on a group loop: its syncfs covers the WAL
  size_t inbox_messages_ = 0;
  bool stopping_ = false;
  std::thread thread_;

  // Raft-thread state.
  uint64_t next_request_id_ = 0;
  uint64_t next_arrival_ = 0;            // numbers the waiters below in arrival order
  bool stamps_in_flight_ = false;        // options.timestamps asked, not yet answered
  Clock::time_point stamps_retry_at_{};  // after a failed ask
  // Tests only: SYNOD_TEST_STAMP_DELAY="<group>:<ms>" holds this group's stamps that long
  // before its proposals take them (a write stamped long before it commits); checked on ticks.
  std::chrono::milliseconds stamp_delay_{0};
  std::optional<StampsReady> delayed_stamps_;
  std::map<uint64_t, Proposal> unsent_;          // waiting for a leader; by arrival
  std::map<uint64_t, Proposal> waiting_apply_;   // proposed; by request id
  std::map<uint64_t, ConfRequest> unsent_conf_;  // by arrival
  std::map<uint64_t, std::pair<ConfRequest, raft::ConfState>> conf_waiting_;  // expected outcome
  std::map<uint64_t, TransferRequest> transfers_;                             // by arrival
  // Every waiter above, by deadline, so that a tick looks only at those whose time is up.
  base::DeadlineTable<Clock::time_point, WaiterKey> deadlines_;
  // Slow work off the raft thread, reported back through the inbox: the store's flush before a
  // log compaction (tens of ms of RocksDB writing its memtables out), and a state fetch from the
  // leader for a snapshot (as long as the state takes to stream).
  std::thread store_flush_;
  std::thread state_retain_;  // writes out and digests a retained state
  // Retained states (Host::retain_state), by applied index: their digests; the images are
  // files in states_dir_.
  std::string states_dir_;
  mutable std::mutex retained_mu_;
  std::map<uint64_t, std::string> retained_;
  mutable std::mutex cuts_mu_;
  std::map<uint64_t, kv::CutRecord> cuts_;  // by epoch
  std::thread state_fetch_;
  FetchCancel fetch_cancel_;
  std::function<void(const raft::ConfState&)> on_conf_change_;
  FetchState fetch_state_;
  kv::WatchHub watch_hub_;
  std::vector<kv::WatchOutput> watch_out_;  // filled on the raft thread, emitted after each step
  std::vector<mvccpb::Event> apply_events_;
  WatchSink watch_sink_;
  Clock::time_point next_progress_notify_{};
  // The lessor (raft thread): when each lease expires, as this member last knew; enforced only
  // while leader.
  kv::Lessor lessor_;

  mutable std::mutex status_mu_;
  NodeStatus status_;
  NodeMetrics metrics_;
};

}  // namespace synod::server
