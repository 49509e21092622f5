// The etcd KV API on a sharded member (shards.h): each request goes to the groups that hold its
// keys. One key: its shard's group, here or — when this member does not replicate it — through
// a member that does. A range: every shard's part read (after a ReadIndex barrier unless
// serializable) and merged in the request's order with its limit (kv::merge_ranges). A
// DeleteRange over several shards is one cross-shard transaction. A Txn within one shard is that
// group's Txn; across shards it commits by two-phase commit (cross_shard_txn.h). Compaction runs in
// every group.
//
// Revisions are each group's own: a header carries the highest revision among the groups that
// answered, and a read at a past revision reads every shard at that revision of its own.
//
// Every function answers the call through `reactor`; the caller has validated the request.
// Precondition: ctx.shards is set.
#pragma once

#include <functional>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "kv/auth_store.h"
#include "server/context.h"
#include "synodpb/request.pb.h"

namespace synod::server::sharded {

void range(ServerContext& ctx, grpc::CallbackServerContext* call, grpc::ServerUnaryReactor* reactor,
           const etcdserverpb::RangeRequest* req, etcdserverpb::RangeResponse* resp,
           const kv::Caller& caller);
void put(ServerContext& ctx, grpc::CallbackServerContext* call, grpc::ServerUnaryReactor* reactor,
         const etcdserverpb::PutRequest* req, etcdserverpb::PutResponse* resp);
void delete_range(ServerContext& ctx, grpc::CallbackServerContext* call,
                  grpc::ServerUnaryReactor* reactor, const etcdserverpb::DeleteRangeRequest* req,
                  etcdserverpb::DeleteRangeResponse* resp);
void txn(ServerContext& ctx, grpc::CallbackServerContext* call, grpc::ServerUnaryReactor* reactor,
         const etcdserverpb::TxnRequest* req, etcdserverpb::TxnResponse* resp);
// The cluster's revision, as Maintenance.Status reports it: the newest of `hosted` (this
// member's, ServerContext::revision) and every shard's not replicated here, read (one key,
// serializably) on a member that replicates it; a shard that cannot be reached is left out.
void cluster_revision(ServerContext& ctx, int64_t hosted, std::function<void(int64_t)> done);
// Maintenance.HashKV over every data group, each hashed on a replica (here, or a member that
// replicates it): their hashes at the revision (each at its own newest below it) folded in group
// order; the highest revision and compaction. Every member answers the same.
void hash_kv(ServerContext& ctx, grpc::ServerUnaryReactor* reactor,
             const etcdserverpb::HashKVRequest* req, etcdserverpb::HashKVResponse* resp);
// synodpb.Fence on a sharded member: the lock's holder found by one consistent read of its
// waiters in every shard, then the write committed with a compare that the holder's key still
// carries the token (a cross-shard transaction). A fenced Txn with a failure branch is refused
// (FailedPrecondition): a failed fence must change nothing, and a Txn's compares choose a branch.
void fenced_put(ServerContext& ctx, grpc::CallbackServerContext* call,
                grpc::ServerUnaryReactor* reactor, const synodpb::FencedPutRequest* req,
                etcdserverpb::PutResponse* resp);
void fenced_txn(ServerContext& ctx, grpc::CallbackServerContext* call,
                grpc::ServerUnaryReactor* reactor, const synodpb::FencedTxnRequest* req,
                etcdserverpb::TxnResponse* resp);
void compact(ServerContext& ctx, grpc::CallbackServerContext* call,
             grpc::ServerUnaryReactor* reactor, const etcdserverpb::CompactionRequest* req,
             etcdserverpb::CompactionResponse* resp);

}  // namespace synod::server::sharded
