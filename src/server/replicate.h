// Proposing a request through Raft and answering the gRPC call with its applied result.
#pragma once

#include "server/apply_result.h"
#include "server/context.h"

namespace synod::server {

// Proposes `op`, stamped with the call's caller, to `node` (a replication group hosted here)
// and finishes `reactor` with the typed response once it is applied. With `then`, the
// successful answer waits: then(finish) runs first and calls finish() when done.
template <typename Response, typename Setter>
void replicate_on(ServerContext& ctx, Node& node, const grpc::ServerContextBase& call,
                  grpc::ServerUnaryReactor* reactor, Response* resp, Setter set_op,
                  std::function<void(std::function<void()> finish)> then = nullptr) {
  auto caller = caller_of(ctx, call);
  if (!caller) {
    reactor->Finish(to_status(caller.error()));
    return;
  }
  synodpb::Request request;
  set_op(&request);
  stamp(*caller, &request);
  if (request.ByteSizeLong() > ctx.config.raw.max_request_bytes) {
    reactor->Finish(to_status(kv::errors::request_too_large()));
    return;
  }
  const Clock::time_point start = Clock::now();
  node.propose(std::move(request), [&ctx, &node, reactor, resp, start,
                                    then = std::move(then)](const kv::ApplyResult& result) {
    node.metrics().write_latency.observe(
        std::chrono::duration<double>(Clock::now() - start).count());
    if (const Error* e = result_error(result)) {
      reactor->Finish(to_status(*e));
      return;
    }
    const Response* r = result_as<Response>(result);
    if (r == nullptr) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "etcdserver: unexpected result"));
      return;
    }
    *resp = *r;
    auto finish = [&ctx, &node, reactor, resp] {
      const int64_t revision = resp->header().revision();
      ctx.fill_header(resp->mutable_header(), revision, node.status().term.value);
      reactor->Finish(grpc::Status::OK);
    };
    if (then) {
      then(std::move(finish));
    } else {
      finish();
    }
  });
}

// The same on the member's own group (group 0).
template <typename Response, typename Setter>
void replicate(ServerContext& ctx, const grpc::ServerContextBase& call,
               grpc::ServerUnaryReactor* reactor, Response* resp, Setter set_op,
               std::function<void(std::function<void()> finish)> then = nullptr) {
  replicate_on(ctx, *ctx.node, call, reactor, resp, std::move(set_op), std::move(then));
}

}  // namespace synod::server
