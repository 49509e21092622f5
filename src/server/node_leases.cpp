// Leases and watches on the raft thread. A lease's state (ID, granted TTL, keys) is the
// store's; when it expires is the leader's lessor's call, which proposes the revoke. Watches
// are served from the store by the watch hub as entries apply.
#include "server/node.h"

#include "server/auth.h"

namespace synod::server {

namespace {

int64_t micros(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

}  // namespace

// The raft thread is the store's only writer, so it reads the store here without the lock.
void Node::handle_watch(WatchInput& input) {
  if (input.closed) {
    watch_hub_.close_stream(input.stream);
    return;
  }
  const etcdserverpb::WatchRequest& r = input.request;
  if (r.has_create_request()) {
    if (auto reason = watch_refusal(input.caller, r.create_request())) {
      watch_hub_.refuse(input.stream, *reason, *store_, &watch_out_);
      return;
    }
    watch_hub_.create(input.stream, r.create_request(), *store_, &watch_out_);
  } else if (r.has_cancel_request()) {
    watch_hub_.cancel(input.stream, r.cancel_request().watch_id(), *store_, &watch_out_);
  } else if (r.has_progress_request()) {
    watch_hub_.progress(input.stream, *store_, &watch_out_);
  }
}

std::optional<std::string> Node::watch_refusal(
    const WatchCaller& caller, const etcdserverpb::WatchCreateRequest& create) const {
  if (!caller) return std::nullopt;
  std::optional<Error> error;
  if (!*caller) {
    error = caller->error();
  } else {
    // An empty key watches from the smallest key, "\0" (etcd's watch server).
    const std::string key = create.key().empty() ? std::string(1, '\0') : create.key();
    error = check_read(store_->auth(), **caller, key, create.range_end());
  }
  if (!error) return std::nullopt;
  return grpc_error_text(*error);
}

void Node::notify_watch_progress(Clock::time_point now) {
  if (watch_hub_.empty() || now < next_progress_notify_) return;
  if (next_progress_notify_ != Clock::time_point{})
    watch_hub_.notify_progress(*store_, &watch_out_);
  next_progress_notify_ = now + options_.watch_progress_interval;
}

void Node::emit_watch_output() {
  if (watch_out_.empty()) return;
  std::vector<kv::WatchOutput> out;
  out.swap(watch_out_);
  if (watch_sink_) watch_sink_(std::move(out));
}

void Node::handle_lease(LeaseInput& input) {
  const int64_t now = micros(Clock::now());
  lessor_.set_leader(raft_->role() == raft::Role::kLeader, raft_->term().value, *store_, now);
  if (input.keepalive) {
    if (!lessor_.leader()) return input.keepalive(kNotLeader);
    read([this, id = input.id, done = std::move(input.keepalive)](std::optional<Error> e) {
      if (e) return done(kNoQuorum);
      const int64_t at = micros(Clock::now());
      lessor_.set_leader(raft_->role() == raft::Role::kLeader, raft_->term().value, *store_, at);
      if (!lessor_.leader()) return done(kNotLeader);
      // Until its lessor epoch applies (a round trip after promotion) it renews nothing.
      if (!lessor_.serving(*store_)) return done(kNoQuorum);
      done(lessor_.renew(id, *store_, at));
    });
    return;
  }
  if (!lessor_.leader()) return input.time_to_live(std::nullopt);
  std::optional<kv::LeaseInfo> lease = store_->lease(input.id);
  LeaseTtl ttl;  // remaining -1 only once the lease is gone from the store
  if (lease) {
    const std::optional<int64_t> deadline = lessor_.deadline(input.id, now);
    ttl.remaining = deadline ? (*deadline - now) / 1'000'000 : 0;  // 0: its revoke on the way
    ttl.granted = lease->ttl;
    ttl.keys = std::move(lease->keys);
  }
  input.time_to_live(std::move(ttl));
}

// Called at every tick: the leader proposes the revokes of expired leases, at most
// kRevokesPerTick per tick (kv::Lessor retries one whose revoke has not applied in a while).
void Node::check_leases(Clock::time_point now) {
  constexpr size_t kRevokesPerTick = 100;
  if (!options_.expire_leases) return;
  lessor_.set_leader(raft_->role() == raft::Role::kLeader, raft_->term().value, *store_,
                     micros(now));
  if (lessor_.epoch_due(*store_, micros(now))) {
    synodpb::Request epoch;
    epoch.set_lessor_epoch(lessor_.term());
    queue_proposal(
        Proposal{std::move(epoch), [](const kv::ApplyResult&) {}, now + options_.request_timeout});
  }
  for (int64_t id : lessor_.due_revokes(*store_, micros(now), kRevokesPerTick)) {
    synodpb::Request revoke;
    revoke.mutable_lease_revoke()->set_id(id);
    revoke.set_expiry_epoch(lessor_.term());
    queue_proposal(
        Proposal{std::move(revoke), [](const kv::ApplyResult&) {}, now + options_.request_timeout});
  }
}

// Every member tracks grants and revokes as they apply, so the deadlines a new leader starts
// from cover every lease (it extends them all on promotion anyway).
void Node::lease_applied(const synodpb::Request& request, const kv::ApplyResult& result) {
  if (!result.ok()) return;
  if (request.has_lease_grant()) {
    lessor_.on_grant(request.lease_grant().id(), request.lease_grant().ttl(), micros(Clock::now()));
  } else if (request.has_lease_revoke()) {
    lessor_.on_revoke(request.lease_revoke().id());
    if (on_lease_revoked_) on_lease_revoked_(request.lease_revoke().id());
  }
}

}  // namespace synod::server
