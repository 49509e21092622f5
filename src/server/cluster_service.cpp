// etcdserverpb.Cluster: membership changes go through the leader (a follower forwards the call
// to the leader's client URL) as a member-table entry plus a Raft configuration change.
#include <spdlog/spdlog.h>

#include <chrono>
#include <random>

#include "server/apply_result.h"
#include "server/forward.h"
#include "server/services.h"

namespace synod::server {

namespace {

void fill_members(const ServerContext& ctx,
                  google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) {
  for (etcdserverpb::Member& m : ctx.members()) *out->Add() = std::move(m);
}

// Answers a membership call the way etcd does: the member list and a header without a revision.
template <typename Resp>
void finish_with_members(const ServerContext& ctx, grpc::ServerUnaryReactor* reactor, Resp* resp) {
  fill_members(ctx, resp->mutable_members());
  ctx.fill_header(resp->mutable_header(), 0);
  reactor->Finish(grpc::Status::OK);
}

// Proposes `change` and answers with the member list once it is applied.
template <typename Resp>
void change_and_answer(ServerContext& ctx, raft::ConfChange change,
                       grpc::ServerUnaryReactor* reactor, Resp* resp) {
  ctx.node->change_membership(change, [&ctx, reactor, resp](std::optional<Error> e) {
    if (e) {
      reactor->Finish(to_status(*e));
      return;
    }
    finish_with_members(ctx, reactor, resp);
  });
}

// Writes `member` into the replicated member table, then runs `then` once it is applied.
void put_member(ServerContext& ctx, synodpb::Member member, grpc::ServerUnaryReactor* reactor,
                std::function<void()> then) {
  synodpb::Request request;
  *request.mutable_member_put() = std::move(member);
  ctx.node->propose(std::move(request),
                    [reactor, then = std::move(then)](const kv::ApplyResult& result) {
                      if (const Error* e = result_error(result)) {
                        reactor->Finish(to_status(*e));
                        return;
                      }
                      then();
                    });
}

}  // namespace

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* c,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  finish_with_members(ctx_, reactor, resp);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::MemberAddRequest* req,
                                                    etcdserverpb::MemberAddResponse* resp) {
  if (auto e = check_admin(ctx_, *c)) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  auto call = [](auto* a, auto* c, auto* q, auto* r, auto cb) {
    a->MemberAdd(c, q, r, std::move(cb));
  };
  if (forward_unless_leader<etcdserverpb::Cluster>(ctx_, *c, reactor, req, resp, call))
    return reactor;
  std::vector<Url> urls;
  for (const std::string& u : req->peerurls()) {
    std::string error;
    auto url = parse_url(u, &error);
    if (!url) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, error));
      return reactor;
    }
    urls.push_back(*url);
  }
  for (const etcdserverpb::Member& m : ctx_.members()) {
    for (const std::string& existing : m.peerurls()) {
      for (const Url& u : urls) {
        if (u.str() == existing) {
          reactor->Finish(to_status(kv::errors::peer_urls_exist()));
          return reactor;
        }
      }
    }
  }
  // etcd derives an added member's id from its URLs and the time of the request, in seconds.
  const uint64_t id = added_member_id(urls, unix_now_s());
  synodpb::Member member;
  member.set_id(id);
  for (const std::string& u : req->peerurls()) member.add_peer_urls(u);
  member.set_is_learner(req->islearner());
  const bool learner = req->islearner();
  put_member(ctx_, member, reactor, [this, reactor, resp, id, learner, member] {
    raft::ConfChange change{
        learner ? raft::ConfChangeType::kAddLearner : raft::ConfChangeType::kAddVoter,
        raft::NodeId(id)};
    ctx_.node->change_membership(change, [this, reactor, resp, member](std::optional<Error> e) {
      if (e) {
        reactor->Finish(to_status(*e));
        return;
      }
      etcdserverpb::Member* added = resp->mutable_member();
      added->set_id(member.id());
      for (const std::string& u : member.peer_urls()) added->add_peerurls(u);
      added->set_islearner(member.is_learner());
      finish_with_members(ctx_, reactor, resp);
    });
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(grpc::CallbackServerContext* c,
                                                       const etcdserverpb::MemberRemoveRequest* req,
                                                       etcdserverpb::MemberRemoveResponse* resp) {
  if (auto e = check_admin(ctx_, *c)) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  auto call = [](auto* a, auto* c, auto* q, auto* r, auto cb) {
    a->MemberRemove(c, q, r, std::move(cb));
  };
  if (forward_unless_leader<etcdserverpb::Cluster>(ctx_, *c, reactor, req, resp, call))
    return reactor;
  if (!ctx_.node->status().conf.contains(raft::NodeId(req->id()))) {
    reactor->Finish(to_status(kv::errors::member_not_found()));
    return reactor;
  }
  change_and_answer(ctx_, {raft::ConfChangeType::kRemoveNode, raft::NodeId(req->id())}, reactor,
                    resp);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(grpc::CallbackServerContext* c,
                                                       const etcdserverpb::MemberUpdateRequest* req,
                                                       etcdserverpb::MemberUpdateResponse* resp) {
  if (auto e = check_admin(ctx_, *c)) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  std::optional<synodpb::Member> record =
      ctx_.node->read_store([&](const kv::Store& s) -> std::optional<synodpb::Member> {
        for (const synodpb::Member& m : store_members(s)) {
          if (m.id() == req->id()) return m;
        }
        return std::nullopt;
      });
  if (!record && !ctx_.node->status().conf.contains(raft::NodeId(req->id()))) {
    reactor->Finish(to_status(kv::errors::member_not_found()));
    return reactor;
  }
  synodpb::Member member = record.value_or(synodpb::Member());
  member.set_id(req->id());
  member.clear_peer_urls();
  for (const std::string& u : req->peerurls()) member.add_peer_urls(u);
  put_member(ctx_, member, reactor,
             [this, reactor, resp] { finish_with_members(ctx_, reactor, resp); });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* c, const etcdserverpb::MemberPromoteRequest* req,
    etcdserverpb::MemberPromoteResponse* resp) {
  if (auto e = check_admin(ctx_, *c)) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  auto call = [](auto* a, auto* c, auto* q, auto* r, auto cb) {
    a->MemberPromote(c, q, r, std::move(cb));
  };
  if (forward_unless_leader<etcdserverpb::Cluster>(ctx_, *c, reactor, req, resp, call))
    return reactor;
  const raft::ConfState conf = ctx_.node->status().conf;
  if (!conf.contains(raft::NodeId(req->id()))) {
    reactor->Finish(to_status(kv::errors::member_not_found()));
    return reactor;
  }
  if (!conf.is_learner(raft::NodeId(req->id()))) {
    reactor->Finish(to_status(kv::errors::not_a_learner()));
    return reactor;
  }
  change_and_answer(ctx_, {raft::ConfChangeType::kAddVoter, raft::NodeId(req->id())}, reactor,
                    resp);
  return reactor;
}

}  // namespace synod::server
