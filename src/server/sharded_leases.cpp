#include "server/sharded_leases.h"

#include <algorithm>
#include <future>
#include <set>

#include "server/awaited.h"
#include "server/group_access.h"

namespace synod::server {

void copy_lease_change(ServerContext& ctx, const synodpb::Request& op, std::function<void()> done) {
  const uint32_t groups = ctx.shards->count();
  if (groups == 0) {
    done();
    return;
  }
  struct Pending {
    std::mutex mu;
    size_t left;
    std::function<void()> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = groups;
  pending->done = std::move(done);
  // Every data group, hosted here or not (through a member that replicates it).
  for (uint32_t g = 1; g <= groups; ++g) {
    synodpb::Request copy;
    if (op.has_lease_grant()) *copy.mutable_lease_grant() = op.lease_grant();
    if (op.has_lease_revoke()) *copy.mutable_lease_revoke() = op.lease_revoke();
    propose_to_group(ctx, g, std::move(copy), [pending](const kv::ApplyResult&) {
      std::unique_lock lock(pending->mu);
      if (--pending->left > 0) return;
      lock.unlock();
      pending->done();
    });
  }
}

std::optional<kv::LeaseInfo> sharded_lease_copy(const ServerContext& ctx, int64_t id) {
  for (auto& [group, node] : ctx.shards->hosted()) {
    std::optional<kv::LeaseInfo> copy =
        node->read_store([id](const kv::Store& s) { return s.lease(id); });
    if (copy) return copy;
  }
  return std::nullopt;
}

std::vector<std::string> sharded_lease_keys(ServerContext& ctx, int64_t id) {
  // Each hosted replica first applies what its group committed before now (a ReadIndex
  // barrier, by way of a one-key read), so that a key put with the lease just before is listed.
  // A group not hosted here is read whole (keys only) from a member that replicates it, and its
  // keys on the lease picked out: no peer call lists a lease's keys.
  const auto hosted = ctx.shards->hosted();
  auto barrier = std::make_shared<etcdserverpb::RangeRequest>();
  barrier->set_key(std::string(1, '\0'));
  barrier->set_count_only(true);
  auto everything = std::make_shared<etcdserverpb::RangeRequest>();
  everything->set_key(std::string(1, '\0'));
  everything->set_range_end(std::string(1, '\0'));
  everything->set_keys_only(true);
  auto mu = std::make_shared<std::mutex>();
  auto remote_keys = std::make_shared<std::vector<std::string>>();
  std::vector<std::shared_ptr<Awaited<bool>>> done;
  for (uint32_t g = 1; g <= ctx.shards->count(); ++g) {
    auto d = std::make_shared<Awaited<bool>>();
    Node* node = ctx.shards->node(g);
    if (node != nullptr) {
      read_hosted_group(ctx, *node, *barrier,
                        [d, barrier](std::optional<kv::Error> e, etcdserverpb::RangeResponse&&) {
                          d->set(!e.has_value());
                        });
    } else {
      read_from_group(ctx, g, *everything,
                      [d, everything, mu, remote_keys, id](std::optional<kv::Error> e,
                                                           etcdserverpb::RangeResponse&& r) {
                        if (!e) {
                          std::lock_guard lock(*mu);
                          for (const mvccpb::KeyValue& kv : r.kvs()) {
                            if (kv.lease() == id) remote_keys->push_back(kv.key());
                          }
                        }
                        d->set(!e.has_value());
                      });
    }
    done.push_back(std::move(d));
  }
  for (auto& d : done) d->wait(std::chrono::milliseconds(2000));
  std::vector<std::string> keys;
  {
    std::lock_guard lock(*mu);
    keys = *remote_keys;
  }
  for (auto& [group, node] : hosted) {
    if (group == 0) continue;
    std::optional<kv::LeaseInfo> copy =
        node->read_store([id](const kv::Store& s) { return s.lease(id); });
    if (copy) keys.insert(keys.end(), copy->keys.begin(), copy->keys.end());
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

LeaseMirror::LeaseMirror(ServerContext& ctx, std::chrono::milliseconds interval)
    : ctx_(ctx), interval_(interval), thread_([this] { run(); }) {}

LeaseMirror::~LeaseMirror() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseMirror::kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void LeaseMirror::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, interval_, [&] { return stopping_ || kicked_; });
    if (stopping_) break;
    kicked_ = false;
    lock.unlock();
    sweep();
    lock.lock();
  }
}

void LeaseMirror::sweep() {
  // The copies first, then the metadata group's leases after a barrier: a lease copied before
  // the copies were read was granted in the metadata group before that, so the barrier shows
  // it (a grant in flight is never taken for a lease gone).
  std::vector<std::pair<Node*, std::vector<int64_t>>> led;
  for (auto& [group, node] : ctx_.shards->hosted()) {
    if (node->status().role != raft::Role::kLeader) continue;
    led.emplace_back(node, node->read_store([](const kv::Store& s) { return s.lease_ids(); }));
  }
  if (led.empty()) return;
  auto barrier = std::make_shared<std::promise<bool>>();
  std::future<bool> passed = barrier->get_future();
  ctx_.node->read_barrier([barrier](std::optional<Error> e) { barrier->set_value(!e); });
  if (passed.wait_for(std::chrono::seconds(2)) != std::future_status::ready || !passed.get()) {
    return;  // no quorum in the metadata group now; next time
  }
  const std::vector<kv::LeaseInfo> leases = ctx_.node->read_store([](const kv::Store& s) {
    std::vector<kv::LeaseInfo> out;
    for (int64_t id : s.lease_ids()) {
      if (auto l = s.lease(id)) out.push_back(std::move(*l));
    }
    return out;
  });
  std::set<int64_t> live;
  for (const kv::LeaseInfo& l : leases) live.insert(l.id);
  for (auto& [node, copies] : led) {
    const std::set<int64_t> held(copies.begin(), copies.end());
    for (int64_t id : copies) {
      if (live.contains(id)) continue;
      synodpb::Request revoke;
      revoke.mutable_lease_revoke()->set_id(id);
      node->propose(std::move(revoke), [](const kv::ApplyResult&) {});
    }
    for (const kv::LeaseInfo& l : leases) {
      if (held.contains(l.id)) continue;
      synodpb::Request grant;
      grant.mutable_lease_grant()->set_id(l.id);
      grant.mutable_lease_grant()->set_ttl(l.ttl);
      node->propose(std::move(grant), [](const kv::ApplyResult&) {});
    }
  }
}

}  // namespace synod::server
