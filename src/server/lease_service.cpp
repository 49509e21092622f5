// etcdserverpb.Lease with etcd 3.4's behavior (etcdserver/api/v3rpc/lease.go, lease/lessor.go).
#include <spdlog/spdlog.h>

#include <random>

#include "server/bidi_stream.h"
#include "server/forward.h"
#include "server/replicate.h"
#include "server/services.h"
#include "server/sharded_leases.h"

namespace synod::server {

namespace {

// Sharded: a lease change is answered once copied to the data groups (sharded_leases.h).
template <typename Setter>
std::function<void(std::function<void()>)> copy_to_shards_of(ServerContext& ctx, Setter set_op) {
  if (ctx.shards == nullptr) return nullptr;
  synodpb::Request op;
  set_op(&op);
  return
      [&ctx, op](std::function<void()> finish) { copy_lease_change(ctx, op, std::move(finish)); };
}

}  // namespace

namespace {

// A server-chosen lease ID: positive and random, so IDs chosen on different members (or
// before and after a restart) do not collide in practice; a collision is refused by the
// state machine ("lease already exists"), never merged.
int64_t new_lease_id() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  for (;;) {
    const int64_t id = static_cast<int64_t>(gen() & 0x7fffffffffffffffULL);
    if (id != 0) return id;
  }
}

// Renews one lease on the leader through a short keep-alive stream (the follower's client
// stays on its own stream). Blocking: runs on the executor.
std::optional<etcdserverpb::LeaseKeepAliveResponse> renew_on_leader(
    const std::string& leader, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    int64_t id) {
  auto stub = etcdserverpb::Lease::NewStub(grpc::CreateChannel(leader, credentials));
  grpc::ClientContext client;
  client.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto stream = stub->LeaseKeepAlive(&client);
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(id);
  etcdserverpb::LeaseKeepAliveResponse resp;
  const bool ok = stream->Write(req) && stream->Read(&resp);
  stream->WritesDone();
  client.TryCancel();
  stream->Finish().ok();
  if (!ok) return std::nullopt;
  return resp;
}

class KeepAliveStream final
    : public BidiStream<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse> {
 public:
  explicit KeepAliveStream(ServerContext& ctx) : ctx_(ctx) {}

 private:
  void on_request(etcdserverpb::LeaseKeepAliveRequest& request) override {
    const int64_t id = request.id();
    auto self = this->self();
    if (!self) return;
    hold();
    ctx_.node->lease_keepalive(id, [this, self, id](int64_t ttl) {
      if (ttl == Node::kNoQuorum) {
        end(to_status(kv::errors::no_leader()));
        return;
      }
      if (ttl != Node::kNotLeader) {
        answer(id, ttl);
        return;
      }
      std::optional<std::string> leader = ctx_.leader_client_address();
      if (!leader) {
        end(to_status(kv::errors::no_leader()));
        return;
      }
      ctx_.executor->post([this, self, id, leader = *leader] {
        std::optional<etcdserverpb::LeaseKeepAliveResponse> r =
            renew_on_leader(leader, ctx_.client_channel_credentials, id);
        if (!r) {
          end(to_status(kv::errors::no_leader()));
          return;
        }
        answer(id, r->ttl());
      });
    });
  }

  void answer(int64_t id, int64_t ttl) {
    etcdserverpb::LeaseKeepAliveResponse resp;
    resp.set_id(id);
    resp.set_ttl(ttl);  // 0: no such lease, as etcd answers
    ctx_.fill_header(resp.mutable_header(), ctx_.revision());
    std::vector<etcdserverpb::LeaseKeepAliveResponse> out;
    out.push_back(std::move(resp));
    send(std::move(out), /*answers=*/1);
  }

  const char* name() const override { return "lease keep-alive"; }

  ServerContext& ctx_;
};

}  // namespace

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* c,
                                                   const etcdserverpb::LeaseGrantRequest* req,
                                                   etcdserverpb::LeaseGrantResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (req->ttl() > kv::kMaxLeaseTtlSeconds) {
    reactor->Finish(to_status(kv::errors::lease_ttl_too_large()));
    return reactor;
  }
  // The proposer fixes the ID and the TTL (raised to the minimum), so every replica applies
  // the same grant.
  const int64_t id = req->id() != 0 ? req->id() : new_lease_id();
  const int64_t ttl = std::max(req->ttl(), ctx_.node->min_lease_ttl_seconds());
  auto set_op = [&](synodpb::Request* r) {
    r->mutable_lease_grant()->set_id(id);
    r->mutable_lease_grant()->set_ttl(ttl);
  };
  replicate(ctx_, *c, reactor, resp, set_op, copy_to_shards_of(ctx_, set_op));
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::LeaseRevokeRequest* req,
                                                    etcdserverpb::LeaseRevokeResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  auto set_op = [req](synodpb::Request* r) { r->mutable_lease_revoke()->set_id(req->id()); };
  replicate(ctx_, *c, reactor, resp, set_op, copy_to_shards_of(ctx_, set_op));
  return reactor;
}

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext*) {
  auto stream = std::make_shared<KeepAliveStream>(ctx_);
  stream->start(stream);
  return stream.get();
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* c, const etcdserverpb::LeaseTimeToLiveRequest* req,
    etcdserverpb::LeaseTimeToLiveResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  ctx_.node->lease_time_to_live(
      req->id(), [this, c, reactor, req, resp](std::optional<Node::LeaseTtl> ttl) {
        if (!ttl) {
          auto call = [](auto* stub, grpc::ClientContext* cc, const auto* rq, auto* rs, auto done) {
            stub->LeaseTimeToLive(cc, rq, rs, std::move(done));
          };
          if (!forward_to_leader<etcdserverpb::Lease>(ctx_, *c, reactor, req, resp, call)) {
            reactor->Finish(to_status(kv::errors::no_leader()));
          }
          return;
        }
        if (ctx_.shards != nullptr && ttl->remaining < 0) {
          // Gone from the metadata group but not yet from every shard: its keys are on their
          // way out, as with a revoke that has not applied yet.
          const auto copy = sharded_lease_copy(ctx_, req->id());
          if (copy) {
            ttl->remaining = 0;
            ttl->granted = copy->ttl;
          }
        }
        resp->set_id(req->id());
        resp->set_ttl(ttl->remaining);  // -1: no such lease (etcd answers so, without error)
        if (ttl->remaining >= 0) resp->set_grantedttl(ttl->granted);
        if (req->keys()) {
          // Sharded: the keys are in the data groups' copies of the lease.
          if (ctx_.shards != nullptr) ttl->keys = sharded_lease_keys(ctx_, req->id());
          for (std::string& k : ttl->keys) resp->add_keys(std::move(k));
        }
        ctx_.fill_header(resp->mutable_header(), ctx_.revision());
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::LeaseLeasesRequest*,
                                                    etcdserverpb::LeaseLeasesResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  const std::vector<int64_t> ids =
      ctx_.node->read_store([](const kv::Store& s) { return s.lease_ids(); });
  for (int64_t id : ids) resp->add_leases()->set_id(id);
  ctx_.fill_header(resp->mutable_header(), ctx_.revision());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace synod::server
