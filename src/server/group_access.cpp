#include "server/group_access.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "server/apply_result.h"
#include "server/context.h"

namespace synod::server {

namespace {

using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;

// A call to another member's replica waits at most this long.
constexpr std::chrono::seconds kRemoteDeadline{5};

kv::Error unreachable() {
  return kv::errors::shard_unreachable();
}

kv::Error from_status(const grpc::Status& s) {
  // A member that could not be reached, or did not answer in time: like a group without a
  // leader, the caller may retry.
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return kv::Error{kv::kGrpcUnavailable,
                     "synod: a shard's replica could not be reached: " + s.error_message()};
  }
  return kv::Error{static_cast<int>(s.error_code()), s.error_message()};
}

std::vector<uint64_t> replicas_except_self(const ServerContext& ctx, uint32_t group) {
  std::vector<uint64_t> out;
  for (uint64_t m : ctx.shards->replicas(group)) {
    if (m != ctx.self_id) out.push_back(m);
  }
  return out;
}

// The members replicating `group` other than this one, starting at a different one each call,
// so that retries of a step go elsewhere when one member is down; members found unreachable
// lately come last.
std::vector<uint64_t> others(const ServerContext& ctx, uint32_t group) {
  static std::atomic<uint32_t> turn{0};
  std::vector<uint64_t> out = replicas_except_self(ctx, group);
  if (!out.empty()) std::rotate(out.begin(), out.begin() + turn++ % out.size(), out.end());
  return ctx.remote_groups->reachable_first(std::move(out));
}

// Calls `start` (a Peer stub's async method bound to its request) on the members in turn,
// from the first, until one answers. A member that could not be reached is noted
// (RemoteGroups::unreachable) and passed over for the next; so is one that answered
// Unavailable when `any_unavailable` (a read: asking again elsewhere changes nothing). `done`
// gets the last status and response.
template <typename Response, typename Start>
void ask_replicas(ServerContext& ctx, std::vector<uint64_t> members, size_t next,
                  bool any_unavailable, Start start,
                  std::function<void(const grpc::Status&, Response&&)> done) {
  for (; next < members.size(); ++next) {
    synodpb::Peer::Stub* stub = ctx.remote_groups->stub(members[next]);
    if (stub == nullptr) continue;
    struct Call {
      grpc::ClientContext context;
      Response response;
    };
    auto call = std::make_shared<Call>();
    call->context.set_deadline(std::chrono::system_clock::now() + kRemoteDeadline);
    start(stub, &call->context, &call->response,
          [&ctx, call, members = std::move(members), next, any_unavailable, start,
           done = std::move(done)](grpc::Status status) mutable {
            if (never_delivered(status)) ctx.remote_groups->unreachable(members[next]);
            const bool again =
                never_delivered(status) ||
                (any_unavailable && status.error_code() == grpc::StatusCode::UNAVAILABLE);
            if (again && next + 1 < members.size()) {
              ask_replicas<Response>(ctx, std::move(members), next + 1, any_unavailable,
                                     std::move(start), std::move(done));
              return;
            }
            done(status, std::move(call->response));
          });
    return;
  }
  done(grpc::Status(grpc::StatusCode::UNAVAILABLE, unreachable().message), Response());
}

// A read of `group` on another member's replica (peer RPC `rpc`, called as rpc(async stub,
// context, request, response, reaction)): an Unavailable answer passes on to the next replica.
template <typename Response, typename Request, typename Rpc>
void read_elsewhere(ServerContext& ctx, uint32_t group, std::shared_ptr<Request> request, Rpc rpc,
                    std::function<void(std::optional<kv::Error>, Response&&)> done) {
  ask_replicas<Response>(
      ctx, others(ctx, group), 0, true,
      [request, rpc](synodpb::Peer::Stub* stub, grpc::ClientContext* c, Response* response,
                     std::function<void(grpc::Status)> reaction) {
        rpc(stub->async(), c, request.get(), response, std::move(reaction));
      },
      [done = std::move(done)](const grpc::Status& status, Response&& response) {
        if (!status.ok()) {
          done(from_status(status), Response());
          return;
        }
        done(std::nullopt, std::move(response));
      });
}

}  // namespace

std::vector<uint64_t> replicas_elsewhere(const ServerContext& ctx, uint32_t group) {
  return ctx.remote_groups->reachable_first(replicas_except_self(ctx, group));
}

void RemoteGroups::unreachable(uint64_t member) {
  std::lock_guard lock(mu_);
  unreachable_[member] = std::chrono::steady_clock::now();
}

void RemoteGroups::probed(uint64_t member, bool answered) {
  std::lock_guard lock(mu_);
  if (answered) {
    silent_.erase(member);
  } else {
    silent_.insert(member);
  }
}

std::vector<uint64_t> RemoteGroups::reachable_first(std::vector<uint64_t> members) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  std::stable_partition(members.begin(), members.end(), [&](uint64_t m) {
    if (silent_.count(m) > 0) return false;
    auto it = unreachable_.find(m);
    return it == unreachable_.end() || now - it->second >= kAvoidFor;
  });
  return members;
}

synodpb::Peer::Stub* RemoteGroups::stub(uint64_t member) {
  std::optional<std::string> address = address_of_(member);
  if (!address) return nullptr;
  std::lock_guard lock(mu_);
  auto& slot = stubs_[*address];
  if (!slot) slot = synodpb::Peer::NewStub(grpc::CreateChannel(*address, credentials_));
  return slot.get();
}

void read_hosted_group(ServerContext& ctx, Node& node, const RangeRequest& req,
                       GroupRangeDone done) {
  auto read = [&node, &req, done] {
    RangeResponse part;
    std::optional<kv::Error> e = node.read_store([&](const kv::Store& s) {
      if (req.revision() <= s.revision()) return range_into(s, req, &part);
      // A revision past this shard's own: nothing here changed since its current one.
      RangeRequest current = req;
      current.set_revision(0);
      return range_into(s, current, &part);
    });
    done(std::move(e), std::move(part));
  };
  if (req.serializable()) {
    read();
    return;
  }
  node.read_barrier([&ctx, &node, &req, read, done](std::optional<kv::Error> e) {
    if (e) {
      done(std::move(e), RangeResponse());
      return;
    }
    // A past revision above the group's own: an entry stamped below it may still be on its way
    // (the leader stamps a proposal before the group commits it). An entry stamped now follows
    // every such one in the log, so once it applied here, so did they.
    if (ctx.shards == nullptr || req.revision() <= 0 ||
        req.revision() <= node.read_store([](const kv::Store& s) { return s.revision(); })) {
      ctx.executor->post(read);
      return;
    }
    node.propose(synodpb::Request(), [&ctx, read, done](const kv::ApplyResult& result) {
      // Refused as empty: the group's revision had passed the stamp, so the read's as well.
      const Error* error = result_error(result);
      if (error != nullptr && *error != kv::errors::empty_request()) {
        done(*error, RangeResponse());
        return;
      }
      ctx.executor->post(read);
    });
  });
}

void read_from_group(ServerContext& ctx, uint32_t group, const RangeRequest& req,
                     GroupRangeDone done) {
  if (Node* node = ctx.shards->node(group)) {
    read_hosted_group(ctx, *node, req, std::move(done));
    return;
  }
  auto request = std::make_shared<synodpb::GroupRangeRequest>();
  request->set_group(group);
  *request->mutable_range() = req;
  read_elsewhere<RangeResponse>(
      ctx, group, std::move(request),
      [](auto* a, auto* c, auto* q, auto* r, auto cb) { a->GroupRange(c, q, r, std::move(cb)); },
      std::move(done));
}

etcdserverpb::HashKVResponse hash_hosted_group(Node& node, int64_t revision,
                                               std::optional<kv::Error>* error) {
  const HashKvResult h = node.read_store([&](const kv::Store& s) {
    const int64_t at = revision <= 0 ? 0 : std::min(revision, s.revision());
    return store_hash_kv(s, at, error);
  });
  etcdserverpb::HashKVResponse out;
  out.set_hash(h.hash);
  out.set_compact_revision(h.compact_revision);
  out.mutable_header()->set_revision(h.revision);
  return out;
}

void hash_group(ServerContext& ctx, uint32_t group, int64_t revision, GroupHashDone done) {
  if (Node* node = ctx.shards->node(group)) {
    std::optional<kv::Error> error;
    etcdserverpb::HashKVResponse h = hash_hosted_group(*node, revision, &error);
    done(std::move(error), std::move(h));
    return;
  }
  auto request = std::make_shared<synodpb::GroupHashRequest>();
  request->set_group(group);
  request->set_revision(revision);
  read_elsewhere<etcdserverpb::HashKVResponse>(
      ctx, group, std::move(request),
      [](auto* a, auto* c, auto* q, auto* r, auto cb) { a->GroupHash(c, q, r, std::move(cb)); },
      std::move(done));
}

void propose_hosted(Node& node, synodpb::Request request, GroupProposeDone done) {
  if (request.has_compaction()) {
    // At the revision, or at this shard's newest if it wrote nothing since (its history below
    // the revision is then all older); nothing to do if compacted that far already.
    const int64_t revision = request.compaction().revision();
    const auto [current, done_at] = node.read_store(
        [](const kv::Store& s) { return std::make_pair(s.revision(), s.compact_revision()); });
    if (revision <= done_at) {
      done(failed(kv::errors::compacted()));
      return;
    }
    const int64_t at = std::min(revision, current);
    if (at <= done_at) {
      kv::ApplyResult r;
      etcdserverpb::CompactionResponse nothing;
      nothing.mutable_header()->set_revision(current);
      r.outcome = std::move(nothing);
      done(r);
      return;
    }
    request.mutable_compaction()->set_revision(at);
  }
  node.propose(std::move(request), std::move(done));
}

void propose_to_group(ServerContext& ctx, uint32_t group, synodpb::Request request,
                      GroupProposeDone done) {
  if (Node* node = ctx.shards->node(group)) {
    propose_hosted(*node, std::move(request), std::move(done));
    return;
  }
  auto propose = std::make_shared<synodpb::GroupProposeRequest>();
  propose->set_group(group);
  *propose->mutable_request() = std::move(request);
  ask_replicas<synodpb::GroupResult>(
      ctx, others(ctx, group), 0, false,
      [propose](synodpb::Peer::Stub* stub, grpc::ClientContext* c, synodpb::GroupResult* response,
                std::function<void(grpc::Status)> reaction) {
        stub->async()->GroupPropose(c, propose.get(), response, std::move(reaction));
      },
      [done = std::move(done)](const grpc::Status& status, synodpb::GroupResult&& response) {
        if (!status.ok()) {
          done(failed(from_status(status)));
          return;
        }
        done(from_group_result(response));
      });
}

bool proposable_to_group(const synodpb::Request& request) {
  switch (request.op_case()) {
    case synodpb::Request::kTxnPrepare:
    case synodpb::Request::kTxnPrecommit:
    case synodpb::Request::kTxnDecide:
    case synodpb::Request::kTxnResolve:
    case synodpb::Request::kDeleteRange:
    case synodpb::Request::kCompaction:
    case synodpb::Request::kCutMarker:
    case synodpb::Request::kTxnForget:
    case synodpb::Request::kLeaseGrant:
    case synodpb::Request::kLeaseRevoke:
      return true;
    default:
      return false;
  }
}

synodpb::GroupResult to_group_result(const kv::ApplyResult& result) {
  synodpb::GroupResult out;
  if (const kv::Error* e = result.error()) {
    out.set_error_code(e->grpc_code);
    out.set_error_message(e->message);
  } else if (const kv::TxnVote* v = result.response<kv::TxnVote>()) {
    out.mutable_vote()->set_prepared(v->prepared);
    out.mutable_vote()->set_compares_hold(v->compares_hold);
    out.mutable_vote()->set_reason(v->reason);
    out.mutable_vote()->set_revision(v->revision);
  } else if (const kv::TxnDecided* d = result.response<kv::TxnDecided>()) {
    out.mutable_decided()->set_commit(d->commit);
    out.mutable_decided()->set_succeeded(d->succeeded);
    *out.mutable_decided()->mutable_response() = d->response;
    out.mutable_decided()->set_commit_revision(d->commit_revision);
  } else if (const auto* dr = result.response<etcdserverpb::DeleteRangeResponse>()) {
    *out.mutable_delete_range() = *dr;
  } else if (const auto* c = result.response<etcdserverpb::CompactionResponse>()) {
    *out.mutable_compaction() = *c;
  } else if ((std::holds_alternative<std::monostate>(result.outcome) ||
              result.response<etcdserverpb::LeaseGrantResponse>() != nullptr ||
              result.response<etcdserverpb::LeaseRevokeResponse>() != nullptr) &&
             !result.skipped) {
    out.set_applied(true);  // a lease's copy in a data group: only that it applied
  } else {
    out.set_error_code(kv::kGrpcUnknown);
    out.set_error_message("etcdserver: unexpected result");
  }
  out.set_cut_epoch(result.cut_epoch);
  return out;
}

kv::ApplyResult from_group_result(const synodpb::GroupResult& r) {
  kv::ApplyResult out;
  out.cut_epoch = r.cut_epoch();
  if (r.error_code() != 0) {
    out.outcome = kv::Error{r.error_code(), r.error_message()};
    return out;
  }
  switch (r.result_case()) {
    case synodpb::GroupResult::kVote:
      out.outcome = kv::TxnVote{r.vote().prepared(), r.vote().compares_hold(), r.vote().reason(),
                                r.vote().revision()};
      break;
    case synodpb::GroupResult::kDecided:
      out.outcome = kv::TxnDecided{r.decided().commit(), r.decided().succeeded(),
                                   r.decided().response(), r.decided().commit_revision()};
      break;
    case synodpb::GroupResult::kDeleteRange:
      out.outcome = r.delete_range();
      break;
    case synodpb::GroupResult::kCompaction:
      out.outcome = r.compaction();
      break;
    case synodpb::GroupResult::kApplied:
      break;
    default:
      out.outcome = kv::Error{kv::kGrpcUnknown, "etcdserver: unexpected result"};
  }
  return out;
}

}  // namespace synod::server
