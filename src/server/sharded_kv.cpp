#include "server/sharded_kv.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include "kv/range.h"
#include "server/apply_result.h"
#include "server/cross_shard_txn.h"
#include "server/forward.h"
#include "server/group_access.h"
#include "server/replicate.h"
#include "server/timestamp_oracle.h"

namespace synod::server::sharded {

namespace {

using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;

std::vector<uint32_t> every_group(const Shards& shards) {
  std::vector<uint32_t> out;
  for (uint32_t g = 1; g <= shards.count(); ++g) out.push_back(g);
  return out;
}

// The groups holding [key, range_end): one for a single key, all of them for a range (keys are
// placed by hash, so any range may meet every shard).
std::vector<uint32_t> groups_of(const Shards& shards, const std::string& key,
                                const std::string& range_end) {
  if (range_end.empty()) return {shards.group_of(key)};
  return every_group(shards);
}

// Sends the call to members[next], or the one after it if that one cannot be reached.
template <typename Req, typename Resp, typename Method>
void forward_in_turn(ServerContext& ctx, std::vector<std::pair<uint64_t, std::string>> members,
                     size_t next, grpc::CallbackServerContext* call,
                     grpc::ServerUnaryReactor* reactor, const Req* req, Resp* resp, Method method) {
  const auto [member, address] = members[next];
  forward_then<etcdserverpb::KV>(ctx, address, *call, req, resp, method,
                                 [&ctx, members = std::move(members), next, member, call, reactor,
                                  req, resp, method](const grpc::Status& s) mutable {
                                   if (!never_delivered(s) || next + 1 == members.size()) {
                                     reactor->Finish(s);
                                     return;
                                   }
                                   ctx.remote_groups->unreachable(member);
                                   forward_in_turn(ctx, std::move(members), next + 1, call, reactor,
                                                   req, resp, method);
                                 });
}

// Sends the whole call to a member that replicates `group` (this one does not): it routes the
// request the same way and serves it from its own replica. The shard map's order is kept,
// except that members recently unreachable are tried last; one that cannot be reached is
// passed over for the next (the call never reached it).
template <typename Req, typename Resp, typename Method>
void forward_to_group(ServerContext& ctx, uint32_t group, grpc::CallbackServerContext* call,
                      grpc::ServerUnaryReactor* reactor, const Req* req, Resp* resp,
                      Method method) {
  std::vector<std::pair<uint64_t, std::string>> members;
  for (uint64_t member : replicas_elsewhere(ctx, group)) {
    if (std::optional<std::string> address = ctx.client_address(member)) {
      members.emplace_back(member, *address);
    }
  }
  if (members.empty()) {
    reactor->Finish(to_status(kv::errors::shard_unreachable()));
    return;
  }
  forward_in_turn(ctx, std::move(members), 0, call, reactor, req, resp, method);
}

// Permissions live in the member's own group (group 0); the shards' stores hold none. A write is
// checked here against them before it is routed (one forwarded to another member is checked
// there again); nullopt: allowed, or authentication disabled.
template <typename Setter>
std::optional<Error> check_write(ServerContext& ctx, const kv::Caller& caller, Setter set_op) {
  if (!ctx.node->auth_enabled()) return std::nullopt;
  synodpb::Request request;
  set_op(&request);
  stamp(caller, &request);
  return ctx.node->read_store([&](const kv::Store& s) { return s.authorize(request); });
}
template <typename Setter>
std::optional<Error> check_write(ServerContext& ctx, const grpc::ServerContextBase& call,
                                 Setter set_op) {
  if (!ctx.node->auth_enabled()) return std::nullopt;
  auto caller = caller_of(ctx, call);
  if (!caller) return caller.error();
  return check_write(ctx, *caller, set_op);
}

// A request whose keys all live in `group`: proposed there when this member replicates it,
// otherwise sent whole to a member that does.
template <typename Req, typename Resp, typename Method, typename Setter>
void to_one_group(ServerContext& ctx, uint32_t group, grpc::CallbackServerContext* call,
                  grpc::ServerUnaryReactor* reactor, const Req* req, Resp* resp, Method method,
                  Setter set_op) {
  Node* node = ctx.shards->node(group);
  if (node == nullptr) {
    forward_to_group(ctx, group, call, reactor, req, resp, method);
    return;
  }
  replicate_on(ctx, *node, *call, reactor, resp, set_op);
}

// Answers from every one of `groups`, gathered: `finish` runs once, with the first error or
// with every answer (in no particular order).
template <typename Part>
class Gather {
 public:
  using Finish = std::function<void(std::optional<Error>, std::vector<Part>&&)>;
  Gather(size_t pending, Finish finish) : pending_(pending), finish_(std::move(finish)) {}

  void add(std::optional<Error> error, Part&& part) {
    std::unique_lock lock(mu_);
    if (error && !error_) error_ = std::move(error);
    if (!error) parts_.push_back(std::move(part));
    SYNOD_ASSERT(pending_ > 0);
    if (--pending_ > 0) return;
    lock.unlock();
    finish_(std::move(error_), std::move(parts_));
  }

 private:
  std::mutex mu_;
  size_t pending_;
  std::optional<Error> error_;
  std::vector<Part> parts_;
  Finish finish_;
};

// Reads `req` from every one of `groups` as one snapshot, by double collect: each shard read
// after its own ReadIndex barrier, then every shard read so again, until a collect finds every
// shard's part as the one before (keys and mod revisions). A shard's part read after a barrier
// holds every write committed before the barrier; unchanged by the second read, the shard's
// committed state of the range stayed as read from the first read to the second barrier. Every
// first read came before every second barrier, so all the shards' committed states held at
// once in between: the parts are one cut, and no cross-shard transaction shows in part there
// (a key one holds is refused until its part resolves, and no part resolves before every
// part's prepare has committed). Reading every shard once is not enough (a transfer can begin
// and end between the reads of its two accounts' shards), nor are two collects of this
// member's replicas without barriers (one replica may lag another). Bounded: after
// kMaxCollects the range is refused as busy (Unavailable: retry).
class SnapshotRead : public std::enable_shared_from_this<SnapshotRead> {
 public:
  using Done = std::function<void(std::optional<Error>)>;
  SnapshotRead(ServerContext& ctx, std::vector<uint32_t> groups, const RangeRequest& req,
               RangeResponse* resp, Done done)
      : ctx_(ctx), groups_(std::move(groups)), req_(req), resp_(resp), done_(std::move(done)) {}

  void collect() {
    auto parts = std::make_shared<std::vector<RangeResponse>>(groups_.size());
    auto pending = std::make_shared<std::atomic<size_t>>(groups_.size());
    auto error = std::make_shared<std::optional<Error>>();
    auto mu = std::make_shared<std::mutex>();
    for (size_t i = 0; i < groups_.size(); ++i) {
      read_from_group(ctx_, groups_[i], req_,
                      [self = shared_from_this(), i, parts, pending, error, mu](
                          std::optional<Error> e, RangeResponse&& part) {
                        {
                          std::lock_guard lock(*mu);
                          if (e && !*error) *error = std::move(e);
                          (*parts)[i] = std::move(part);
                        }
                        if (pending->fetch_sub(1) == 1) self->collected(*error, std::move(*parts));
                      });
    }
  }

 private:
  static constexpr int kMaxCollects = 50;

  static bool same(const RangeResponse& a, const RangeResponse& b) {
    if (a.count() != b.count() || a.more() != b.more() || a.kvs_size() != b.kvs_size()) {
      return false;
    }
    for (int i = 0; i < a.kvs_size(); ++i) {
      if (a.kvs(i).key() != b.kvs(i).key() || a.kvs(i).mod_revision() != b.kvs(i).mod_revision()) {
        return false;
      }
    }
    return true;
  }

  void collected(const std::optional<Error>& error, std::vector<RangeResponse>&& parts) {
    if (error) {
      done_(error);
      return;
    }
    if (++collects_ > 1) {
      bool stable = true;
      for (size_t i = 0; i < parts.size() && stable; ++i) stable = same(before_[i], parts[i]);
      if (stable) {
        *resp_ = kv::merge_ranges(req_, std::move(parts));
        done_(std::nullopt);
        return;
      }
      if (collects_ >= kMaxCollects) {
        done_(kv::errors::range_busy());
        return;
      }
    }
    before_ = std::move(parts);
    collect();
  }

  ServerContext& ctx_;
  const std::vector<uint32_t> groups_;
  const RangeRequest& req_;
  RangeResponse* resp_;
  Done done_;
  int collects_ = 0;  // only the last one's callback touches these
  std::vector<RangeResponse> before_;
};

void finish(ServerContext& ctx, grpc::ServerUnaryReactor* reactor,
            etcdserverpb::ResponseHeader* header, const std::optional<Error>& error) {
  if (error) {
    reactor->Finish(to_status(*error));
    return;
  }
  ctx.fill_header(header, header->revision());
  reactor->Finish(grpc::Status::OK);
}

// The cluster's compaction revision: the last one a Compaction asked for, recorded in the
// member's own group (each shard compacts at it or, having written nothing since, lower).
constexpr std::string_view kCompactedKey = "/synod/compacted";

// The revision a read of kCompactedKey found (0: never compacted).
int64_t compacted_in(const RangeResponse& r) {
  if (r.kvs().empty()) return 0;
  int64_t v = 0;
  const std::string& text = r.kvs(0).value();
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

int64_t cluster_compacted(ServerContext& ctx) {
  return ctx.node->read_store([](const kv::Store& s) -> int64_t {
    etcdserverpb::RangeRequest r;
    r.set_key(std::string(kCompactedKey));
    auto resp = s.range(r);
    return resp ? compacted_in(*resp) : 0;
  });
}

// Compacts every shard at the request's revision (or at its newest one, lower, if it wrote
// nothing since), through the members replicating each, and answers the call.
void compact_groups(ServerContext& ctx, grpc::ServerUnaryReactor* reactor,
                    const etcdserverpb::CompactionRequest* req,
                    etcdserverpb::CompactionResponse* resp, const kv::Caller& caller) {
  using Part = etcdserverpb::CompactionResponse;
  const std::vector<uint32_t> groups = every_group(*ctx.shards);
  auto gather = std::make_shared<Gather<Part>>(
      groups.size(), [&ctx, reactor, resp](std::optional<Error> error, std::vector<Part>&& parts) {
        int64_t revision = 0;
        for (const Part& p : parts) revision = std::max(revision, p.header().revision());
        resp->mutable_header()->set_revision(revision);
        finish(ctx, reactor, resp->mutable_header(), error);
      });
  for (uint32_t group : groups) {
    synodpb::Request request;
    *request.mutable_compaction() = *req;
    stamp(caller, &request);
    propose_to_group(ctx, group, std::move(request), [gather](const kv::ApplyResult& result) {
      const Error* e = result_error(result);
      const Part* part = e ? nullptr : result_as<Part>(result);
      gather->add(e ? std::optional<Error>(*e) : std::nullopt, part ? Part(*part) : Part());
    });
  }
}

// Runs `then` on the workers if `revision` is one the oracle handed out already, else answers
// the call with etcd's future-revision error (or no leader when the oracle cannot be reached).
void past_revision(ServerContext& ctx, grpc::ServerUnaryReactor* reactor, int64_t revision,
                   std::function<void()> then) {
  ctx.oracle->allocate(
      1, [&ctx, reactor, revision, then = std::move(then)](std::optional<int64_t> now) {
        if (!now) {
          reactor->Finish(to_status(kv::errors::no_leader()));
        } else if (revision >= *now) {
          reactor->Finish(to_status(kv::errors::future_revision()));
        } else {
          ctx.executor->post(then);  // off the thread that answered (a raft thread)
        }
      });
}

}  // namespace

void range(ServerContext& ctx, grpc::CallbackServerContext* call, grpc::ServerUnaryReactor* reactor,
           const RangeRequest* req, RangeResponse* resp, const kv::Caller& caller) {
  // Permissions live in the member's own group; the shards hold none.
  std::optional<Error> denied = ctx.node->read_store([&](const kv::Store& s) {
    return check_read(s.auth(), caller, req->key(), req->range_end());
  });
  if (denied) {
    reactor->Finish(to_status(*denied));
    return;
  }
  const std::vector<uint32_t> groups = groups_of(*ctx.shards, req->key(), req->range_end());
  if (groups.size() == 1 && ctx.shards->node(groups.front()) == nullptr) {
    auto method = [](auto* a, auto* c, auto* q, auto* r, auto cb) {
      a->Range(c, q, r, std::move(cb));
    };
    forward_to_group(ctx, groups.front(), call, reactor, req, resp, method);
    return;
  }
  const Clock::time_point start = Clock::now();
  auto gather = std::make_shared<Gather<RangeResponse>>(
      groups.size(), [&ctx, reactor, req, resp, start](std::optional<Error> error,
                                                       std::vector<RangeResponse>&& parts) {
        if (!error) *resp = kv::merge_ranges(*req, std::move(parts));
        ctx.node->metrics().read_latency.observe(
            std::chrono::duration<double>(Clock::now() - start).count());
        finish(ctx, reactor, resp->mutable_header(), error);
      });
  auto read_all = [&ctx, req, gather, groups] {
    for (uint32_t group : groups) {
      read_from_group(ctx, group, *req, [gather](std::optional<Error> e, RangeResponse&& part) {
        gather->add(std::move(e), std::move(part));
      });
    }
  };
  if (req->revision() <= 0 && (req->serializable() || groups.size() == 1)) {
    read_all();
    return;
  }
  if (req->revision() <= 0) {
    // Linearizable across shards: a snapshot by double collect (SnapshotRead).
    auto read = std::make_shared<SnapshotRead>(
        ctx, groups, *req, resp, [&ctx, reactor, resp, start](std::optional<Error> e) {
          ctx.node->metrics().read_latency.observe(
              std::chrono::duration<double>(Clock::now() - start).count());
          finish(ctx, reactor, resp->mutable_header(), e);
        });
    read->collect();
    return;
  }
  // A past revision: every shard read as of it. One the oracle has not handed out yet is in the
  // future; below it no shard can still write, so the reads are a snapshot. One below the
  // cluster's last compaction is gone, as in one store (a shard that wrote nothing since may
  // still hold it, but the history is the cluster's).
  // The record is read after a ReadIndex barrier on the member's own group: a compaction that
  // another member finished before this read began is seen here.
  auto record = std::make_shared<RangeRequest>();
  record->set_key(std::string(kCompactedKey));
  read_hosted_group(ctx, *ctx.node, *record,
                    [&ctx, reactor, record, revision = req->revision(), read_all](
                        std::optional<Error> e, RangeResponse&& r) {
                      if (e) {
                        reactor->Finish(to_status(*e));
                        return;
                      }
                      if (revision < compacted_in(r)) {
                        reactor->Finish(to_status(kv::errors::compacted()));
                        return;
                      }
                      past_revision(ctx, reactor, revision, read_all);
                    });
}

void put(ServerContext& ctx, grpc::CallbackServerContext* call, grpc::ServerUnaryReactor* reactor,
         const etcdserverpb::PutRequest* req, etcdserverpb::PutResponse* resp) {
  auto set_op = [req](synodpb::Request* r) { *r->mutable_put() = *req; };
  if (auto denied = check_write(ctx, *call, set_op)) {
    reactor->Finish(to_status(*denied));
    return;
  }
  auto method = [](auto* a, auto* c, auto* q, auto* r, auto cb) { a->Put(c, q, r, std::move(cb)); };
  to_one_group(ctx, ctx.shards->group_of(req->key()), call, reactor, req, resp, method, set_op);
}

void delete_range(ServerContext& ctx, grpc::CallbackServerContext* call,
                  grpc::ServerUnaryReactor* reactor, const etcdserverpb::DeleteRangeRequest* req,
                  etcdserverpb::DeleteRangeResponse* resp) {
  const std::vector<uint32_t> groups = groups_of(*ctx.shards, req->key(), req->range_end());
  auto set_op = [req](synodpb::Request* r) { *r->mutable_delete_range() = *req; };
  auto caller = caller_of(ctx, *call);
  if (!caller) {
    reactor->Finish(to_status(caller.error()));
    return;
  }
  if (auto denied = check_write(ctx, *caller, set_op)) {
    reactor->Finish(to_status(*denied));
    return;
  }
  if (groups.size() == 1) {
    auto method = [](auto* a, auto* c, auto* q, auto* r, auto cb) {
      a->DeleteRange(c, q, r, std::move(cb));
    };
    to_one_group(ctx, groups.front(), call, reactor, req, resp, method, set_op);
    return;
  }
  // Across shards: one transaction, so that no reader sees some shards' keys deleted and
  // others' not (each shard deletes at a revision of its own).
  etcdserverpb::TxnRequest one;
  *one.add_success()->mutable_request_delete_range() = *req;
  commit_across_shards(
      ctx, *caller, one,
      [&ctx, reactor, resp](const grpc::Status& status, etcdserverpb::TxnResponse&& answer) {
        if (!status.ok() || answer.responses_size() != 1 ||
            !answer.responses(0).has_response_delete_range()) {
          reactor->Finish(status.ok() ? grpc::Status(grpc::StatusCode::INTERNAL,
                                                     "etcdserver: unexpected result")
                                      : status);
          return;
        }
        *resp = std::move(*answer.mutable_responses(0)->mutable_response_delete_range());
        ctx.fill_header(resp->mutable_header(), answer.header().revision());
        reactor->Finish(grpc::Status::OK);
      });
}

void txn(ServerContext& ctx, grpc::CallbackServerContext* call, grpc::ServerUnaryReactor* reactor,
         const etcdserverpb::TxnRequest* req, etcdserverpb::TxnResponse* resp) {
  if (auto denied =
          check_write(ctx, *call, [req](synodpb::Request* r) { *r->mutable_txn() = *req; })) {
    reactor->Finish(to_status(*denied));
    return;
  }
  std::set<uint32_t> groups = txn_groups(*ctx.shards, *req);
  if (groups.size() <= 1) {
    // Within one shard (a txn with no keys at all goes to the first).
    auto method = [](auto* a, auto* c, auto* q, auto* r, auto cb) {
      a->Txn(c, q, r, std::move(cb));
    };
    to_one_group(ctx, groups.empty() ? 1 : *groups.begin(), call, reactor, req, resp, method,
                 [req](synodpb::Request* r) { *r->mutable_txn() = *req; });
    return;
  }
  commit_across_shards(ctx, *call, reactor, *req, resp);
}

void compact(ServerContext& ctx, grpc::CallbackServerContext* call,
             grpc::ServerUnaryReactor* reactor, const etcdserverpb::CompactionRequest* req,
             etcdserverpb::CompactionResponse* resp) {
  auto caller = caller_of(ctx, *call);
  if (!caller) {
    reactor->Finish(to_status(caller.error()));
    return;
  }
  // The cluster's history is compacted as one store's would be: a revision at or below the
  // last compaction is refused (here, as far as the groups hosted here tell, and by every
  // group for itself); each shard compacts at the revision, or at its own newest one if it has
  // written nothing since (its history below the revision is then all older).
  int64_t compacted = cluster_compacted(ctx);
  for (auto& [group, node] : ctx.shards->hosted()) {
    compacted = std::max(compacted,
                         node->read_store([](const kv::Store& s) { return s.compact_revision(); }));
  }
  if (req->revision() <= compacted) {
    reactor->Finish(to_status(kv::errors::compacted()));
    return;
  }
  auto compact_all = [&ctx, reactor, resp, req, caller = *caller] {
    // Recorded first: from then on reads below it are refused on every member, as they will be
    // once the shards compacted.
    synodpb::Request record;
    record.set_internal(true);  // the caller's permissions were checked as etcd checks them
    record.mutable_put()->set_key(std::string(kCompactedKey));
    record.mutable_put()->set_value(std::to_string(req->revision()));
    ctx.node->propose(std::move(record),
                      [&ctx, reactor, resp, req, caller](const kv::ApplyResult& recorded) {
                        if (const Error* e = result_error(recorded)) {
                          reactor->Finish(to_status(*e));
                          return;
                        }
                        compact_groups(ctx, reactor, req, resp, caller);
                      });
  };
  past_revision(ctx, reactor, req->revision(), std::move(compact_all));
}

namespace {

// A fenced write on a sharded cluster. The lock's waiters' keys lie in every shard, so the
// holder (the waiter with the lowest create revision) is found by a consistent read of the
// lock's prefix over every shard; then the write commits as one transaction whose first compare
// is that the holder's key still has the token as its create revision. Revisions are global
// and only grow, so no waiter below the holder can appear meanwhile: the holder's key still
// there at the commit means the token still holds the lock there, as the unsharded store's
// check at apply. A failed fence compare runs a branch that only reads the holder's key (no
// effect), and the check is made again to say why.
struct Fenced : std::enable_shared_from_this<Fenced> {
  using Answer = std::function<void(etcdserverpb::TxnResponse&&)>;
  Fenced(ServerContext& ctx, grpc::ServerUnaryReactor* reactor, kv::Caller caller, std::string lock,
         int64_t token, etcdserverpb::TxnRequest ops, Answer answer)
      : ctx(ctx),
        reactor(reactor),
        caller(std::move(caller)),
        lock(std::move(lock)),
        token(token),
        ops(std::move(ops)),
        answer(std::move(answer)) {
    waiters.set_key(this->lock + "/");
    waiters.set_range_end(this->lock + "0");  // '/' + 1
    waiters.set_keys_only(true);
  }

  void check() {
    if (++checks > 3) {  // a fence that held at the check and not at the commit, again and again
      reactor->Finish(to_status(kv::errors::range_busy()));
      return;
    }
    auto read = std::make_shared<SnapshotRead>(
        ctx, every_group(*ctx.shards), waiters, &found,
        [self = shared_from_this()](std::optional<Error> e) { self->checked(std::move(e)); });
    read->collect();
  }

  void checked(std::optional<Error> e) {
    if (e) {
      reactor->Finish(to_status(*e));
      return;
    }
    if (found.kvs().empty()) {
      reactor->Finish(to_status(kv::errors::lock_not_held(lock)));
      return;
    }
    const mvccpb::KeyValue* holder = &found.kvs(0);
    for (const mvccpb::KeyValue& kv : found.kvs()) {
      if (kv.create_revision() < holder->create_revision()) holder = &kv;
    }
    if (token != holder->create_revision()) {
      reactor->Finish(to_status(kv::errors::stale_token(token, holder->create_revision())));
      return;
    }
    etcdserverpb::TxnRequest txn;
    etcdserverpb::Compare* fence = txn.add_compare();
    fence->set_key(holder->key());
    fence->set_target(etcdserverpb::Compare::CREATE);
    fence->set_result(etcdserverpb::Compare::EQUAL);
    fence->set_create_revision(token);
    for (const etcdserverpb::Compare& c : ops.compare()) *txn.add_compare() = c;
    *txn.mutable_success() = ops.success();
    txn.add_failure()->mutable_request_range()->set_key(holder->key());
    commit_across_shards(
        ctx, caller, txn,
        [self = shared_from_this()](const grpc::Status& status, etcdserverpb::TxnResponse&& resp) {
          self->committed(status, std::move(resp));
        });
  }

  void committed(const grpc::Status& status, etcdserverpb::TxnResponse&& resp) {
    if (!status.ok()) {
      reactor->Finish(status);
      return;
    }
    if (resp.succeeded()) {
      answer(std::move(resp));
      return;
    }
    const etcdserverpb::RangeResponse& still = resp.responses(0).response_range();
    if (still.kvs_size() == 0 || still.kvs(0).create_revision() != token) {
      check();  // the fence did not hold: say why
      return;
    }
    // The fence held and one of the transaction's own compares did not: its (empty) failure.
    resp.clear_responses();
    answer(std::move(resp));
  }

  ServerContext& ctx;
  grpc::ServerUnaryReactor* reactor;
  const kv::Caller caller;
  const std::string lock;
  const int64_t token;
  const etcdserverpb::TxnRequest ops;
  const Answer answer;
  RangeRequest waiters;
  RangeResponse found;
  int checks = 0;
};

void fenced(ServerContext& ctx, grpc::CallbackServerContext* call,
            grpc::ServerUnaryReactor* reactor, const std::string& lock, int64_t token,
            etcdserverpb::TxnRequest ops, Fenced::Answer answer) {
  if (lock.empty()) {
    reactor->Finish(to_status(kv::errors::lock_name_missing()));
    return;
  }
  auto caller = caller_of(ctx, *call);
  if (!caller) {
    reactor->Finish(to_status(caller.error()));
    return;
  }
  if (auto denied =
          check_write(ctx, *caller, [&](synodpb::Request* r) { *r->mutable_txn() = ops; })) {
    reactor->Finish(to_status(*denied));
    return;
  }
  if (ops.failure_size() > 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "synod: a fenced transaction with a failure branch is not "
                                 "available on a sharded cluster"));
    return;
  }
  auto f = std::make_shared<Fenced>(ctx, reactor, std::move(*caller), lock, token, std::move(ops),
                                    std::move(answer));
  f->check();
}

}  // namespace

void fenced_put(ServerContext& ctx, grpc::CallbackServerContext* call,
                grpc::ServerUnaryReactor* reactor, const synodpb::FencedPutRequest* req,
                etcdserverpb::PutResponse* resp) {
  etcdserverpb::TxnRequest ops;
  *ops.add_success()->mutable_request_put() = req->put();
  fenced(ctx, call, reactor, req->lock(), req->token(), std::move(ops),
         [&ctx, reactor, resp](etcdserverpb::TxnResponse&& done) {
           if (done.responses_size() > 0) {
             *resp = std::move(*done.mutable_responses(0)->mutable_response_put());
           }
           ctx.fill_header(resp->mutable_header(), done.header().revision());
           reactor->Finish(grpc::Status::OK);
         });
}

void fenced_txn(ServerContext& ctx, grpc::CallbackServerContext* call,
                grpc::ServerUnaryReactor* reactor, const synodpb::FencedTxnRequest* req,
                etcdserverpb::TxnResponse* resp) {
  fenced(ctx, call, reactor, req->lock(), req->token(), req->txn(),
         [&ctx, reactor, resp](etcdserverpb::TxnResponse&& done) {
           *resp = std::move(done);
           ctx.fill_header(resp->mutable_header(), resp->header().revision());
           reactor->Finish(grpc::Status::OK);
         });
}

void cluster_revision(ServerContext& ctx, int64_t hosted, std::function<void(int64_t)> done) {
  std::vector<uint32_t> remote;
  for (uint32_t g = 1; g <= ctx.shards->count(); ++g) {
    if (ctx.shards->node(g) == nullptr) remote.push_back(g);
  }
  if (remote.empty()) {
    done(hosted);
    return;
  }
  auto probe = std::make_shared<RangeRequest>();  // one key, serializably: the revision only
  probe->set_key(std::string(1, '\0'));
  probe->set_count_only(true);
  probe->set_serializable(true);
  auto gather = std::make_shared<Gather<RangeResponse>>(
      remote.size(), [probe, hosted, done = std::move(done)](std::optional<Error>,
                                                             std::vector<RangeResponse>&& parts) {
        int64_t newest = hosted;  // a shard that could not be reached is left out
        for (const RangeResponse& r : parts) newest = std::max(newest, r.header().revision());
        done(newest);
      });
  for (uint32_t g : remote) {
    read_from_group(ctx, g, *probe, [gather](std::optional<Error> e, RangeResponse&& r) {
      gather->add(std::move(e), std::move(r));
    });
  }
}

void hash_kv(ServerContext& ctx, grpc::ServerUnaryReactor* reactor,
             const etcdserverpb::HashKVRequest* req, etcdserverpb::HashKVResponse* resp) {
  // The cluster's hash: every shard's, in shard order, each from a replica (here if this member
  // replicates it), so that every member answers the same one, as etcd's members do.
  auto compute = [&ctx, reactor, req, resp] {
    using Hash = std::pair<uint32_t, etcdserverpb::HashKVResponse>;
    auto gather = std::make_shared<Gather<Hash>>(
        ctx.shards->count(),
        [&ctx, reactor, resp](std::optional<Error> error, std::vector<Hash>&& hashes) {
          if (error) {
            reactor->Finish(to_status(*error));
            return;
          }
          std::sort(hashes.begin(), hashes.end(),
                    [](const Hash& a, const Hash& b) { return a.first < b.first; });
          uint32_t hash = 0;
          int64_t revision = 0;
          int64_t compacted = 0;
          for (const auto& [group, one] : hashes) {
            hash = hash * 16777619u ^ one.hash();
            revision = std::max(revision, one.header().revision());
            compacted = std::max(compacted, one.compact_revision());
          }
          resp->set_hash(hash);
          resp->set_compact_revision(compacted);
          ctx.fill_header(resp->mutable_header(), revision);
          reactor->Finish(grpc::Status::OK);
        });
    for (uint32_t g = 1; g <= ctx.shards->count(); ++g) {
      hash_group(ctx, g, req->revision(),
                 [gather, g](std::optional<Error> e, etcdserverpb::HashKVResponse&& h) {
                   gather->add(std::move(e), Hash(g, std::move(h)));
                 });
    }
  };
  if (req->revision() <= 0) {
    compute();
    return;
  }
  past_revision(ctx, reactor, req->revision(), std::move(compute));
}

}  // namespace synod::server::sharded
