// A member's Raft driver: owns the Raft core, the WAL and the state machine, and runs them on
// one thread (the "raft thread") in the Ready/Advance order of src/core/raft/types.h:
//   persist (WAL append + one fsync for the whole batch) -> send -> apply -> advance.
// Nothing is acknowledged to a client before the entry it depends on is fsynced on a quorum
// and applied here.
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
#include <variant>
#include <vector>

#include "core/raft/raft.h"
#include "kv/buffered_backend.h"
#include "kv/lessor.h"
#include "kv/store.h"
#include "kv/watch_hub.h"
#include "net/transport.h"
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
  std::string data_dir;
  raft::ConfState initial_conf;       // founding members (fresh start with state "new"); else empty
  uint32_t tick_ms = 100;             // etcd's default heartbeat interval
  uint32_t election_ticks = 10;       // etcd's default election timeout: 1 s
  uint64_t snapshot_entries = 10000;  // compact the Raft log after this many applied entries
  std::chrono::milliseconds request_timeout{7000};
  // Progress notifications to watchers that asked for them (etcd's default: 10 minutes).
  std::chrono::milliseconds watch_progress_interval{600000};
};

// An error as etcd sends it: gRPC status code and message.
using Error = kv::Error;

struct NodeStatus {
  raft::NodeId leader;
  raft::Term term;
  raft::Role role = raft::Role::kFollower;
  uint64_t last_index = 0;
  uint64_t committed = 0;
  uint64_t applied = 0;
  raft::ConfState conf;
};

// The Raft snapshot payload of a compaction: a reference to this member's flushed store at an
// applied index, not a copy of it.
std::string encode_state_ref(uint64_t applied_index);
std::optional<uint64_t> decode_state_ref(std::string_view data);

class Node {
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
  // Calls `done` once this member's state machine reflects every write committed before the
  // call (ReadIndex, thesis 6.4).
  void read_barrier(Done done);
  void change_membership(raft::ConfChange change, Done done);
  void transfer_leadership(raft::NodeId target, Done done);
  // Watch streams (etcdserverpb.Watch): a stream's create, cancel and progress requests, and
  // its end. Answers and events reach the sink, on the raft thread, in order per stream.
  void watch(uint64_t stream, const etcdserverpb::WatchRequest& request);
  void watch_closed(uint64_t stream);
  using WatchSink = std::function<void(std::vector<kv::WatchOutput>&&)>;
  void set_watch_sink(WatchSink sink) { watch_sink_ = std::move(sink); }

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
  raft::NodeId id() const { return options_.id; }
  uint64_t cluster_id() const { return options_.cluster_id; }

  // Runs f(const kv::Store&) under the store's shared lock.
  template <typename F>
  auto read_store(F&& f) const {
    std::shared_lock lock(store_mu_);
    return f(static_cast<const kv::Store&>(*store_));
  }
  // Flushes the backend and returns the state as a bbolt file in etcd 3.4's layout (the
  // Maintenance.Snapshot stream).
  std::string snapshot_image();
  void defragment();
  uint64_t backend_size_bytes() const;
  // Called on the raft thread after every applied membership change.
  void set_on_conf_change(std::function<void(const raft::ConfState&)> f);

  // Raft log compaction keeps only a reference to the store in the Raft snapshot (the store
  // itself is flushed and is the state): a follower that installs such a snapshot fetches the
  // state from the leader through this function, set by the server before start().
  // Returns the image (at an applied index >= min_index) or nullopt with `error` set.
  using FetchState = std::function<std::optional<std::string>(raft::NodeId from, uint64_t min_index,
                                                              std::string* error)>;
  void set_fetch_state(FetchState f) { fetch_state_ = std::move(f); }
  // This member's whole state as a kv::Store image, and the applied index it reflects.
  std::string state_image(uint64_t* applied_index) const;

 private:
  struct Proposal {
    synodpb::Request request;
    ApplyDone done;
    Clock::time_point deadline;
  };
  struct ReadWaiter {
    Done done;
    Clock::time_point deadline;
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
  };
  struct StoreFlushed {  // the store is durable through this applied index
    uint64_t applied = 0;
  };
  using Input = std::variant<raft::Message, Proposal, ReadWaiter, ConfRequest, TransferRequest,
                             WatchInput, LeaseInput, StoreFlushed>;

  Node(const NodeOptions& options, net::Transport& transport);
  bool recover(std::string* error);
  void run();
  void handle(Input&& input);
  void submit_proposals();
  void submit_reads();
  void submit_conf_changes();
  void check_transfers();
  void process_ready();
  void apply(const std::vector<raft::Entry>& entries);
  void apply_conf_entry(const raft::Entry& entry);
  void serve_reads();
  void expire(Clock::time_point now);
  void maybe_compact();
  void compact_log(uint64_t applied);
  void wait_store_flush();
  void install_snapshot(const raft::Snapshot& snapshot);
  void publish_status();
  void post(Input&& input);
  void handle_watch(WatchInput& input);
  void handle_lease(LeaseInput& input);
  void check_leases(Clock::time_point now);
  void lease_applied(const synodpb::Request& request, const kv::ApplyResult& result);
  void emit_watch_output();

  NodeOptions options_;
  net::Transport& transport_;
  std::unique_ptr<storage::Wal> wal_;
  std::unique_ptr<storage::RocksBackend> backend_;
  std::unique_ptr<kv::BufferedBackend> buffered_;  // over backend_; the store writes here
  std::unique_ptr<kv::Store> store_;
  mutable std::shared_mutex store_mu_;
  std::unique_ptr<raft::Raft> raft_;

  // Inbox: filled by any thread, drained by the raft thread.
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<Input> inbox_;
  bool stopping_ = false;
  std::thread thread_;

  // Raft-thread state.
  uint64_t next_request_id_ = 0;
  std::deque<Proposal> unsent_;                 // waiting for a leader
  std::map<uint64_t, Proposal> waiting_apply_;  // proposed; by request id
  std::vector<ReadWaiter> unsent_reads_;
  uint64_t next_read_context_ = 1;
  std::map<uint64_t, std::vector<ReadWaiter>> reads_in_flight_;  // by read context
  std::multimap<uint64_t, ReadWaiter> reads_ready_;              // by read index
  std::deque<ConfRequest> unsent_conf_;
  std::vector<std::pair<ConfRequest, raft::ConfState>> conf_waiting_;  // expected outcome
  std::vector<TransferRequest> transfers_;
  uint64_t snapshot_index_ = 0;
  // A log compaction first makes the store durable through its index. That flush (tens of ms of
  // RocksDB writing its memtables out) runs here, not on the raft thread; StoreFlushed comes back
  // when it is done.
  std::thread store_flush_;
  bool store_flushing_ = false;
  raft::HardState synced_hard_state_;  // term and vote as last made durable
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
};

}  // namespace synod::server
