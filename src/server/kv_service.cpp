// etcdserverpb.KV: reads are served locally (serializable) or after a ReadIndex barrier
// (linearizable, the default); writes go through the Raft log and answer once applied here.
#include <spdlog/spdlog.h>

#include "server/apply_result.h"
#include "server/replicate.h"
#include "server/services.h"
#include "server/sharded_kv.h"

namespace synod::server {

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* c,
                                           const etcdserverpb::RangeRequest* req,
                                           etcdserverpb::RangeResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (auto e = kv::validate(*req)) {
    reactor->Finish(to_status(*e));
    return reactor;
  }
  auto caller = caller_of(ctx_, *c);
  if (!caller) {
    reactor->Finish(to_status(caller.error()));
    return reactor;
  }
  if (ctx_.shards != nullptr) {
    sharded::range(ctx_, c, reactor, req, resp, *caller);
    return reactor;
  }
  auto serve = [this, req, resp, reactor, caller = std::move(*caller), start = Clock::now()] {
    std::optional<Error> error = ctx_.node->read_store([&](const kv::Store& store) {
      if (auto e = check_read(store.auth(), caller, req->key(), req->range_end())) return e;
      return range_into(store, *req, resp);
    });
    ctx_.node->metrics().read_latency.observe(
        std::chrono::duration<double>(Clock::now() - start).count());
    if (error) {
      reactor->Finish(to_status(*error));
      return;
    }
    ctx_.fill_header(resp->mutable_header(), resp->header().revision());
    reactor->Finish(grpc::Status::OK);
  };
  if (req->serializable()) {
    serve();
    return reactor;
  }
  // A read of one key (or a few) is served on the raft thread as soon as its barrier passes:
  // that costs less than waking a worker. Larger ranges go to the workers, so a big scan never
  // holds up the Raft loop.
  const bool small = req->range_end().empty() || (req->limit() > 0 && req->limit() <= 16);
  ctx_.node->read_barrier([this, serve, reactor, small](std::optional<Error> e) {
    if (e) {
      reactor->Finish(to_status(*e));
      return;
    }
    if (small) {
      serve();
    } else {
      ctx_.executor->post(serve);
    }
  });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* c,
                                         const etcdserverpb::PutRequest* req,
                                         etcdserverpb::PutResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (auto e = kv::validate(*req)) {
    reactor->Finish(to_status(*e));
    return reactor;
  }
  if (ctx_.shards != nullptr) {
    sharded::put(ctx_, c, reactor, req, resp);
    return reactor;
  }
  replicate(ctx_, *c, reactor, resp, [req](synodpb::Request* r) { *r->mutable_put() = *req; });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* c,
                                                 const etcdserverpb::DeleteRangeRequest* req,
                                                 etcdserverpb::DeleteRangeResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (auto e = kv::validate(*req)) {
    reactor->Finish(to_status(*e));
    return reactor;
  }
  if (ctx_.shards != nullptr) {
    sharded::delete_range(ctx_, c, reactor, req, resp);
    return reactor;
  }
  replicate(ctx_, *c, reactor, resp,
            [req](synodpb::Request* r) { *r->mutable_delete_range() = *req; });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* c,
                                         const etcdserverpb::TxnRequest* req,
                                         etcdserverpb::TxnResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (auto e = kv::validate(*req, static_cast<int>(ctx_.config.raw.max_txn_ops))) {
    reactor->Finish(to_status(*e));
    return reactor;
  }
  if (ctx_.shards != nullptr) {
    sharded::txn(ctx_, c, reactor, req, resp);
    return reactor;
  }
  replicate(ctx_, *c, reactor, resp, [req](synodpb::Request* r) { *r->mutable_txn() = *req; });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* c,
                                             const etcdserverpb::CompactionRequest* req,
                                             etcdserverpb::CompactionResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (ctx_.shards != nullptr) {
    sharded::compact(ctx_, c, reactor, req, resp);
    return reactor;
  }
  replicate(ctx_, *c, reactor, resp,
            [req](synodpb::Request* r) { *r->mutable_compaction() = *req; });
  return reactor;
}

}  // namespace synod::server
