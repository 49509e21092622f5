// v3lockpb.Lock: etcd's lock service. The recipe is clientv3's concurrency.Mutex, run here:
//   1. one Txn: if the contender key name/<lease hex> does not exist, put it with the lease;
//      either way read it and the prefix's first-created key (the owner);
//   2. if the owner is this key, the lock is held; otherwise wait until no key of the prefix
//      created before this one is left: read the newest such key, watch it until it is
//      deleted, repeat.
// Waiting holds no thread: the watch is an internal stream of the node's watch hub.
// Unlike etcd's server, Synod does not keep the lease alive while Lock waits; the client owns
// its lease and keeps it alive (as a clientv3 session does) — a lease that expires while
// waiting removes the contender key, and Lock then answers with the lease-not-found error.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "server/apply_result.h"
#include "server/services.h"

namespace synod::server {

namespace {

std::string prefix_end(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

etcdserverpb::RangeRequest first_created(const std::string& prefix) {
  etcdserverpb::RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(prefix_end(prefix));
  r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  r.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  r.set_limit(1);
  return r;
}

class LockCall final : public grpc::ServerUnaryReactor,
                       public std::enable_shared_from_this<LockCall> {
 public:
  LockCall(ServerContext& ctx, WatchService& watches, const v3lockpb::LockRequest& req,
           v3lockpb::LockResponse* resp)
      : ctx_(ctx), watches_(watches), prefix_(req.name() + "/"), lease_(req.lease()), resp_(resp) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease_));
    key_ = prefix_ + hex;
  }

  void start(std::shared_ptr<LockCall> self) {
    self_ = std::move(self);
    synodpb::Request request;
    etcdserverpb::TxnRequest* txn = request.mutable_txn();
    etcdserverpb::Compare* cmp = txn->add_compare();
    cmp->set_key(key_);
    cmp->set_target(etcdserverpb::Compare::CREATE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_create_revision(0);
    etcdserverpb::PutRequest* put = txn->add_success()->mutable_request_put();
    put->set_key(key_);
    put->set_lease(lease_);
    *txn->add_success()->mutable_request_range() = first_created(prefix_);
    txn->add_failure()->mutable_request_range()->set_key(key_);
    *txn->add_failure()->mutable_request_range() = first_created(prefix_);
    ctx_.node->propose(
        std::move(request),
        [call = shared_from_this()](const kv::ApplyResult& result) { call->contended(result); });
  }

  void OnCancel() override { finish(grpc::Status::CANCELLED); }
  void OnDone() override {
    std::shared_ptr<LockCall> keep;
    std::lock_guard lock(mu_);
    keep.swap(self_);
  }

 private:
  void contended(const kv::ApplyResult& result) {
    // etcd's lock server runs the recipe through a client, so a KV error reaches the caller
    // as gRPC UNKNOWN with the error's text; Synod answers the same.
    if (const Error* e = result_error(result)) {
      return finish(grpc::Status(grpc::StatusCode::UNKNOWN, e->message));
    }
    const auto* txn = result_as<etcdserverpb::TxnResponse>(result);
    if (txn == nullptr || txn->responses_size() != 2) {
      return finish(grpc::Status(grpc::StatusCode::INTERNAL, "lock: unexpected txn result"));
    }
    const auto& mine = txn->responses(0);
    if (txn->succeeded()) {
      my_revision_ = txn->header().revision();
    } else if (mine.response_range().kvs_size() > 0) {
      my_revision_ = mine.response_range().kvs(0).create_revision();
    } else {
      return finish(grpc::Status(grpc::StatusCode::INTERNAL, "lock: contender key vanished"));
    }
    const auto& owner = txn->responses(1).response_range();
    if (owner.kvs_size() == 0 || owner.kvs(0).create_revision() == my_revision_) {
      return acquired(txn->header().revision());
    }
    wait_predecessors();
  }

  // The newest key of the prefix created before this one, read linearizably; none: held.
  void wait_predecessors() {
    if (finishing()) return;
    auto self = shared_from_this();
    ctx_.node->read_barrier([self](std::optional<Error> e) {
      if (e) return self->finish(to_status(*e));
      etcdserverpb::RangeRequest r;
      r.set_key(self->prefix_);
      r.set_range_end(prefix_end(self->prefix_));
      r.set_max_create_revision(self->my_revision_ - 1);
      r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
      r.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
      r.set_limit(1);
      etcdserverpb::RangeResponse got;
      std::optional<Error> err =
          self->ctx_.node->read_store([&](const kv::Store& s) { return range_into(s, r, &got); });
      if (err) return self->finish(to_status(*err));
      if (got.kvs_size() == 0) return self->acquired(got.header().revision());
      self->watch_delete(got.kvs(0).key(), got.header().revision());
    });
  }

  // Waits for the DELETE of `key` at or after `revision`, then looks again.
  void watch_delete(const std::string& key, int64_t revision) {
    auto self = shared_from_this();
    const uint64_t stream = watches_.open_internal([self, this](etcdserverpb::WatchResponse&& r) {
      bool again = r.canceled();  // compacted: look again
      for (const mvccpb::Event& e : r.events()) again |= e.type() == mvccpb::Event::DELETE;
      if (!again || !close_watch()) return;  // closed already: a later response
      wait_predecessors();
    });
    {
      std::lock_guard lock(mu_);
      watch_stream_ = stream;
    }
    etcdserverpb::WatchRequest w;
    w.mutable_create_request()->set_key(key);
    w.mutable_create_request()->set_start_revision(revision);
    w.mutable_create_request()->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
    ctx_.node->watch(stream, w);
    if (finishing()) close_watch();
  }

  void acquired(int64_t revision) {
    resp_->set_key(key_);
    ctx_.fill_header(resp_->mutable_header(), revision);
    finish(grpc::Status::OK);
  }

  // Ends the watch; false if there was none open.
  bool close_watch() {
    uint64_t stream = 0;
    {
      std::lock_guard lock(mu_);
      std::swap(stream, watch_stream_);
    }
    if (stream == 0) return false;
    watches_.close_internal(stream);
    return true;
  }

  bool finishing() {
    std::lock_guard lock(mu_);
    return finished_;
  }

  void finish(const grpc::Status& status) {
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    close_watch();
    Finish(status);
  }

  ServerContext& ctx_;
  WatchService& watches_;
  const std::string prefix_;
  const int64_t lease_;
  std::string key_;
  int64_t my_revision_ = 0;
  v3lockpb::LockResponse* resp_;
  std::mutex mu_;
  std::shared_ptr<LockCall> self_;  // until OnDone
  uint64_t watch_stream_ = 0;
  bool finished_ = false;
};

}  // namespace

grpc::ServerUnaryReactor* LockService::Lock(grpc::CallbackServerContext*,
                                            const v3lockpb::LockRequest* req,
                                            v3lockpb::LockResponse* resp) {
  auto call = std::make_shared<LockCall>(ctx_, watches_, *req, resp);
  call->start(call);
  return call.get();
}

grpc::ServerUnaryReactor* LockService::Unlock(grpc::CallbackServerContext* c,
                                              const v3lockpb::UnlockRequest* req,
                                              v3lockpb::UnlockResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::Request request;
  request.mutable_delete_range()->set_key(req->key());
  ctx_.node->propose(std::move(request), [this, reactor, resp](const kv::ApplyResult& result) {
    if (const Error* e = result_error(result)) {
      reactor->Finish(to_status(*e));
      return;
    }
    const auto* d = result_as<etcdserverpb::DeleteRangeResponse>(result);
    ctx_.fill_header(resp->mutable_header(), d != nullptr ? d->header().revision() : 0);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace synod::server
