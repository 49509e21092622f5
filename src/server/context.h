// What the gRPC services of one member share: the node, its identity, the member directory
// and helpers that turn node results into etcd's responses.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/executor.h"
#include "server/node.h"
#include "server/shards.h"

namespace synod::server {

class TimestampOracle;
class RemoteGroups;
class WatchService;

// The etcd API level a member reports (Maintenance.Status, /version, /metrics); clients gate
// features on it.
inline constexpr const char* kApiVersion = "3.4.0";

// gRPC's own receive limit sits this far above --max-request-bytes, as in etcd, so that the
// etcd error text is what clients see.
inline constexpr size_t kReceiveSlackBytes = 512 * 1024;

inline grpc::Status to_status(const Error& e) {
  return grpc::Status(static_cast<grpc::StatusCode>(e.grpc_code), e.message);
}

// Answers a unary call with an error at once.
inline grpc::ServerUnaryReactor* finish_with(grpc::CallbackServerContext* call, const Error& e) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  reactor->Finish(to_status(e));
  return reactor;
}

struct ServerContext {
  ResolvedConfig config;
  Node* node = nullptr;      // group 0: the member's own group (the metadata group when sharded)
  Shards* shards = nullptr;  // --shards: the data groups; null when unsharded
  TimestampOracle* oracle = nullptr;      // --shards: where data groups' revisions come from
  RemoteGroups* remote_groups = nullptr;  // --shards: groups hosted by other members
  WatchService* watch_service = nullptr;
  Executor* executor = nullptr;
  Tokens* tokens = nullptr;
  const JwtTokens* jwt = nullptr;  // with --auth-token jwt: tokens are these, not `tokens`
  // How this member reaches other members' client URLs (leader forwarding): TLS with the
  // client certificate and CA when the client URLs are https.
  std::shared_ptr<grpc::ChannelCredentials> client_channel_credentials =
      grpc::InsecureChannelCredentials();
  uint64_t self_id = 0;
  // The --initial-cluster members' peer URLs by id: a founding member that has not published
  // itself in the member table yet is listed (and reached) with these.
  std::map<uint64_t, std::vector<Url>> founding_peer_urls;

  // The node of replication group `group` hosted here (0: `node`), or nullptr.
  Node* group_node(uint32_t group) const {
    if (group == 0) return node;
    return shards != nullptr ? shards->node(group) : nullptr;
  }

  void fill_header(etcdserverpb::ResponseHeader* h, int64_t revision) const {
    fill_header(h, revision, node->status().term.value);
  }
  // With the term already read (a batch of responses reads it once).
  void fill_header(etcdserverpb::ResponseHeader* h, int64_t revision, uint64_t term) const {
    h->set_cluster_id(node->cluster_id());
    h->set_member_id(self_id);
    h->set_revision(revision);
    h->set_raft_term(term);
  }
  // The member's revision: its own group's, or when sharded the highest of its data groups'.
  int64_t revision() const {
    auto of = [](const Node& n) {
      return n.read_store([](const kv::Store& s) { return s.revision(); });
    };
    if (shards == nullptr) return of(*node);
    int64_t newest = 0;
    for (auto& [group, n] : shards->hosted()) newest = std::max(newest, of(*n));
    return newest;
  }

  // The members as clients see them: the configuration's voters and learners, with the names
  // and URLs recorded in the replicated member table (empty for a member not yet started).
  std::vector<etcdserverpb::Member> members() const;
  // The client URL of the current leader, if known and not this member.
  std::optional<std::string> leader_client_address() const;
  // The first client URL (as "host:port") of member `id`, if it has published one.
  std::optional<std::string> client_address(uint64_t id) const;
};

}  // namespace synod::server
