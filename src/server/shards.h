// A sharded member's data groups (multi-Raft). `synod server --shards S --replication R` splits
// the keyspace into S shards (core/ring: jump hash of the key's xxHash64); each shard is a
// replication group of R members placed by the consistent-hash ring over the founding members,
// so every member computes the same placement. Group 0 is the member's own group: membership,
// auth and leases — the metadata group. Each data group hosted here is a Node (the one replica
// driver, its own raft thread, WAL and store under <data-dir>/groups/<g>) with a Transport of
// its own whose frames carry the group; the peer service hands each frame to its group's node.
//
// Thread-safety: after open() the placement and the set of nodes never change; every method may
// be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
  // Opens the data groups this member hosts. `base` gives the member's id, cluster, engine and
  // timing; `members` are the founding member ids the ring places shards on. Errors name the
  // group whose storage failed.
  static std::unique_ptr<Shards> open(const ShardOptions& options, const NodeOptions& base,
                                      const std::vector<uint64_t>& members,
                                      std::shared_ptr<grpc::ChannelCredentials> peer_credentials,
                                      std::string* error);
  ~Shards();
  Shards(const Shards&) = delete;
  Shards& operator=(const Shards&) = delete;

  uint32_t count() const { return static_cast<uint32_t>(groups_.size()); }
  // The data group (1..count()) that holds `key`.
  uint32_t group_of(std::string_view key) const;
  // The group's node if this member hosts it, else nullptr. Group 0 is not here.
  Node* node(uint32_t group) const;
  // The group's replicas, preferred leader first.
  const std::vector<uint64_t>& replicas(uint32_t group) const;
  // The nodes hosted here, by group.
  std::vector<std::pair<uint32_t, Node*>> hosted() const;

  void start();
  void stop();
  // Tells each hosted group's transport where `member` listens, if it replicates that group.
  void set_peer_address(uint64_t member, const std::string& address);

  // Cross-shard transactions this member coordinated, by protocol (0: 2pc, 1: 3pc) and
  // outcome, and the ones its resolver settled (/metrics).
  struct TxnCounts {
    metrics::Counter committed[2];
    metrics::Counter aborted[2];
    metrics::Counter settled;
  };
  TxnCounts& txn_counts() { return txn_counts_; }
  const TxnCounts& txn_counts() const { return txn_counts_; }

 private:
  struct Group {
    std::vector<uint64_t> replicas;
    std::unique_ptr<net::Transport> transport;  // hosted groups only
    std::unique_ptr<Node> node;                 // hosted groups only
  };
  Shards() = default;
  std::vector<Group> groups_;  // group g at g - 1
  TxnCounts txn_counts_;
};

}  // namespace synod::server
