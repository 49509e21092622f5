// Proposing a request through Raft and answering the gRPC call with its applied result.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>

#include "server/apply_result.h"
#include "server/context.h"

namespace synod::server {

namespace detail {

// How long a request that meets a key held by a cross-shard transaction keeps being proposed
// again (after a growing back-off) before the caller gets the refusal: a transaction holds its
// keys for a few round trips, and a resolver settles an abandoned one within seconds.
inline constexpr std::chrono::milliseconds kHeldWait{3000};

inline bool held_by_transaction(const Error& e) {
  return e == kv::errors::locked_by_transaction();
}

template <typename Response>
void propose_and_answer(ServerContext& ctx, Node& node, grpc::ServerUnaryReactor* reactor,
                        Response* resp, synodpb::Request request, Clock::time_point start,
                        int tries, std::function<void(std::function<void()> finish)> then) {
  synodpb::Request copy;
  if (ctx.shards != nullptr) copy = request;  // kept for a retry: only shards hold keys
  node.propose(std::move(request), [&ctx, &node, reactor, resp, start, tries,
                                    copy = std::move(copy),
                                    then = std::move(then)](const kv::ApplyResult& result) mutable {
    if (const Error* e = result_error(result)) {
      if (ctx.shards != nullptr && ctx.executor != nullptr && held_by_transaction(*e) &&
          Clock::now() - start < kHeldWait) {
        const auto backoff = std::chrono::milliseconds(std::min(2 << std::min(tries, 5), 50));
        ctx.executor->post_after(backoff, [&ctx, &node, reactor, resp, start, tries,
                                           copy = std::move(copy), then = std::move(then)] {
          propose_and_answer(ctx, node, reactor, resp, copy, start, tries + 1, then);
        });
        return;
      }
      node.metrics().write_latency.observe(
          std::chrono::duration<double>(Clock::now() - start).count());
      reactor->Finish(to_status(*e));
      return;
    }
    node.metrics().write_latency.observe(
        std::chrono::duration<double>(Clock::now() - start).count());
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

}  // namespace detail

// Proposes `op`, stamped with the call's caller, to `node` (a replication group hosted here)
// and finishes `reactor` with the typed response once it is applied. With `then`, the
// successful answer waits: then(finish) runs first and calls finish() when done. On a sharded
// member, a request refused because a cross-shard transaction holds one of its keys is
// proposed again for a few seconds (detail::kHeldWait) before the refusal is the answer.
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
  detail::propose_and_answer(ctx, node, reactor, resp, std::move(request), Clock::now(), 0,
                             std::move(then));
}

// The same on the member's own group (group 0).
template <typename Response, typename Setter>
void replicate(ServerContext& ctx, const grpc::ServerContextBase& call,
               grpc::ServerUnaryReactor* reactor, Response* resp, Setter set_op,
               std::function<void(std::function<void()> finish)> then = nullptr) {
  replicate_on(ctx, *ctx.node, call, reactor, resp, std::move(set_op), std::move(then));
}

}  // namespace synod::server
