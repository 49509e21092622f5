#include "server/cross_shard_txn.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <random>

#include "base/assert.h"
#include "kv/range.h"
#include "server/apply_result.h"
#include "server/auth.h"
#include "server/group_access.h"

namespace synod::server {

namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

// Prepares refused by a held key are tried again, under a new ID after a growing, jittered
// back-off, until this long has passed since the first attempt.
constexpr std::chrono::milliseconds kRetryFor{3000};
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
// branches went: the groups it went to, with its index in each one's part (a range meets every
// shard; its answers are merged).
struct Split {
  TxnRequest request;
  std::map<uint32_t, TxnRequest> parts;
  using Places = std::vector<std::pair<uint32_t, int>>;
  std::vector<Places> success;
  std::vector<Places> failure;
};

// The groups an op goes to, if it has the shape a part may hold (kv::Store's part_locks): no
// nested txn, no read at a past revision, no put that ignores its value or lease.
std::optional<std::vector<uint32_t>> op_groups(const Shards& shards, const RequestOp& op) {
  std::string_view key;
  std::string_view range_end;
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      if (op.request_range().revision() != 0) return std::nullopt;
      key = op.request_range().key();
      range_end = op.request_range().range_end();
      break;
    case RequestOp::kRequestPut:
      if (op.request_put().ignore_lease() || op.request_put().ignore_value()) return std::nullopt;
      key = op.request_put().key();
      break;
    case RequestOp::kRequestDeleteRange:
      key = op.request_delete_range().key();
      range_end = op.request_delete_range().range_end();
      break;
    default:
      return std::nullopt;
  }
  if (range_end.empty()) return std::vector<uint32_t>{shards.group_of(std::string(key))};
  std::vector<uint32_t> all;
  for (uint32_t g = 1; g <= shards.count(); ++g) all.push_back(g);
  return all;
}

std::optional<Split> split(const Shards& shards, const TxnRequest& req) {
  Split out;
  out.request = req;
  for (const etcdserverpb::Compare& c : req.compare()) {
    if (!c.range_end().empty()) return std::nullopt;
    *out.parts[shards.group_of(c.key())].add_compare() = c;
  }
  auto place = [&](const auto& ops, bool success, std::vector<Split::Places>& where) -> bool {
    for (const RequestOp& op : ops) {
      std::optional<std::vector<uint32_t>> groups = op_groups(shards, op);
      if (!groups) return false;
      Split::Places& at = where.emplace_back();
      for (uint32_t g : *groups) {
        TxnRequest& part = out.parts[g];
        auto* branch = success ? part.mutable_success() : part.mutable_failure();
        at.emplace_back(g, branch->size());
        *branch->Add() = op;
      }
    }
    return true;
  };
  if (!place(req.success(), true, out.success)) return std::nullopt;
  if (!place(req.failure(), false, out.failure)) return std::nullopt;
  return out;
}

// One op's answer from its parts' answers: a range's merged in the request's order with its
// limit, a delete's counts summed and previous values in key order.
etcdserverpb::ResponseOp merge_op(const RequestOp& op,
                                  std::vector<etcdserverpb::ResponseOp>&& parts) {
  if (parts.size() == 1) return std::move(parts[0]);
  etcdserverpb::ResponseOp out;
  if (op.request_case() == RequestOp::kRequestRange) {
    std::vector<etcdserverpb::RangeResponse> ranges;
    for (etcdserverpb::ResponseOp& p : parts)
      ranges.push_back(std::move(*p.mutable_response_range()));
    *out.mutable_response_range() = kv::merge_ranges(op.request_range(), std::move(ranges));
    return out;
  }
  etcdserverpb::DeleteRangeResponse* del = out.mutable_response_delete_range();
  for (etcdserverpb::ResponseOp& p : parts) {
    etcdserverpb::DeleteRangeResponse& d = *p.mutable_response_delete_range();
    del->set_deleted(del->deleted() + d.deleted());
    for (mvccpb::KeyValue& kv : *d.mutable_prev_kvs()) *del->add_prev_kvs() = std::move(kv);
  }
  std::sort(del->mutable_prev_kvs()->begin(), del->mutable_prev_kvs()->end(),
            [](const mvccpb::KeyValue& a, const mvccpb::KeyValue& b) { return a.key() < b.key(); });
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
// `commit_revision`: with commit, the revision every part writes at (0: each its group's own).
synodpb::Request decision_request(bool resolve, const std::string& txn, bool commit, bool succeeded,
                                  uint64_t epoch, int64_t commit_revision) {
  synodpb::Request r;
  r.set_cut_epoch(epoch);
  synodpb::TxnDecision* d = resolve ? r.mutable_txn_resolve() : r.mutable_txn_decide();
  d->set_txn(txn);
  d->set_commit(commit);
  d->set_succeeded(succeeded);
  d->set_at(wall_ms());
  if (commit) d->set_commit_revision(commit_revision);
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
  Coordinator(ServerContext& ctx, TxnDone done, Split split, kv::Caller caller)
      : ctx_(ctx),
        done_(std::move(done)),
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
    commit_revision_ = 0;
    all_stamped_ = true;
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
        // One revision for every part: the highest prepare's. Each part's keys are held since
        // its prepare, at or below it, and no other entry anywhere took that stamp.
        all_stamped_ = all_stamped_ && vote->revision > 0;
        commit_revision_ = std::max(commit_revision_, vote->revision);
      }
      SYNOD_ASSERT(pending_ > 0);
      if (--pending_ > 0) return;
      if (!all_stamped_) commit_revision_ = 0;
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
      d->set_commit_revision(commit_revision_);
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
    synodpb::Request r =
        decision_request(false, txn_, commit, commit && all_hold_, epoch_, commit_revision_);
    // The coordinator group holds the first part: the decision's entry carries it out too.
    r.mutable_txn_decide()->set_resolve_here(true);
    propose_step(
        ctx_, coordinator_, std::move(r), 0,
        [self = shared_from_this()](const kv::ApplyResult& result) { self->decided(result); });
  }

  void decided(const kv::ApplyResult& result) {
    const kv::TxnDecided* d = result.response<kv::TxnDecided>();
    if (d == nullptr) {
      // The decision's fate is unknown here; a resolver settles the parts with whatever stood.
      const Error* e = result_error(result);
      finish(to_status(e ? *e : kv::errors::timed_out()));
      return;
    }
    commit_ = d->commit;
    succeeded_ = d->succeeded;
    commit_revision_ = d->commit_revision;  // the decision that stood
    epoch_ = std::max(epoch_, result.cut_epoch);
    pending_ = split_.parts.size() - 1;
    responses_.clear();
    responses_[coordinator_] = d->response;  // its part, carried out with the decision
    resolve_error_.reset();
    if (pending_ == 0) return answer();
    for (auto& [group, part] : split_.parts) {
      if (group == coordinator_) continue;
      propose_step(ctx_, group,
                   decision_request(true, txn_, commit_, succeeded_, epoch_, commit_revision_), 0,
                   [self = shared_from_this(), group](const kv::ApplyResult& res) {
                     self->resolved(group, res);
                   });
    }
  }

  void resolved(uint32_t group, const kv::ApplyResult& result) {
    {
      std::lock_guard lock(mu_);
      // A forget of the decision is caused by every resolve: it carries their cuts' epochs.
      epoch_ = std::max(epoch_, result.cut_epoch);
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
    // Every part resolved: no participant can still ask for the decision, which can go.
    if (!resolve_error_) ctx_.shards->decision_done(coordinator_, txn_, epoch_);
    if (commit_) ctx_.shards->txn_counts().committed[three_phase_ ? 1 : 0].add();
    if (!commit_) {
      if (held_ && Clock::now() - first_attempt_ < kRetryFor) {
        // Another transaction held a key: back off a little and try again under a new ID.
        ++attempts_;
        thread_local std::minstd_rand jitter(std::random_device{}());
        const int ceiling = std::min(2 << std::min(attempts_, 5), 50);
        const auto backoff = std::chrono::milliseconds(1 + static_cast<int>(jitter() % ceiling));
        ctx_.executor->post_after(backoff, [self = shared_from_this()] { self->attempt(); });
        return;
      }
      ctx_.shards->txn_counts().aborted[three_phase_ ? 1 : 0].add();
      finish(to_status(held_ || !error_ ? kv::errors::transaction_aborted() : *error_));
      return;
    }
    if (resolve_error_) {
      // Committed, but a part's answers are not known here (its resolver finishes it).
      finish(to_status(*resolve_error_));
      return;
    }
    const auto& where = succeeded_ ? split_.success : split_.failure;
    const auto& ops = succeeded_ ? split_.request.success() : split_.request.failure();
    int64_t revision = commit_revision_;  // the transaction's one revision, if it has one
    if (revision == 0) {
      for (const auto& [group, response] : responses_) {
        revision = std::max(revision, response.header().revision());
      }
    }
    resp_.set_succeeded(succeeded_);
    for (size_t i = 0; i < where.size(); ++i) {
      std::vector<etcdserverpb::ResponseOp> parts;
      for (const auto& [group, index] : where[i]) {
        const TxnResponse& part = responses_[group];
        if (index >= part.responses_size()) {
          finish(grpc::Status(grpc::StatusCode::INTERNAL, "etcdserver: unexpected result"));
          return;
        }
        parts.push_back(part.responses(index));
      }
      *resp_.add_responses() = merge_op(ops[static_cast<int>(i)], std::move(parts));
    }
    ctx_.fill_header(resp_.mutable_header(), revision);
    finish(grpc::Status::OK);
  }

  ServerContext& ctx_;
  void finish(const grpc::Status& status) { done_(status, std::move(resp_)); }

  TxnDone done_;
  TxnResponse resp_;
  const Split split_;
  const kv::Caller caller_;
  const bool three_phase_;
  int attempts_ = 0;
  const Clock::time_point first_attempt_ = Clock::now();
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
  bool all_stamped_ = true;      // every vote so far carried its prepare's revision
  int64_t commit_revision_ = 0;  // the highest of them; then the decision's
  std::map<uint32_t, TxnResponse> responses_;
  std::optional<Error> resolve_error_;
};

}  // namespace

std::set<uint32_t> txn_groups(const Shards& shards, const TxnRequest& req) {
  std::set<uint32_t> out;
  add_txn_groups(shards, req, out);
  return out;
}

void commit_across_shards(ServerContext& ctx, const kv::Caller& caller, const TxnRequest& req,
                          TxnDone done) {
  std::optional<Split> parts = split(*ctx.shards, req);
  if (!parts) {
    done(to_status(kv::errors::cross_shard_txn_shape()), TxnResponse());
    return;
  }
  auto coordinator = std::make_shared<Coordinator>(ctx, std::move(done), std::move(*parts), caller);
  coordinator->attempt();
}

void commit_across_shards(ServerContext& ctx, const grpc::ServerContextBase& call,
                          grpc::ServerUnaryReactor* reactor, const TxnRequest& req,
                          TxnResponse* resp) {
  auto caller = caller_of(ctx, call);
  if (!caller) {
    reactor->Finish(to_status(caller.error()));
    return;
  }
  commit_across_shards(ctx, *caller, req,
                       [reactor, resp](const grpc::Status& status, TxnResponse&& answer) {
                         if (status.ok()) *resp = std::move(answer);
                         reactor->Finish(status);
                       });
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
      return s.holding() ? s.intents() : std::vector<synodpb::TxnIntent>();
    });
    for (const synodpb::TxnIntent& intent : intents) {
      if (now - intent.prepare().started_at() < stale_after_.count()) continue;
      settle(group, intent, epoch);
    }
    if (forget) forget_settled(*node, now);
  }
  forget_decisions();
}

// Decisions whose every part this member saw resolved go from their groups, a proposal per
// group (through a member that replicates it when this one does not).
void TxnResolver::forget_decisions() {
  constexpr size_t kPerProposal = 1000;
  for (auto& [group, done] : ctx_.shards->take_done_decisions()) {
    for (size_t i = 0; i < done.txns.size(); i += kPerProposal) {
      synodpb::Request r;
      r.set_cut_epoch(done.epoch);  // caused by the resolves: after any cut they were after
      for (size_t j = i; j < std::min(done.txns.size(), i + kPerProposal); ++j) {
        r.mutable_txn_forget()->add_decisions(std::move(done.txns[j]));
      }
      const size_t n = r.txn_forget().decisions_size();
      propose_to_group(ctx_, group, std::move(r), [&ctx = ctx_, n](const kv::ApplyResult& result) {
        if (result.ok()) ctx.shards->txn_counts().decisions_forgotten.add(n);
      });
    }
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
  propose_step(ctx_, coordinator,
               decision_request(false, txn, commit, commit && intent.succeeded(), epoch,
                                intent.commit_revision()),
               0, [this, group, txn, epoch](const kv::ApplyResult& result) {
                 const kv::TxnDecided* d = result.response<kv::TxnDecided>();
                 if (d == nullptr) {
                   std::lock_guard lock(mu_);
                   settling_.erase(txn);
                   return;
                 }
                 propose_step(
                     ctx_, group,
                     decision_request(true, txn, d->commit, d->succeeded,
                                      std::max(epoch, result.cut_epoch), d->commit_revision),
                     0, [this, txn](const kv::ApplyResult&) {
                       std::lock_guard lock(mu_);
                       settling_.erase(txn);
                     });
               });
}

}  // namespace synod::server
