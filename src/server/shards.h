// A sharded member's data groups (multi-Raft). `synod server --shards S --replication R` splits
// the keyspace into S shards (core/ring: jump hash of the key's xxHash64); each shard is a
// replication group of R members, first placed by the consistent-hash ring over the founding
// members (every founder computes the same placement), then as the shard map in the metadata
// group says once members come and go (shard_mover.h moves the replicas). Group 0 is the
// member's own group: membership, auth, leases and the shard map — the metadata group. Each data
// group hosted here is a Node (the one replica driver, its own WAL and store under
// <data-dir>/groups/<g>), and all of them run on one raft thread (group_loop.h); the data groups
// share one Transport, so each peer gets one stream whose frames carry every group's messages (each
// named with its group), and the peer service hands each group's messages to its node. Groups tick
// on a common schedule (node.h), so their heartbeats to a peer travel together.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/ring/ring.h"
#include "server/node.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace synod::server {

struct ShardOptions {
  uint32_t shards = 0;  // 0: unsharded (one group holds everything)
  uint32_t replication = 3;
  static constexpr uint32_t kMaxShards = 1024;
};

// Refuses a data dir laid out for other --shards/--replication values (or for none), and records
// the layout on a fresh one. The layout is fixed for the life of a data dir.
bool check_shard_layout(const std::string& data_dir, const ShardOptions& options,
                        std::string* error);

class Shards {
 public:
  // Opens the data groups this member hosts: those with a directory under groups/ (a member
  // that ran before), or on a fresh founding member those the ring places on it over
  // `founders` (the founding member ids). A member that joins an existing cluster passes no
  // founders: it hosts nothing until the shard map (in the metadata group) gives it groups.
  // `base` gives the member's id, cluster, engine and timing. Errors name the group whose
  // storage failed.
  static std::unique_ptr<Shards> open(const ShardOptions& options, const NodeOptions& base,
                                      const std::vector<uint64_t>& founders,
                                      std::shared_ptr<grpc::ChannelCredentials> peer_credentials,
                                      std::string* error);
  ~Shards();
  Shards(const Shards&) = delete;
  Shards& operator=(const Shards&) = delete;

  uint32_t count() const { return static_cast<uint32_t>(groups_.size()); }
  uint32_t replication() const { return options_.replication; }
  // The data group (1..count()) that holds `key`.
  uint32_t group_of(std::string_view key) const;
  // The group's node if this member hosts it, else nullptr. Group 0 is not here. A node stays
  // valid for the life of this object, also after the member stops hosting its group.
  Node* node(uint32_t group) const;
  // The group's replicas as this member last learned them (the shard map), preferred leader
  // first; empty while not known.
  std::vector<uint64_t> replicas(uint32_t group) const;
  // The nodes hosted here, by group.
  std::vector<std::pair<uint32_t, Node*>> hosted() const;
  // The placement the ring gives the founding members (empty on a member that joined).
  const ring::Placement& initial_placement() const { return initial_; }

  // Prepares every node of a group hosted here before it starts (its state fetch, its watch
  // sink): those open now and those opened later, when the shard map gives this member a group.
  using NodeSetup = std::function<void(uint32_t group, Node& node)>;
  void set_node_setup(NodeSetup setup);
  // Told when this member stops hosting a group (after its node stopped).
  void set_on_drop(std::function<void(uint32_t group)> on_drop);

  void start();
  void stop();
  // Tells the data groups' transport where `member` listens.
  void set_peer_address(uint64_t member, const std::string& address);

  // The shard map's word on `group`: its replicas (voters, then learners). A group this member
  // is named in and does not host yet is opened empty and joins its group (the group's leader
  // sends it the state); one it no longer is named in is stopped and its data removed.
  // Returns false with `error` if a group could not be opened.
  bool set_replicas(uint32_t group, std::vector<uint64_t> replicas, std::string* error);

  // Cross-shard transactions this member coordinated, by protocol (0: 2pc, 1: 3pc) and
  // outcome, and the ones its resolver settled (/metrics).
  struct TxnCounts {
    metrics::Counter committed[2];
    metrics::Counter aborted[2];
    metrics::Counter settled;
    metrics::Counter decisions_forgotten;  // applied in their groups
  };
  TxnCounts& txn_counts() { return txn_counts_; }
  const TxnCounts& txn_counts() const { return txn_counts_; }

  // Decisions of transactions this member coordinated whose every part was resolved, by the
  // group that recorded them, waiting to be forgotten there (TxnResolver proposes it), and the
  // newest cut epoch their steps heard of. Thread-safe.
  struct Forgettable {
    std::vector<std::string> txns;
    uint64_t epoch = 0;
  };
  void decision_done(uint32_t group, std::string txn, uint64_t epoch);
  std::map<uint32_t, Forgettable> take_done_decisions();

 private:
  struct Group {
    std::vector<uint64_t> replicas;
    std::unique_ptr<Node> node;  // hosted groups only
    // Its directory: groups/<g>, then groups/<g>.<n> for the n-th replica opened after one
    // was dropped here (the dropped one's store may still be open).
    uint32_t incarnation = 0;
  };
  Shards() = default;
  // Opens group `g`'s node (under mu_, exclusively). `voters`: the initial
  // configuration of a group founded here; empty to join an existing group.
  bool open_group(uint32_t g, const std::vector<uint64_t>& voters, std::string* error);
  std::string group_dir(uint32_t g, uint32_t incarnation) const;

  ShardOptions options_;
  NodeOptions base_;
  // The one raft thread of every data group hosted here (declared before the groups: it
  // outlives their nodes).
  std::unique_ptr<GroupLoop> loop_;
  // Every data group's messages (declared before the groups: their nodes send on it).
  std::unique_ptr<net::Transport> transport_;
  ring::Placement initial_;
  mutable std::shared_mutex mu_;
  NodeSetup setup_;
  std::function<void(uint32_t)> on_drop_;
  bool started_ = false;
  std::vector<Group> groups_;  // group g at g - 1
  // Groups this member stopped hosting: their nodes stay (stopped) until this object goes, so
  // that a pointer handed out earlier never dangles.
  std::vector<Group> retired_;
  TxnCounts txn_counts_;
  std::mutex done_mu_;
  std::map<uint32_t, Forgettable> done_decisions_;  // under done_mu_
};

}  // namespace synod::server
