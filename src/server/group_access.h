// A sharded member's way to any data group, hosted here or not: a group this member replicates
// is reached through its Node; any other through a member that replicates it, over the peer RPCs
// GroupPropose and GroupRange (that member proposes in, or reads from, its own replica). So a
// member that holds only some shards still serves ranges over every shard, coordinates
// cross-shard transactions on any shards, and deletes ranges across them.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "kv/store.h"
#include "synodpb/peer.grpc.pb.h"

namespace synod::server {

struct ServerContext;
class Node;

using GroupRangeDone = std::function<void(std::optional<kv::Error>, etcdserverpb::RangeResponse&&)>;
using GroupProposeDone = std::function<void(const kv::ApplyResult&)>;

// Reads `req` from `group`: after a ReadIndex barrier unless serializable. Hosted groups are
// read on the workers (a scan never holds up a raft thread); `req` must outlive the call. A
// group not hosted here is read on another replica, the next one if a member is unreachable.
void read_from_group(ServerContext& ctx, uint32_t group, const etcdserverpb::RangeRequest& req,
                     GroupRangeDone done);
// The same on a node hosted here.
void read_hosted_group(ServerContext& ctx, Node& node, const etcdserverpb::RangeRequest& req,
                       GroupRangeDone done);

// etcd's HashKV of `group` at `revision` (<= 0: its newest; above its newest: its newest), from
// the replica here or a member that replicates the group. The answer's header carries the
// group's revision.
using GroupHashDone = std::function<void(std::optional<kv::Error>, etcdserverpb::HashKVResponse&&)>;
void hash_group(ServerContext& ctx, uint32_t group, int64_t revision, GroupHashDone done);
// The same on a node hosted here, computed now.
etcdserverpb::HashKVResponse hash_hosted_group(Node& node, int64_t revision,
                                               std::optional<kv::Error>* error);

// Proposes `request` (a transaction step, a delete_range or a compaction) to `group` and hands
// `done` what it applied to, or an error (Unavailable when no replica of the group could be
// reached).
void propose_to_group(ServerContext& ctx, uint32_t group, synodpb::Request request,
                      GroupProposeDone done);

// The same on a replica hosted here. A compaction is made at the revision or at the shard's
// newest one, whichever is lower, and refused (compacted) at or below the shard's last.
void propose_hosted(Node& node, synodpb::Request request, GroupProposeDone done);

// What GroupPropose carries back: an ApplyResult of the kinds it allows, and back again.
synodpb::GroupResult to_group_result(const kv::ApplyResult& result);
kv::ApplyResult from_group_result(const synodpb::GroupResult& result);
// The requests GroupPropose takes from a peer.
bool proposable_to_group(const synodpb::Request& request);

// The peer stubs a member uses to reach others' replicas; one per address, made on first use.
class RemoteGroups {
 public:
  using AddressOf = std::function<std::optional<std::string>(uint64_t member)>;
  RemoteGroups(AddressOf address_of, std::shared_ptr<grpc::ChannelCredentials> credentials)
      : address_of_(std::move(address_of)), credentials_(std::move(credentials)) {}

  // The stub for `member`'s peer address, or nullptr if its address is not known.
  synodpb::Peer::Stub* stub(uint64_t member);

  // A call to `member` (peer or client port) could not reach it: for kAvoidFor, calls that may
  // go to any of several members try it last (reachable_first).
  static constexpr std::chrono::seconds kAvoidFor{3};
  void unreachable(uint64_t member);
  // The member's prober asked `member` and it answered or not: one that did not is tried last
  // until it answers again.
  void probed(uint64_t member, bool answered);
  // `members` in their order, except that those found unreachable lately, or not answering
  // the prober, come last.
  std::vector<uint64_t> reachable_first(std::vector<uint64_t> members);

 private:
  AddressOf address_of_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<synodpb::Peer::Stub>> stubs_;
  std::map<uint64_t, std::chrono::steady_clock::time_point> unreachable_;  // when last found so
  std::set<uint64_t> silent_;  // the prober's last call to them went unanswered
};

// The members other than this one that replicate `group`, in the shard map's order (its
// preferred leader first), except that those found unreachable lately come last.
std::vector<uint64_t> replicas_elsewhere(const ServerContext& ctx, uint32_t group);

// A call that failed before it reached the member (no connection could be made): it changed
// nothing there, and may be sent to another member.
inline bool never_delivered(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE &&
         s.error_message().rfind("failed to connect to all addresses", 0) == 0;
}

}  // namespace synod::server
