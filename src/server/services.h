// The etcd v3 gRPC services a member serves on its client URLs (KV, Cluster, Maintenance) and
// Synod's peer service on its peer URLs.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "core/pbft/crypto.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/context.h"
#include "synodpb/bft.grpc.pb.h"
#include "synodpb/fence.grpc.pb.h"
#include "synodpb/peer.grpc.pb.h"
#include "synodpb/semaphore.grpc.pb.h"
#include "synodpb/shards.grpc.pb.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace synod::server {

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  explicit KvService(ServerContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* c,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* c, const etcdserverpb::PutRequest* req,
                                etcdserverpb::PutResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* c,
                                        const etcdserverpb::DeleteRangeRequest* req,
                                        etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* c, const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* c,
                                    const etcdserverpb::CompactionRequest* req,
                                    etcdserverpb::CompactionResponse* resp) override;

 private:
  ServerContext& ctx_;
};

// etcdserverpb.Auth: users, roles and permissions (changes through the log, reads after a
// ReadIndex barrier) and logins, which hand out simple tokens (server/auth.h).
class AuthService final : public etcdserverpb::Auth::CallbackService {
 public:
  explicit AuthService(ServerContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* AuthEnable(grpc::CallbackServerContext* c,
                                       const etcdserverpb::AuthEnableRequest* req,
                                       etcdserverpb::AuthEnableResponse* resp) override;
  grpc::ServerUnaryReactor* AuthDisable(grpc::CallbackServerContext* c,
                                        const etcdserverpb::AuthDisableRequest* req,
                                        etcdserverpb::AuthDisableResponse* resp) override;
  grpc::ServerUnaryReactor* Authenticate(grpc::CallbackServerContext* c,
                                         const etcdserverpb::AuthenticateRequest* req,
                                         etcdserverpb::AuthenticateResponse* resp) override;
  grpc::ServerUnaryReactor* UserAdd(grpc::CallbackServerContext* c,
                                    const etcdserverpb::AuthUserAddRequest* req,
                                    etcdserverpb::AuthUserAddResponse* resp) override;
  grpc::ServerUnaryReactor* UserGet(grpc::CallbackServerContext* c,
                                    const etcdserverpb::AuthUserGetRequest* req,
                                    etcdserverpb::AuthUserGetResponse* resp) override;
  grpc::ServerUnaryReactor* UserList(grpc::CallbackServerContext* c,
                                     const etcdserverpb::AuthUserListRequest* req,
                                     etcdserverpb::AuthUserListResponse* resp) override;
  grpc::ServerUnaryReactor* UserDelete(grpc::CallbackServerContext* c,
                                       const etcdserverpb::AuthUserDeleteRequest* req,
                                       etcdserverpb::AuthUserDeleteResponse* resp) override;
  grpc::ServerUnaryReactor* UserChangePassword(
      grpc::CallbackServerContext* c, const etcdserverpb::AuthUserChangePasswordRequest* req,
      etcdserverpb::AuthUserChangePasswordResponse* resp) override;
  grpc::ServerUnaryReactor* UserGrantRole(grpc::CallbackServerContext* c,
                                          const etcdserverpb::AuthUserGrantRoleRequest* req,
                                          etcdserverpb::AuthUserGrantRoleResponse* resp) override;
  grpc::ServerUnaryReactor* UserRevokeRole(grpc::CallbackServerContext* c,
                                           const etcdserverpb::AuthUserRevokeRoleRequest* req,
                                           etcdserverpb::AuthUserRevokeRoleResponse* resp) override;
  grpc::ServerUnaryReactor* RoleAdd(grpc::CallbackServerContext* c,
                                    const etcdserverpb::AuthRoleAddRequest* req,
                                    etcdserverpb::AuthRoleAddResponse* resp) override;
  grpc::ServerUnaryReactor* RoleGet(grpc::CallbackServerContext* c,
                                    const etcdserverpb::AuthRoleGetRequest* req,
                                    etcdserverpb::AuthRoleGetResponse* resp) override;
  grpc::ServerUnaryReactor* RoleList(grpc::CallbackServerContext* c,
                                     const etcdserverpb::AuthRoleListRequest* req,
                                     etcdserverpb::AuthRoleListResponse* resp) override;
  grpc::ServerUnaryReactor* RoleDelete(grpc::CallbackServerContext* c,
                                       const etcdserverpb::AuthRoleDeleteRequest* req,
                                       etcdserverpb::AuthRoleDeleteResponse* resp) override;
  grpc::ServerUnaryReactor* RoleGrantPermission(
      grpc::CallbackServerContext* c, const etcdserverpb::AuthRoleGrantPermissionRequest* req,
      etcdserverpb::AuthRoleGrantPermissionResponse* resp) override;
  grpc::ServerUnaryReactor* RoleRevokePermission(
      grpc::CallbackServerContext* c, const etcdserverpb::AuthRoleRevokePermissionRequest* req,
      etcdserverpb::AuthRoleRevokePermissionResponse* resp) override;

 private:
  // Proposes an auth change on the caller's behalf and answers with an empty response.
  template <typename Response>
  void change(grpc::CallbackServerContext* c, grpc::ServerUnaryReactor* reactor, Response* resp,
              synodpb::AuthRequest op);
  // Checks the password (off the gRPC threads) and proposes the login; retried when the auth
  // store changed between the check and the login's apply.
  void login(grpc::ServerUnaryReactor* reactor, const etcdserverpb::AuthenticateRequest* req,
             etcdserverpb::AuthenticateResponse* resp, int attempt);
  // Runs `read` over the auth store after a ReadIndex barrier and answers with its error.
  void read(grpc::CallbackServerContext* c, grpc::ServerUnaryReactor* reactor,
            std::function<std::optional<Error>(const kv::AuthStore&, const kv::Caller&)> read,
            etcdserverpb::ResponseHeader* header);

  ServerContext& ctx_;
};

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(ServerContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* c,
                                      const etcdserverpb::MemberAddRequest* req,
                                      etcdserverpb::MemberAddResponse* resp) override;
  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* c,
                                         const etcdserverpb::MemberRemoveRequest* req,
                                         etcdserverpb::MemberRemoveResponse* resp) override;
  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* c,
                                         const etcdserverpb::MemberUpdateRequest* req,
                                         etcdserverpb::MemberUpdateResponse* resp) override;
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* c,
                                       const etcdserverpb::MemberListRequest* req,
                                       etcdserverpb::MemberListResponse* resp) override;
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* c,
                                          const etcdserverpb::MemberPromoteRequest* req,
                                          etcdserverpb::MemberPromoteResponse* resp) override;

 private:
  ServerContext& ctx_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(ServerContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* c,
                                  const etcdserverpb::AlarmRequest* req,
                                  etcdserverpb::AlarmResponse* resp) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* c,
                                   const etcdserverpb::StatusRequest* req,
                                   etcdserverpb::StatusResponse* resp) override;
  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* c,
                                       const etcdserverpb::DefragmentRequest* req,
                                       etcdserverpb::DefragmentResponse* resp) override;
  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* c,
                                 const etcdserverpb::HashRequest* req,
                                 etcdserverpb::HashResponse* resp) override;
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* c,
                                   const etcdserverpb::HashKVRequest* req,
                                   etcdserverpb::HashKVResponse* resp) override;
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* c, const etcdserverpb::SnapshotRequest* req) override;
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* c,
                                       const etcdserverpb::MoveLeaderRequest* req,
                                       etcdserverpb::MoveLeaderResponse* resp) override;

 private:
  ServerContext& ctx_;
};

// etcdserverpb.Lease: grants and revokes go through the log; keep-alives and TTL queries are
// answered by the leader's lessor (a follower forwards them to the leader).
class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  explicit LeaseService(ServerContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* c,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* c,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* c) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* c,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* c,
                                        const etcdserverpb::LeaseLeasesRequest* req,
                                        etcdserverpb::LeaseLeasesResponse* resp) override;

 private:
  ServerContext& ctx_;
};

// synodpb.Fence: puts that only a lock's current holder may make (checked in the state
// machine at apply time, against the lock's keys as they are then).
// synodpb.Bft on a PBFT member: BFT clients' writes go through the log as their own requests
// (the engine checks their MACs); reads answer from this member's state. Every reply is MAC'd
// for the client that sent the request. docs/pbft.md, "Clients".
class BftService final : public synodpb::Bft::CallbackService {
 public:
  // `keys`: this member's (a copy of its engine's: a Keyring is used by one thread at a time).
  BftService(ServerContext& ctx, std::shared_ptr<pbft::Keyring> keys, uint32_t members,
             uint32_t faults)
      : ctx_(ctx), keys_(std::move(keys)), members_(members), faults_(faults) {}
  grpc::ServerUnaryReactor* Hello(grpc::CallbackServerContext* c,
                                  const synodpb::BftHelloRequest* req,
                                  synodpb::BftHello* resp) override;
  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* c, const synodpb::BftRequest* req,
                                   synodpb::BftReply* resp) override;
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* c, const synodpb::BftRequest* req,
                                 synodpb::BftReply* resp) override;

 private:
  // The request if its MAC for this member checks, else nullopt and `why`.
  std::optional<pbft::AuthenticatedRequest> authentic(const std::string& bytes, std::string* why);
  void sign(const pbft::AuthenticatedRequest& r, const synodpb::BftResult& result,
            synodpb::BftReply* reply);

  ServerContext& ctx_;
  std::mutex mu_;  // guards keys_
  std::shared_ptr<pbft::Keyring> keys_;
  uint32_t members_;
  uint32_t faults_;
};

// synodpb.Shards: a sharded cluster's placement and the state of the groups this member hosts.
class ShardsService final : public synodpb::Shards::CallbackService {
 public:
  explicit ShardsService(ServerContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* c,
                                   const synodpb::ShardsRequest* req,
                                   synodpb::ShardsResponse* resp) override;
  // A consistent cut of every group (server/cluster_cut.h), streamed group by group.
  grpc::ServerWriteReactor<synodpb::ClusterSnapshotChunk>* Snapshot(
      grpc::CallbackServerContext* c, const synodpb::ClusterSnapshotRequest* req) override;

 private:
  ServerContext& ctx_;
};

class FenceService final : public synodpb::Fence::CallbackService {
 public:
  explicit FenceService(ServerContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* c,
                                const synodpb::FencedPutRequest* req,
                                etcdserverpb::PutResponse* resp) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* c,
                                const synodpb::FencedTxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override;

 private:
  ServerContext& ctx_;
};

// etcdserverpb.Watch: one bidirectional stream per client watch session. Requests go to the
// node's watch hub on the raft thread; its answers and events come back through the registry
// (WatchService::deliver) and are written in order, one write in flight per stream.
class WatchStream;
class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  explicit WatchService(ServerContext& ctx);
  ~WatchService() override;
  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* c) override;
  // The node's watch sink: routes each output to its stream (dropped if the stream is gone).
  void deliver(std::vector<kv::WatchOutput>&& out);
  // A data group's watch sink (sharded): its outputs merged with the other groups' (one created
  // and one canceled answer per watch, events only after the created one), then delivered.
  void deliver_from_group(uint32_t group, std::vector<kv::WatchOutput>&& out);
  // Ends every open stream and the peer streams to other members (server shutdown).
  void close_all();
  // A watch stream inside the server (v3lock waits on one): its responses go to `sink`, on
  // the raft thread. Returns the stream id for Node::watch; close_internal ends it.
  using InternalSink = std::function<void(etcdserverpb::WatchResponse&&)>;
  uint64_t open_internal(InternalSink sink);
  void close_internal(uint64_t id);

  // Serving another member's watches of a data group hosted here (peer RPC GroupWatch): a relay
  // takes that member's client streams' requests (relay_request) as streams of this member's
  // hub with ids of their own, and hands their outputs, and the hub's marks, to `sink` tagged
  // with the asking member's stream ids.
  using RelaySink = std::function<void(synodpb::GroupWatchOutput&&)>;
  uint64_t open_relay(uint32_t group, RelaySink sink, std::function<void()> cancel);
  void relay_request(uint64_t relay, const synodpb::GroupWatchRequest& request);
  void close_relay(uint64_t relay);
  // A data group stopped being hosted here: client streams watching through it end
  // (Unavailable), and their clients watch again through whoever replicates it now.
  void group_dropped(uint32_t group);

 private:
  friend class WatchStream;
  class RemoteGroup;
  void forget(uint64_t id);
  void sharded_request(uint64_t stream, const etcdserverpb::WatchRequest& request,
                       const Node::WatchCaller& caller);
  // A stream's request to one group: to its node here, or to a member replicating it.
  void to_group(uint32_t group, uint64_t stream, const etcdserverpb::WatchRequest& request);
  void closed_in_groups(uint64_t stream);
  void advance_group(uint32_t group);
  std::shared_ptr<RemoteGroup> remote_group(uint32_t group);
  // Ends client streams (Unavailable, `why`): a group they watch through cannot go on.
  void end_streams(const std::set<uint64_t>& ids, const std::string& why);
  // Takes the outputs of relayed streams (and copies of the hub's marks) out of `out` to their
  // relays.
  void route_relayed(uint32_t group, std::vector<kv::WatchOutput>& out);

  // A client's watch on a sharded member, as its groups have answered so far. Its events pass
  // on in revision order: an event waits until every group has output all of the watch's
  // events up to its revision (a group's marks, kv::WatchOutput, say how far), and a group that
  // lags is asked to move its revision on (Node::advance_revision).
  struct ShardedWatch {
    size_t created = 0;     // groups that answered created
    size_t cancels = 0;     // groups that answered canceled
    bool open = false;      // the created answer was passed on
    bool canceled = false;  // a canceled answer was passed on (or waits for open): the rest goes
    bool fragment = false;
    int64_t revision = 0;  // the highest header revision among the created answers
    // The highest first revision among the groups' watchers: events below it are not passed on
    // (a watch from now starts at each group's revision + 1; a cross-shard transaction's
    // parts at one revision below some group's start must go in every group or in none).
    int64_t start = 0;
    std::vector<int64_t> through;  // per group: its events of the watch output up to here
    std::vector<char> synced;      // per group: synced in its hub (its hub-wide marks count)
    struct Pending {
      size_t group;  // 0-based
      mvccpb::Event event;
    };
    std::multimap<int64_t, Pending> pending;   // by revision, not yet passed on
    std::vector<kv::WatchOutput> before_open;  // a cancel that came before the created
  };
  using ShardedKey = std::pair<uint64_t, int64_t>;  // (stream, watch ID)
  // Passes on the watch's pending events that every group has passed; asks lagging groups to
  // move on. sharded_mu_ held.
  void release(const ShardedKey& key, ShardedWatch& w, std::vector<kv::WatchOutput>& pass,
               std::set<uint32_t>& bumps);
  int64_t safe_revision(const ShardedWatch& w) const;

  ServerContext& ctx_;
  // Relays served here (open_relay): by relay id, and each relayed hub stream's relay.
  struct Relay {
    uint32_t group = 0;
    RelaySink sink;
    std::function<void()> cancel;          // ends the peer stream
    std::map<uint64_t, uint64_t> streams;  // the asking member's stream -> the hub stream here
  };
  std::mutex relay_mu_;
  uint64_t next_relay_ = 1;
  std::map<uint64_t, Relay> relays_;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> relayed_;  // hub stream -> (relay, stream)
  // Groups watched through another member, by group.
  std::mutex remote_mu_;
  std::map<uint32_t, std::shared_ptr<RemoteGroup>> remote_;
  std::mutex sharded_mu_;  // taken before mu_
  std::map<ShardedKey, ShardedWatch> sharded_;
  std::vector<int64_t> group_through_;  // per group: its hub's last all-synced mark
  std::vector<char> bump_asked_;        // per group: an advance_revision not yet marked
  std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<WatchStream>> streams_;
  std::map<uint64_t, std::shared_ptr<InternalSink>> internal_;
};

// v3lockpb.Lock, etcd's lock service: the concurrency-mutex recipe (etcdctl lock's) run by
// the server. Lock waits, without a thread, on an internal watch of its predecessor's key.
class LockService final : public v3lockpb::Lock::CallbackService {
 public:
  LockService(ServerContext& ctx, WatchService& watches) : ctx_(ctx), watches_(watches) {}
  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* c, const v3lockpb::LockRequest* req,
                                 v3lockpb::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* c,
                                   const v3lockpb::UnlockRequest* req,
                                   v3lockpb::UnlockResponse* resp) override;

 private:
  ServerContext& ctx_;
  WatchService& watches_;
};

// v3electionpb.Election, etcd's election service: concurrency.Election run by the server.
class ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  ElectionService(ServerContext& ctx, WatchService& watches) : ctx_(ctx), watches_(watches) {}
  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* c,
                                     const v3electionpb::CampaignRequest* req,
                                     v3electionpb::CampaignResponse* resp) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* c,
                                     const v3electionpb::ProclaimRequest* req,
                                     v3electionpb::ProclaimResponse* resp) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* c,
                                   const v3electionpb::LeaderRequest* req,
                                   v3electionpb::LeaderResponse* resp) override;
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      grpc::CallbackServerContext* c, const v3electionpb::LeaderRequest* req) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* c,
                                   const v3electionpb::ResignRequest* req,
                                   v3electionpb::ResignResponse* resp) override;

 private:
  ServerContext& ctx_;
  WatchService& watches_;
};

// synodpb.Semaphore: counting semaphores, the lock recipe with N holders (semaphore.proto).
class SemaphoreService final : public synodpb::Semaphore::CallbackService {
 public:
  SemaphoreService(ServerContext& ctx, WatchService& watches) : ctx_(ctx), watches_(watches) {}
  grpc::ServerUnaryReactor* Acquire(grpc::CallbackServerContext* c,
                                    const synodpb::SemaphoreAcquireRequest* req,
                                    synodpb::SemaphoreAcquireResponse* resp) override;
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* c,
                                    const synodpb::SemaphoreReleaseRequest* req,
                                    synodpb::SemaphoreReleaseResponse* resp) override;
  grpc::ServerUnaryReactor* Describe(grpc::CallbackServerContext* c,
                                     const synodpb::SemaphoreDescribeRequest* req,
                                     synodpb::SemaphoreDescribeResponse* resp) override;

 private:
  ServerContext& ctx_;
  WatchService& watches_;
};

// Synod's peer service: Raft frames in, member directory out. Frames arrive through a callback
// reactor (no thread per stream; the frame's messages go to the raft thread in one hand-off);
// the rare member-directory and state-fetch calls are synchronous.
class PeerService final : public synodpb::Peer::WithCallbackMethod_Stream<synodpb::Peer::Service> {
 public:
  explicit PeerService(ServerContext& ctx) : ctx_(ctx) {}
  grpc::ServerReadReactor<synodpb::RaftBatch>* Stream(grpc::CallbackServerContext* c,
                                                      synodpb::StreamAck* ack) override;
  grpc::Status Members(grpc::ServerContext* c, const synodpb::MembersRequest* req,
                       synodpb::MembersResponse* resp) override;
  grpc::Status FetchState(grpc::ServerContext* c, const synodpb::FetchStateRequest* req,
                          grpc::ServerWriter<synodpb::StateChunk>* writer) override;
  grpc::Status Timestamps(grpc::ServerContext* c, const synodpb::TimestampsRequest* req,
                          synodpb::TimestampsResponse* resp) override;
  grpc::Status GroupPropose(grpc::ServerContext* c, const synodpb::GroupProposeRequest* req,
                            synodpb::GroupResult* resp) override;
  grpc::Status GroupRange(grpc::ServerContext* c, const synodpb::GroupRangeRequest* req,
                          etcdserverpb::RangeResponse* resp) override;
  grpc::Status GroupHash(grpc::ServerContext* c, const synodpb::GroupHashRequest* req,
                         etcdserverpb::HashKVResponse* resp) override;
  grpc::Status GroupConfChange(grpc::ServerContext* c, const synodpb::GroupConfChangeRequest* req,
                               synodpb::GroupResult* resp) override;
  grpc::Status GroupWatch(
      grpc::ServerContext* c,
      grpc::ServerReaderWriter<synodpb::GroupWatchOutput, synodpb::GroupWatchRequest>* rw) override;
  grpc::Status GroupCut(grpc::ServerContext* c, const synodpb::GroupCutRequest* req,
                        grpc::ServerWriter<synodpb::GroupCutChunk>* writer) override;

 private:
  ServerContext& ctx_;
};

}  // namespace synod::server
