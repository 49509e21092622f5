// Forwarding a unary call to the leader's client URL (etcd forwards membership changes and
// lease renewals to the leader the same way), for any etcdserverpb service.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "server/context.h"

namespace synod::server {

// Calls `method` (e.g. a lambda over Service::Stub::async_interface) on the member whose client
// address ("host:port") is `address` and hands `then` its status; the answer in `resp` then has
// a header naming this member (as etcd's does: the member the client asked). The caller's auth
// token goes along (tokens are known to every member).
template <typename Service, typename Req, typename Resp, typename Method>
void forward_then(ServerContext& ctx, const std::string& address,
                  const grpc::ServerContextBase& incoming, const Req* req, Resp* resp,
                  Method method, std::function<void(const grpc::Status&)> then) {
  auto channel = grpc::CreateChannel(address, ctx.client_channel_credentials);
  auto stub = std::shared_ptr<typename Service::Stub>(Service::NewStub(channel));
  auto client = std::make_shared<grpc::ClientContext>();
  auto token = incoming.client_metadata().find("token");
  if (token != incoming.client_metadata().end()) {
    client->AddMetadata("token", std::string(token->second.data(), token->second.size()));
  }
  client->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  method(stub->async(), client.get(), req, resp,
         [&ctx, stub, client, resp, then = std::move(then)](grpc::Status s) {
           if constexpr (requires { resp->mutable_header(); }) {
             if (s.ok() && resp->has_header()) {
               ctx.fill_header(resp->mutable_header(), resp->header().revision());
             }
           }
           then(s);
         });
}

// forward_then, finishing `reactor` with the answer.
template <typename Service, typename Req, typename Resp, typename Method>
void forward_to(ServerContext& ctx, const std::string& address,
                const grpc::ServerContextBase& incoming, grpc::ServerUnaryReactor* reactor,
                const Req* req, Resp* resp, Method method) {
  forward_then<Service>(ctx, address, incoming, req, resp, method,
                        [reactor](const grpc::Status& s) { reactor->Finish(s); });
}

// Forwards the call to the leader (forward_to). Returns false if no leader is known.
template <typename Service, typename Req, typename Resp, typename Method>
bool forward_to_leader(ServerContext& ctx, const grpc::ServerContextBase& incoming,
                       grpc::ServerUnaryReactor* reactor, const Req* req, Resp* resp,
                       Method method) {
  std::optional<std::string> leader = ctx.leader_client_address();
  if (!leader) return false;
  forward_to<Service>(ctx, *leader, incoming, reactor, req, resp, method);
  return true;
}

// On a follower, forwards the call to the leader, or answers "no leader" when none is known.
// Returns true when the call was handled that way (this member is not the leader).
template <typename Service, typename Req, typename Resp, typename Method>
bool forward_unless_leader(ServerContext& ctx, const grpc::ServerContextBase& incoming,
                           grpc::ServerUnaryReactor* reactor, const Req* req, Resp* resp,
                           Method method) {
  if (ctx.node->status().role == raft::Role::kLeader) return false;
  if (!forward_to_leader<Service>(ctx, incoming, reactor, req, resp, method)) {
    reactor->Finish(to_status(kv::errors::no_leader()));
  }
  return true;
}

}  // namespace synod::server
