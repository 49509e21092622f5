// synodpb.Fence: fenced puts go through the log like any put; the state machine checks the
// token against the lock's holder when it applies them (kv::Store::apply_fenced_put).
#include "server/replicate.h"
#include "server/services.h"

namespace synod::server {

namespace {

// A fenced write checks the lock's waiters, whose keys a sharded cluster spreads over every
// shard, in the same apply as the write: not available there.
bool refused_when_sharded(const ServerContext& ctx, grpc::ServerUnaryReactor* reactor) {
  if (ctx.shards == nullptr) return false;
  reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                               "synod: fenced writes are not available on a sharded cluster"));
  return true;
}

}  // namespace

grpc::ServerUnaryReactor* FenceService::Put(grpc::CallbackServerContext* c,
                                            const synodpb::FencedPutRequest* req,
                                            etcdserverpb::PutResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (refused_when_sharded(ctx_, reactor)) return reactor;
  if (auto e = kv::validate(req->put())) {
    reactor->Finish(to_status(*e));
    return reactor;
  }
  replicate(ctx_, *c, reactor, resp,
            [req](synodpb::Request* r) { *r->mutable_fenced_put() = *req; });
  return reactor;
}

grpc::ServerUnaryReactor* FenceService::Txn(grpc::CallbackServerContext* c,
                                            const synodpb::FencedTxnRequest* req,
                                            etcdserverpb::TxnResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (refused_when_sharded(ctx_, reactor)) return reactor;
  if (auto e = kv::validate(req->txn())) {
    reactor->Finish(to_status(*e));
    return reactor;
  }
  replicate(ctx_, *c, reactor, resp,
            [req](synodpb::Request* r) { *r->mutable_fenced_txn() = *req; });
  return reactor;
}

}  // namespace synod::server
