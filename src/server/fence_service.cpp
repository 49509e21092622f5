// synodpb.Fence: fenced puts go through the log like any put; the state machine checks the
// token against the lock's holder when it applies them (kv::Store::apply_fenced_put). On a
// sharded member the lock's waiters are in every shard: sharded::fenced_put and fenced_txn.
#include "server/replicate.h"
#include "server/services.h"
#include "server/sharded_kv.h"

namespace synod::server {

grpc::ServerUnaryReactor* FenceService::Put(grpc::CallbackServerContext* c,
                                            const synodpb::FencedPutRequest* req,
                                            etcdserverpb::PutResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (auto e = kv::validate(req->put())) {
    reactor->Finish(to_status(*e));
    return reactor;
  }
  if (ctx_.shards != nullptr) {
    sharded::fenced_put(ctx_, c, reactor, req, resp);
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
  if (auto e = kv::validate(req->txn())) {
    reactor->Finish(to_status(*e));
    return reactor;
  }
  if (ctx_.shards != nullptr) {
    sharded::fenced_txn(ctx_, c, reactor, req, resp);
    return reactor;
  }
  replicate(ctx_, *c, reactor, resp,
            [req](synodpb::Request* r) { *r->mutable_fenced_txn() = *req; });
  return reactor;
}

}  // namespace synod::server
