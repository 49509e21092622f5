#include "server/cross_shard_txn.h"

#include <spdlog/spdlog.h>

#include <map>
#include <random>

#include "base/assert.h"
#include "server/apply_result.h"
#include "server/auth.h"
#include "server/group_access.h"

namespace synod::server {

namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

constexpr int kMaxAttempts = 5;     // prepares refused by a held key: tries before giving up
constexpr int kMaxStepRetries = 3;  // a decide or resolve that timed out: proposed again

void add_range_groups(const Shards& shards, const std::string& key, const std::string& range_end,
                      std::set<uint32_t>& out) {
  if (!range_end.empty()) {
    for (uint32_t g = 1; g <= shards.count(); ++g) out.insert(g);
    return;
  }
  out.insert(shards.group_of(key));
}

void add_txn_groups(const Shards& shards, const TxnRequest& t, std::set<uint32_t>& out) {
  for (const etcdserverpb::Compare& c : t.compare()) {
    add_range_groups(shards, c.key(), c.range_end(), out);
  }
  for (const auto* branch : {&t.success(), &t.failure()}) {
    for (const RequestOp& op : *branch) {
      switch (op.request_case()) {
        case RequestOp::kRequestRange:
          add_range_groups(shards, op.request_range().key(), op.request_range().range_end(), out);
          break;
        case RequestOp::kRequestPut:
          out.insert(shards.group_of(op.request_put().key()));
          break;
        case RequestOp::kRequestDeleteRange:
          add_range_groups(shards, op.request_delete_range().key(),
                           op.request_delete_range().range_end(), out);
          break;
        case RequestOp::kRequestTxn:
          add_txn_groups(shards, op.request_txn(), out);
          break;
        default:
          break;
      }
    }
  }
}

// A request split by shard: each part's compares and ops, and where each op of the request's
// branches went (its group and its index in that part's branch).
struct Split {
  std::map<uint32_t, TxnRequest> parts;
  std::vector<std::pair<uint32_t, int>> success;
  std::vector<std::pair<uint32_t, int>> failure;
};

// The op's single key, if it names one in the shape a part may hold.
std::optional<std::string> single_key(const RequestOp& op) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      if (!op.request_range().range_end().empty() || op.request_range().revision() != 0) break;
      return op.request_range().key();
    case RequestOp::kRequestPut:
      if (op.request_put().lease() != 0 || op.request_put().ignore_lease() ||
          op.request_put().ignore_value()) {
        break;
      }
      return op.request_put().key();
    case RequestOp::kRequestDeleteRange:
      if (!op.request_delete_range().range_end().empty()) break;
      return op.request_delete_range().key();
    default:
      break;
  }
  return std::nullopt;
}

std::optional<Split> split(const Shards& shards, const TxnRequest& req) {
  Split out;
  for (const etcdserverpb::Compare& c : req.compare()) {
    if (!c.range_end().empty()) return std::nullopt;
    *out.parts[shards.group_of(c.key())].add_compare() = c;
  }
  auto place = [&](const auto& ops, bool success,
                   std::vector<std::pair<uint32_t, int>>& where) -> bool {
    for (const RequestOp& op : ops) {
      std::optional<std::string> key = single_key(op);
      if (!key) return false;
      const uint32_t g = shards.group_of(*key);
      TxnRequest& part = out.parts[g];
      auto* branch = success ? part.mutable_success() : part.mutable_failure();
      where.emplace_back(g, branch->size());
      *branch->Add() = op;
    }
    return true;
  };
  if (!place(req.success(), true, out.success)) return std::nullopt;
  if (!place(req.failure(), false, out.failure)) return std::nullopt;
  return out;
}

std::string new_txn_id(uint64_t member) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t boot = std::random_device{}();
  return std::to_string(member) + "." + std::to_string(boot) + "." +
         std::to_string(counter.fetch_add(1) + 1);
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `epoch`: the newest cut the step's causes passed through (kv::Store::apply records it first).
synodpb::Request decision_request(bool resolve, const std::string& txn, bool commit, bool succeeded,
                                  uint64_t epoch) {
  synodpb::Request r;
  r.set_cut_epoch(epoch);
  synodpb::TxnDecision* d = resolve ? r.mutable_txn_resolve() : r.mutable_txn_decide();
  d->set_txn(txn);
  d->set_commit(commit);
  d->set_succeeded(succeeded);
  d->set_at(wall_ms());
  return r;
}

// Proposes `request` to `group` (here or through a member that replicates it), again up to
// kMaxStepRetries times while it times out or finds no leader (the step is idempotent), and
// hands the last result to `done`.
void propose_step(ServerContext& ctx, uint32_t group, synodpb::Request request, int tries,
                  std::function<void(const kv::ApplyResult&)> done) {
  synodpb::Request copy = request;
  propose_to_group(
      ctx, group, std::move(copy),
      [&ctx, group, request = std::move(request), tries,
       done = std::move(done)](const kv::ApplyResult& result) mutable {
        const Error* e = result_error(result);
        if (e != nullptr && e->grpc_code == kv::kGrpcUnavailable && tries + 1 < kMaxStepRetries) {
          propose_step(ctx, group, std::move(request), tries + 1, std::move(done));
          return;
        }
        done(result);
      });
}

// One cross-shard transaction in flight at its coordinator, across attempts.
class Coordinator : public std::enable_shared_from_this<Coordinator> {
 public:
  Coordinator(ServerContext& ctx, grpc::ServerUnaryReactor* reactor, TxnResponse* resp, Split split,
              kv::Caller caller)
      : ctx_(ctx),
        reactor_(reactor),
        resp_(resp),
        split_(std::move(split)),
        caller_(std::move(caller)),
        three_phase_(ctx.config.raw.commit_protocol == "3pc") {}

  void attempt() {
    txn_ = new_txn_id(ctx_.self_id);
    coordinator_ = split_.parts.begin()->first;
    pending_ = split_.parts.size();
    all_prepared_ = true;
    all_hold_ = true;
    held_ = false;
    const int64_t started = wall_ms();
    const uint64_t epoch = epoch_;  // the answers below may raise epoch_ while this loop runs
    for (auto& [group, part] : split_.parts) {
      synodpb::Request r;
      synodpb::TxnPrepare* p = r.mutable_txn_prepare();
      p->set_txn(txn_);
      p->set_coordinator(coordinator_);
      *p->mutable_part() = part;
      p->set_started_at(started);
      r.set_cut_epoch(epoch);
      stamp(caller_, &r);
      propose_to_group(
          ctx_, group, std::move(r),
          [self = shared_from_this()](const kv::ApplyResult& res) { self->voted(res); });
    }
  }

 private:
  void voted(const kv::ApplyResult& result) {
    {
      std::lock_guard lock(mu_);
      epoch_ = std::max(epoch_, result.cut_epoch);
      const kv::TxnVote* vote = result.response<kv::TxnVote>();
      if (vote == nullptr || !vote->prepared) {
        all_prepared_ = false;
        if (vote != nullptr) held_ = true;
        if (const Error* e = result_error(result); e != nullptr && !error_) error_ = *e;
      } else {
        all_hold_ = all_hold_ && vote->compares_hold;
      }
      SYNOD_ASSERT(pending_ > 0);
      if (--pending_ > 0) return;
    }
    if (all_prepared_ && three_phase_) return precommit();
    decide();
  }

  // Three-phase commit: every part voted yes; each records that the transaction commits (and
  // which branch) before the decision, so that a resolver meeting any of them commits it.
  void precommit() {
    pending_ = split_.parts.size();
    const uint64_t epoch = epoch_;  // the answers below may raise epoch_ while this loop runs
    for (auto& [group, part] : split_.parts) {
      synodpb::Request r;
      synodpb::TxnDecision* d = r.mutable_txn_precommit();
      d->set_txn(txn_);
      d->set_commit(true);
      d->set_succeeded(all_hold_);
      r.set_cut_epoch(epoch);
      propose_step(ctx_, group, std::move(r), 0,
                   [self = shared_from_this()](const kv::ApplyResult& result) {
                     // Whatever it answered: the decision that stands in the coordinator group
                     // is what every part carries out (a part a resolver aborted first makes
                     // that decision abort). Skeen's coordinator, its precommits sent, commits.
                     {
                       std::lock_guard lock(self->mu_);
                       self->epoch_ = std::max(self->epoch_, result.cut_epoch);
                       SYNOD_ASSERT(self->pending_ > 0);
                       if (--self->pending_ > 0) return;
                     }
                     self->decide();
                   });
    }
  }

  void decide() {
    const bool commit = all_prepared_;
    propose_step(
        ctx_, coordinator_, decision_request(false, txn_, commit, commit && all_hold_, epoch_), 0,
        [self = shared_from_this()](const kv::ApplyResult& result) { self->decided(result); });
  }

  void decided(const kv::ApplyResult& result) {
    const kv::TxnDecided* d = result.response<kv::TxnDecided>();
    if (d == nullptr) {
      // The decision's fate is unknown here; a resolver settles the parts with whatever stood.
      const Error* e = result_error(result);
      reactor_->Finish(to_status(e ? *e : kv::errors::timed_out()));
      return;
    }
    commit_ = d->commit;
    succeeded_ = d->succeeded;
    epoch_ = std::max(epoch_, result.cut_epoch);
    pending_ = split_.parts.size();
    responses_.clear();
    for (auto& [group, part] : split_.parts) {
      propose_step(ctx_, group, decision_request(true, txn_, commit_, succeeded_, epoch_), 0,
                   [self = shared_from_this(), group](const kv::ApplyResult& res) {
                     self->resolved(group, res);
                   });
    }
  }

  void resolved(uint32_t group, const kv::ApplyResult& result) {
    {
      std::lock_guard lock(mu_);
      if (const kv::TxnDecided* d = result.response<kv::TxnDecided>()) {
        responses_[group] = d->response;
      } else if (const Error* e = result_error(result); e != nullptr && !resolve_error_) {
        resolve_error_ = *e;
      }
      SYNOD_ASSERT(pending_ > 0);
      if (--pending_ > 0) return;
    }
    answer();
  }

  void answer() {
    if (commit_) ctx_.shards->txn_counts().committed[three_phase_ ? 1 : 0].add();
    if (!commit_) {
      if (held_ && ++attempts_ < kMaxAttempts) {
        // Another transaction held a key: back off a little and try again under a new ID.
        ctx_.executor->post([self = shared_from_this()] {
          std::this_thread::sleep_for(std::chrono::milliseconds(1 + (self->attempts_ * 7) % 20));
          self->attempt();
        });
        return;
      }
      ctx_.shards->txn_counts().aborted[three_phase_ ? 1 : 0].add();
      reactor_->Finish(to_status(held_ || !error_ ? kv::errors::transaction_aborted() : *error_));
      return;
    }
    if (resolve_error_) {
      // Committed, but a part's answers are not known here (its resolver finishes it).
      reactor_->Finish(to_status(*resolve_error_));
      return;
    }
    const auto& where = succeeded_ ? split_.success : split_.failure;
    int64_t revision = 0;
    for (const auto& [group, response] : responses_) {
      revision = std::max(revision, response.header().revision());
    }
    resp_->set_succeeded(succeeded_);
    for (const auto& [group, index] : where) {
      const TxnResponse& part = responses_[group];
      if (index >= part.responses_size()) {
        reactor_->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "etcdserver: unexpected result"));
        return;
      }
      *resp_->add_responses() = part.responses(index);
    }
    ctx_.fill_header(resp_->mutable_header(), revision);
    reactor_->Finish(grpc::Status::OK);
  }

  ServerContext& ctx_;
  grpc::ServerUnaryReactor* reactor_;
  TxnResponse* resp_;
  const Split split_;
  const kv::Caller caller_;
  const bool three_phase_;
  int attempts_ = 0;
  std::string txn_;
  uint32_t coordinator_ = 0;
  std::mutex mu_;
  size_t pending_ = 0;
  bool all_prepared_ = true;
  bool all_hold_ = true;
  bool held_ = false;  // a part voted no (a key held by another transaction)
  // The newest cut the groups that answered had recorded: every later step carries it, so a
  // group that has not recorded that cut records it before the step (docs/sharding.md).
  uint64_t epoch_ = 0;
  std::optional<Error> error_;
  bool commit_ = false;
  bool succeeded_ = false;
  std::map<uint32_t, TxnResponse> responses_;
  std::optional<Error> resolve_error_;
};

}  // namespace

std::set<uint32_t> txn_groups(const Shards& shards, const TxnRequest& req) {
  std::set<uint32_t> out;
  add_txn_groups(shards, req, out);
  return out;
}

void commit_across_shards(ServerContext& ctx, const grpc::ServerContextBase& call,
                          grpc::ServerUnaryReactor* reactor, const TxnRequest& req,
                          TxnResponse* resp) {
  std::optional<Split> parts = split(*ctx.shards, req);
  if (!parts) {
    reactor->Finish(to_status(kv::errors::cross_shard_txn_shape()));
    return;
  }
  auto caller = caller_of(ctx, call);
  if (!caller) {
    reactor->Finish(to_status(caller.error()));
    return;
  }
  auto coordinator = std::make_shared<Coordinator>(ctx, reactor, resp, std::move(*parts), *caller);
  coordinator->attempt();
}

// ---------------------------------------------------------------------------------------------

TxnResolver::TxnResolver(ServerContext& ctx, std::chrono::milliseconds interval,
                         std::chrono::milliseconds stale_after)
    : ctx_(ctx), interval_(interval), stale_after_(stale_after), thread_([this] { run(); }) {}

TxnResolver::~TxnResolver() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TxnResolver::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval_, [&] { return stopping_; })) {
    lock.unlock();
    sweep();
    lock.lock();
  }
}

void TxnResolver::sweep() {
  if (ctx_.shards == nullptr) return;
  const int64_t now = wall_ms();
  // Old records are looked for about once a minute (a scan of the records' tables).
  const bool forget = ++sweeps_ % 120 == 0;
  for (auto& [group, node] : ctx_.shards->hosted()) {
    if (node->status().role != raft::Role::kLeader) continue;
    uint64_t epoch = 0;
    std::vector<synodpb::TxnIntent> intents = node->read_store([&epoch](const kv::Store& s) {
      epoch = s.cut_epoch();
      return s.locks().empty() ? std::vector<synodpb::TxnIntent>() : s.intents();
    });
    for (const synodpb::TxnIntent& intent : intents) {
      if (now - intent.prepare().started_at() < stale_after_.count()) continue;
      settle(group, intent, epoch);
    }
    if (forget) forget_settled(*node, now);
  }
}

// Records of transactions settled long ago go: no step of theirs can still be under way (each is
// retried for seconds at most), and a prepare arriving after its record went would be aborted
// and released by the resolver, with nothing written.
void TxnResolver::forget_settled(Node& node, int64_t now) {
  constexpr int64_t kForgetAfterMs = 10 * 60 * 1000;
  constexpr size_t kPerProposal = 1000;
  std::vector<std::string> txns = node.read_store(
      [&](const kv::Store& s) { return s.settled_txns(now - kForgetAfterMs, kPerProposal); });
  if (txns.empty()) return;
  synodpb::Request r;
  for (std::string& t : txns) r.mutable_txn_forget()->add_txns(std::move(t));
  node.propose(std::move(r), [](const kv::ApplyResult&) {});
}

void TxnResolver::settle(uint32_t group, const synodpb::TxnIntent& intent, uint64_t epoch) {
  const std::string txn = intent.prepare().txn();
  const uint32_t coordinator = intent.prepare().coordinator();
  if (coordinator == 0 || coordinator > ctx_.shards->count()) return;  // never decided
  {
    std::lock_guard lock(mu_);
    if (!settling_.insert(txn).second) return;
  }
  // Abort unless a decision already stood, or the part is precommitted (three-phase commit:
  // every participant voted yes, so commit); the one that stands is what every part carries out.
  const bool commit = intent.precommitted();
  ctx_.shards->txn_counts().settled.add();
  spdlog::info("txn resolver: settling transaction {} left {} in group {}", txn,
               commit ? "precommitted" : "prepared", group);
  propose_step(
      ctx_, coordinator, decision_request(false, txn, commit, commit && intent.succeeded(), epoch),
      0, [this, group, txn, epoch](const kv::ApplyResult& result) {
        const kv::TxnDecided* d = result.response<kv::TxnDecided>();
        if (d == nullptr) {
          std::lock_guard lock(mu_);
          settling_.erase(txn);
          return;
        }
        propose_step(
            ctx_, group,
            decision_request(true, txn, d->commit, d->succeeded, std::max(epoch, result.cut_epoch)),
            0, [this, txn](const kv::ApplyResult&) {
              std::lock_guard lock(mu_);
              settling_.erase(txn);
            });
      });
}

}  // namespace synod::server
