// v3lockpb.Lock, v3electionpb.Election and synodpb.Semaphore. All three run clientv3's
// concurrency recipes (Mutex, Election; a semaphore is the mutex with N holders) here:
//   1. one Txn: if the contender key name/<lease hex> does not exist, put it (with the value,
//      for an election) on the lease; either way read it and the prefix's first-created key;
//   2. if the first-created key is this one, the lock is held (the campaign won); otherwise
//      wait until no key of the prefix created before this one is left: read the newest such
//      key, watch it until it is deleted, repeat. A semaphore with N permits waits instead
//      until fewer than N keys were created before this one, re-counting at every delete
//      under the prefix.
// Waiting holds no thread: the watch is an internal stream of the node's watch hub.
// Unlike etcd's server, Synod does not keep the lease alive while Lock waits; the client owns
// its lease and keeps it alive (as a clientv3 session does) — a lease that expires while
// waiting removes the contender key, and Lock then answers with the lease-not-found error.
#include <spdlog/spdlog.h>

#include <atomic>

#include <grpcpp/alarm.h>
#include "server/apply_result.h"

#include "kv/recipe.h"
#include "server/bidi_stream.h"
#include "server/services.h"

namespace synod::server {

namespace {

using kv::recipe::first_created;
using kv::recipe::prefix_end;

const char* const kNotLeader = "election: not leader";
const char* const kNoLeader = "election: no leader";
const char* const kMissingLeaderKey = "\"leader\" field must be provided";

grpc::Status unknown(const std::string& message) {
  return grpc::Status(grpc::StatusCode::UNKNOWN, message);
}

// A linearizable read, answered on the raft thread.
void read_linearizable(
    ServerContext& ctx, etcdserverpb::RangeRequest req,
    std::function<void(std::optional<Error>, etcdserverpb::RangeResponse&&)> done) {
  ctx.node->read_barrier(
      [&ctx, req = std::move(req), done = std::move(done)](std::optional<Error> e) {
        etcdserverpb::RangeResponse resp;
        if (!e)
          e = ctx.node->read_store([&](const kv::Store& s) { return range_into(s, req, &resp); });
        done(std::move(e), std::move(resp));
      });
}

// The caller's read access to an election's prefix (Leader, Observe).
std::optional<Error> check_prefix_read(ServerContext& ctx, const kv::Caller& caller,
                                       const std::string& prefix) {
  return ctx.node->read_store(
      [&](const kv::Store& s) { return check_read(s.auth(), caller, prefix, prefix_end(prefix)); });
}

// Proclaim and Resign: runs `op` in a txn "if the leader key still has the campaign's create
// revision" and answers with the txn's header. `must_hold`: a campaign that no longer leads is
// answered "election: not leader" (Proclaim); otherwise nothing happens and that is fine
// (Resign), as concurrency.Election does.
void if_still_leader(ServerContext& ctx, const kv::Caller& caller,
                     grpc::ServerUnaryReactor* reactor, bool has_leader,
                     const v3electionpb::LeaderKey& leader, etcdserverpb::RequestOp op,
                     bool must_hold, etcdserverpb::ResponseHeader* header) {
  if (!has_leader) return reactor->Finish(unknown(kMissingLeaderKey));
  synodpb::Request r;
  stamp(caller, &r);
  etcdserverpb::Compare* cmp = r.mutable_txn()->add_compare();
  cmp->set_key(leader.key());
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(leader.rev());
  *r.mutable_txn()->add_success() = std::move(op);
  ctx.node->propose(std::move(r), [&ctx, reactor, must_hold, header](const kv::ApplyResult& res) {
    if (const Error* e = result_error(res)) return reactor->Finish(unknown(e->message));
    const auto* txn = result_as<etcdserverpb::TxnResponse>(res);
    if (must_hold && (txn == nullptr || !txn->succeeded())) {
      return reactor->Finish(unknown(kNotLeader));
    }
    ctx.fill_header(header, txn != nullptr ? txn->header().revision() : 0);
    reactor->Finish(grpc::Status::OK);
  });
}

// The one internal watch a waiter has open at a time (WatchService::open_internal). close() may
// be called from any thread, any number of times; it says whether it closed a watch, so of
// several responses racing to act on one watch only the first does.
class InternalWatch {
 public:
  InternalWatch(ServerContext& ctx, WatchService& watches) : ctx_(ctx), watches_(watches) {}
  void open(const etcdserverpb::WatchCreateRequest& create, WatchService::InternalSink sink) {
    const uint64_t stream = watches_.open_internal(std::move(sink));
    {
      std::lock_guard lock(mu_);
      stream_ = stream;
    }
    etcdserverpb::WatchRequest w;
    *w.mutable_create_request() = create;
    ctx_.node->watch(stream, w);
  }
  bool close() {
    uint64_t stream = 0;
    {
      std::lock_guard lock(mu_);
      std::swap(stream, stream_);
    }
    if (stream == 0) return false;
    watches_.close_internal(stream);
    return true;
  }

 private:
  ServerContext& ctx_;
  WatchService& watches_;
  std::mutex mu_;
  uint64_t stream_ = 0;
};

synodpb::Request delete_request(const std::string& key, const kv::Caller& caller) {
  synodpb::Request del;
  del.mutable_delete_range()->set_key(key);
  stamp(caller, &del);
  return del;
}

// Deletes `key` and answers `reactor` with the delete's header (Unlock, Semaphore.Release).
void delete_and_answer(ServerContext& ctx, const kv::Caller& caller, const std::string& key,
                       grpc::ServerUnaryReactor* reactor, etcdserverpb::ResponseHeader* header) {
  ctx.node->propose(delete_request(key, caller),
                    [&ctx, reactor, header](const kv::ApplyResult& result) {
                      if (const Error* e = result_error(result))
                        return reactor->Finish(to_status(*e));
                      const auto* d = result_as<etcdserverpb::DeleteRangeResponse>(result);
                      ctx.fill_header(header, d != nullptr ? d->header().revision() : 0);
                      reactor->Finish(grpc::Status::OK);
                    });
}

// What a contender learns when it holds the lock (wins the election).
struct Held {
  std::string key;
  int64_t create_revision = 0;  // of the contender key
  int64_t txn_revision = 0;     // header revision of the contending txn
  int64_t revision = 0;         // header revision when it found itself first
};

// One contender: a unary call that answers once the contender holds the lock (`won` fills the
// response), or fails.
class ContendCall final : public grpc::ServerUnaryReactor,
                          public std::enable_shared_from_this<ContendCall> {
 public:
  using Won = std::function<void(const Held&)>;
  // value: the election proposal (empty for a lock); an existing contender key with another
  // value is re-proclaimed first, as concurrency.Election.Campaign does.
  // Semaphore mode (permits > 0): the key `name` must hold `permits` (the first Acquire writes
  // it), and the first `permits` contenders hold; timeout_ms > 0 bounds the wait.
  // The caller's permissions are checked as each step applies (its later steps carry the auth
  // revision of their own time, so a long wait outlives changes to unrelated users).
  ContendCall(ServerContext& ctx, WatchService& watches, kv::Caller caller, const std::string& name,
              int64_t lease, std::string value, Won won, int64_t permits = 0,
              int64_t timeout_ms = 0)
      : ctx_(ctx),
        caller_(std::move(caller)),
        watch_(ctx, watches),
        name_(name),
        lease_(lease),
        value_(std::move(value)),
        won_(std::move(won)),
        permits_(permits),
        timeout_ms_(timeout_ms),
        key_(kv::recipe::contender_key(name, lease)) {}

  void start(std::shared_ptr<ContendCall> self) {
    self_ = std::move(self);
    ctx_.node->metrics().lock_waiters.fetch_add(1, std::memory_order_relaxed);
    if (timeout_ms_ > 0) {
      alarm_.Set(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms_),
                 [call = shared_from_this()](bool fired) {
                   if (!fired) return;
                   call->finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                             "synod: semaphore not acquired within the timeout"));
                 });
    }
    if (permits_ > 0) return check_permits();
    contend();
  }

  void OnCancel() override { finish(grpc::Status::CANCELLED); }
  void OnDone() override {
    ctx_.node->metrics().lock_waiters.fetch_sub(1, std::memory_order_relaxed);
    std::shared_ptr<ContendCall> keep;
    std::lock_guard lock(mu_);
    keep.swap(self_);
  }

 private:
  // Semaphore mode: writes N into `name` if it is new, and refuses a different N.
  void check_permits() {
    synodpb::Request r;
    *r.mutable_txn() = kv::recipe::permits_txn(name_, permits_);
    stamp(now(), &r);
    ctx_.node->propose(std::move(r), [call = shared_from_this()](const kv::ApplyResult& result) {
      if (const Error* e = result_error(result)) return call->finish(to_status(*e));
      const auto* t = result_as<etcdserverpb::TxnResponse>(result);
      if (t == nullptr) {
        return call->finish(grpc::Status(grpc::StatusCode::INTERNAL, "semaphore: bad result"));
      }
      if (auto refused = kv::recipe::check_permits(*t, call->name_, call->permits_)) {
        return call->finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, *refused));
      }
      call->contend();
    });
  }

  void contend() {
    if (finishing()) return;
    synodpb::Request request;
    *request.mutable_txn() = kv::recipe::contend_txn(name_, lease_, value_);
    stamp(now(), &request);
    ctx_.node->propose(
        std::move(request),
        [call = shared_from_this()](const kv::ApplyResult& result) { call->contended(result); });
  }

  void contended(const kv::ApplyResult& result) {
    // etcd's lock server runs the recipe through a client, so a KV error reaches the caller
    // as gRPC UNKNOWN with the error's text; Synod answers the same.
    if (const Error* e = result_error(result)) {
      return finish(grpc::Status(grpc::StatusCode::UNKNOWN, e->message));
    }
    const auto* txn = result_as<etcdserverpb::TxnResponse>(result);
    if (txn == nullptr) {
      return finish(grpc::Status(grpc::StatusCode::INTERNAL, "lock: unexpected txn result"));
    }
    auto contended = kv::recipe::read_contended(*txn, value_, permits_);
    if (!contended) return finish(grpc::Status(grpc::StatusCode::INTERNAL, contended.error()));
    my_revision_ = contended->my_revision;
    txn_revision_ = contended->txn_revision;
    const bool reproclaim = contended->reproclaim;
    const bool first = contended->first;
    if (reproclaim) {
      // The key is this lease's already, from an earlier campaign with another value.
      synodpb::Request put;
      put.mutable_put()->set_key(key_);
      put.mutable_put()->set_value(value_);
      put.mutable_put()->set_lease(lease_);
      stamp(now(), &put);
      ctx_.node->propose(std::move(put), [call = shared_from_this(), first,
                                          revision = txn_revision_](const kv::ApplyResult& r) {
        if (const Error* e = result_error(r)) {
          return call->finish(grpc::Status(grpc::StatusCode::UNKNOWN, e->message));
        }
        if (first) return call->acquired(revision);
        call->wait_predecessors();
      });
      return;
    }
    if (finishing()) {
      // Gave up (timeout, cancel) while the txn was in flight: take the key back out.
      ctx_.node->propose(delete_request(key_, now()), [](const kv::ApplyResult&) {});
      return;
    }
    if (first) return acquired(txn_revision_);
    wait_predecessors();
  }

  // The newest key of the prefix created before this one, read linearizably; none: held.
  void wait_predecessors() {
    if (finishing()) return;
    auto self = shared_from_this();
    ctx_.node->read_barrier([self](std::optional<Error> e) {
      if (e) return self->finish(to_status(*e));
      const etcdserverpb::RangeRequest r =
          kv::recipe::predecessors(self->name_, self->my_revision_, self->permits_);
      etcdserverpb::RangeResponse got;
      std::optional<Error> err =
          self->ctx_.node->read_store([&](const kv::Store& s) { return range_into(s, r, &got); });
      if (err) return self->finish(to_status(*err));
      const kv::recipe::Wait wait =
          kv::recipe::read_predecessors(got, self->name_, self->lease_, self->permits_);
      if (wait.gone) {
        // The lease expired while this contender waited, taking its key.
        return self->finish(unknown(kv::errors::lease_not_found().message));
      }
      if (wait.held) return self->acquired(got.header().revision());
      self->watch_delete(wait.watch_key, wait.watch_end, got.header().revision());
    });
  }

  // Waits for a DELETE in [key, end) at or after `revision`, then looks again.
  void watch_delete(const std::string& key, const std::string& end, int64_t revision) {
    etcdserverpb::WatchCreateRequest w;
    w.set_key(key);
    w.set_range_end(end);
    w.set_start_revision(revision);
    w.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
    watch_.open(w, [self = shared_from_this()](etcdserverpb::WatchResponse&& r) {
      bool again = r.canceled();  // compacted: look again
      for (const mvccpb::Event& e : r.events()) again |= e.type() == mvccpb::Event::DELETE;
      if (!again || !self->watch_.close()) return;  // closed already: a later response
      self->wait_predecessors();
    });
    if (finishing()) watch_.close();
  }

  void acquired(int64_t revision) {
    if (finishing()) return;
    won_(Held{key_, my_revision_, txn_revision_, revision});
    finish(grpc::Status::OK);
  }

  bool finishing() {
    std::lock_guard lock(mu_);
    return finished_;
  }

  kv::Caller now() const {
    if (caller_.revision == 0) return caller_;
    return kv::Caller{caller_.user, ctx_.node->auth_revision()};
  }

  // A contender that gives up (error, cancel, timeout) removes its key, as clientv3's
  // Mutex.Lock does, so it keeps no place in the queue.
  void finish(const grpc::Status& status) {
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    watch_.close();
    if (timeout_ms_ > 0) alarm_.Cancel();
    if (!status.ok() && my_revision_ > 0) {
      ctx_.node->propose(delete_request(key_, now()), [](const kv::ApplyResult&) {});
    }
    Finish(status);
  }

  ServerContext& ctx_;
  const kv::Caller caller_;
  InternalWatch watch_;  // on the predecessor (the prefix, for a semaphore) while waiting
  const std::string name_;
  const int64_t lease_;
  const std::string value_;
  Won won_;
  const int64_t permits_;
  const int64_t timeout_ms_;
  grpc::Alarm alarm_;
  std::string key_;
  std::atomic<int64_t> my_revision_{0};  // set on the raft thread, read by finish()
  int64_t txn_revision_ = 0;
  std::mutex mu_;
  std::shared_ptr<ContendCall> self_;  // until OnDone
  bool finished_ = false;
};

}  // namespace

grpc::ServerUnaryReactor* LockService::Lock(grpc::CallbackServerContext* c,
                                            const v3lockpb::LockRequest* req,
                                            v3lockpb::LockResponse* resp) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  auto call =
      std::make_shared<ContendCall>(ctx_, watches_, std::move(*caller), req->name(), req->lease(),
                                    std::string(), [this, resp](const Held& held) {
                                      resp->set_key(held.key);
                                      ctx_.fill_header(resp->mutable_header(), held.revision);
                                    });
  call->start(call);
  return call.get();
}

grpc::ServerUnaryReactor* LockService::Unlock(grpc::CallbackServerContext* c,
                                              const v3lockpb::UnlockRequest* req,
                                              v3lockpb::UnlockResponse* resp) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  delete_and_answer(ctx_, *caller, req->key(), reactor, resp->mutable_header());
  return reactor;
}

namespace {

// Observe: the first-created key of the prefix (waiting for one if there is none), then every
// put to it, until it is deleted; then again. As concurrency.Election.Observe.
class ObserveStream final
    : public StreamWriter<grpc::ServerWriteReactor<v3electionpb::LeaderResponse>,
                          v3electionpb::LeaderResponse> {
 public:
  ObserveStream(ServerContext& ctx, WatchService& watches, const std::string& name)
      : ctx_(ctx), watch_(ctx, watches), prefix_(name + "/") {}

  void start(std::shared_ptr<ObserveStream> self) {
    me_ = self;
    hold_self(std::move(self));
    find_leader();
  }
  // Ends the stream at once with `status`, observing nothing.
  void refuse(std::shared_ptr<ObserveStream> self, const grpc::Status& status) {
    hold_self(std::move(self));
    end(status);
  }

  void OnCancel() override { end(grpc::Status::CANCELLED); }

 private:
  void on_done() override {
    watch_.close();
    me_.reset();
  }
  const char* name() const override { return "election observe"; }

  void find_leader() {
    auto self = me_.lock();
    if (!self || finishing()) return;
    read_linearizable(ctx_, first_created(prefix_),
                      [self](std::optional<Error> e, etcdserverpb::RangeResponse&& r) {
                        if (e) return self->end(unknown(e->message));
                        if (r.kvs_size() == 0) {
                          self->watch(self->prefix_, prefix_end(self->prefix_),
                                      r.header().revision(), /*waiting_for_leader=*/true);
                          return;
                        }
                        self->emit(r.kvs(0), r.header().revision());
                        self->watch(r.kvs(0).key(), "", r.header().revision() + 1, false);
                      });
  }

  void emit(const mvccpb::KeyValue& kv, int64_t revision) {
    v3electionpb::LeaderResponse resp;
    *resp.mutable_kv() = kv;
    ctx_.fill_header(resp.mutable_header(), revision);
    std::vector<v3electionpb::LeaderResponse> out;
    out.push_back(std::move(resp));
    send(std::move(out));
  }

  // waiting_for_leader: a watch of the whole prefix until its first put; otherwise a watch of
  // the leader's key, passing on its puts until it is deleted.
  void watch(const std::string& key, const std::string& end, int64_t from,
             bool waiting_for_leader) {
    auto self = me_.lock();
    if (!self) return;
    etcdserverpb::WatchCreateRequest w;
    w.set_key(key);
    w.set_range_end(end);
    w.set_start_revision(from);
    watch_.open(w, [self, waiting_for_leader](etcdserverpb::WatchResponse&& r) {
      if (r.canceled()) {  // compacted under us: look again
        if (self->watch_.close()) self->find_leader();
        return;
      }
      for (const mvccpb::Event& e : r.events()) {
        if (waiting_for_leader) {
          if (e.type() != mvccpb::Event::PUT) continue;
          if (!self->watch_.close()) return;
          self->emit(e.kv(), e.kv().mod_revision());
          self->watch(e.kv().key(), "", e.kv().mod_revision() + 1, false);
          return;
        }
        if (e.type() == mvccpb::Event::DELETE) {
          if (self->watch_.close()) self->find_leader();
          return;
        }
        self->emit(e.kv(), r.header().revision());
      }
    });
    if (finishing()) watch_.close();
  }

  ServerContext& ctx_;
  InternalWatch watch_;  // on the prefix (no leader yet) or on the leader's key
  const std::string prefix_;
  std::weak_ptr<ObserveStream> me_;
};

}  // namespace

grpc::ServerUnaryReactor* ElectionService::Campaign(grpc::CallbackServerContext* c,
                                                    const v3electionpb::CampaignRequest* req,
                                                    v3electionpb::CampaignResponse* resp) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  auto call = std::make_shared<ContendCall>(
      ctx_, watches_, std::move(*caller), req->name(), req->lease(), req->value(),
      [this, req, resp](const Held& held) {
        v3electionpb::LeaderKey* leader = resp->mutable_leader();
        leader->set_name(req->name());
        leader->set_key(held.key);
        leader->set_rev(held.create_revision);
        leader->set_lease(req->lease());
        ctx_.fill_header(resp->mutable_header(), held.txn_revision);  // etcd: the txn's header
      });
  call->start(call);
  return call.get();
}

grpc::ServerUnaryReactor* ElectionService::Proclaim(grpc::CallbackServerContext* c,
                                                    const v3electionpb::ProclaimRequest* req,
                                                    v3electionpb::ProclaimResponse* resp) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  etcdserverpb::RequestOp put;
  put.mutable_request_put()->set_key(req->leader().key());
  put.mutable_request_put()->set_value(req->value());
  put.mutable_request_put()->set_lease(req->leader().lease());
  if_still_leader(ctx_, *caller, reactor, req->has_leader(), req->leader(), std::move(put),
                  /*must_hold=*/true, resp->mutable_header());
  return reactor;
}

grpc::ServerUnaryReactor* ElectionService::Leader(grpc::CallbackServerContext* c,
                                                  const v3electionpb::LeaderRequest* req,
                                                  v3electionpb::LeaderResponse* resp) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  if (auto e = check_prefix_read(ctx_, *caller, req->name() + "/")) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  read_linearizable(ctx_, first_created(req->name() + "/"),
                    [this, reactor, resp](std::optional<Error> e, etcdserverpb::RangeResponse&& r) {
                      if (e) return reactor->Finish(unknown(e->message));
                      if (r.kvs_size() == 0) return reactor->Finish(unknown(kNoLeader));
                      *resp->mutable_kv() = r.kvs(0);
                      ctx_.fill_header(resp->mutable_header(), r.header().revision());
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* ElectionService::Observe(
    grpc::CallbackServerContext* c, const v3electionpb::LeaderRequest* req) {
  auto stream = std::make_shared<ObserveStream>(ctx_, watches_, req->name());
  auto caller = caller_of(ctx_, *c);
  std::optional<Error> refused = caller ? check_prefix_read(ctx_, *caller, req->name() + "/")
                                        : std::optional<Error>(caller.error());
  if (refused) {
    stream->refuse(stream, to_status(*refused));
    return stream.get();
  }
  stream->start(stream);
  return stream.get();
}

grpc::ServerUnaryReactor* ElectionService::Resign(grpc::CallbackServerContext* c,
                                                  const v3electionpb::ResignRequest* req,
                                                  v3electionpb::ResignResponse* resp) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  etcdserverpb::RequestOp del;
  del.mutable_request_delete_range()->set_key(req->leader().key());
  if_still_leader(ctx_, *caller, reactor, req->has_leader(), req->leader(), std::move(del),
                  /*must_hold=*/false, resp->mutable_header());
  return reactor;
}

grpc::ServerUnaryReactor* SemaphoreService::Acquire(grpc::CallbackServerContext* c,
                                                    const synodpb::SemaphoreAcquireRequest* req,
                                                    synodpb::SemaphoreAcquireResponse* resp) {
  if (req->name().empty() || req->permits() < 1) {
    grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 req->name().empty() ? "synod: semaphore name is not provided"
                                                     : "synod: permits must be at least 1"));
    return reactor;
  }
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  auto call = std::make_shared<ContendCall>(
      ctx_, watches_, std::move(*caller), req->name(), req->lease(), std::string(),
      [this, resp](const Held& held) {
        resp->set_key(held.key);
        resp->set_token(held.create_revision);
        ctx_.fill_header(resp->mutable_header(), held.revision);
      },
      req->permits(), req->timeout_ms());
  call->start(call);
  return call.get();
}

grpc::ServerUnaryReactor* SemaphoreService::Release(grpc::CallbackServerContext* c,
                                                    const synodpb::SemaphoreReleaseRequest* req,
                                                    synodpb::SemaphoreReleaseResponse* resp) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  delete_and_answer(ctx_, *caller, req->key(), reactor, resp->mutable_header());
  return reactor;
}

grpc::ServerUnaryReactor* SemaphoreService::Describe(grpc::CallbackServerContext* c,
                                                     const synodpb::SemaphoreDescribeRequest* req,
                                                     synodpb::SemaphoreDescribeResponse* resp) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return finish_with(c, caller.error());
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  const std::string name = req->name();
  ctx_.node->read_barrier(
      [this, reactor, resp, name, caller = std::move(*caller)](std::optional<Error> e) {
        if (e) return reactor->Finish(to_status(*e));
        etcdserverpb::RangeRequest permits;
        permits.set_key(name);
        etcdserverpb::RangeRequest contenders = first_created(name + "/");
        contenders.set_limit(0);
        etcdserverpb::RangeResponse p, r;
        std::optional<Error> err = ctx_.node->read_store([&](const kv::Store& s) {
          if (auto e0 = check_read(s.auth(), caller, name, "")) return e0;
          if (auto e0 = check_read(s.auth(), caller, name + "/", prefix_end(name + "/"))) return e0;
          if (auto e1 = range_into(s, permits, &p)) return e1;
          return range_into(s, contenders, &r);
        });
        if (err) return reactor->Finish(to_status(*err));
        int64_t n = 0;
        if (p.kvs_size() > 0) n = std::strtoll(p.kvs(0).value().c_str(), nullptr, 10);
        resp->set_permits(n);
        for (int i = 0; i < r.kvs_size(); ++i) {
          synodpb::SemaphoreContender* x = i < n ? resp->add_holders() : resp->add_waiters();
          x->set_key(r.kvs(i).key());
          x->set_token(r.kvs(i).create_revision());
          x->set_lease(r.kvs(i).lease());
        }
        ctx_.fill_header(resp->mutable_header(), r.header().revision());
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

}  // namespace synod::server
