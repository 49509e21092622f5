#include "sim/truth.h"

#include <algorithm>
#include <cstdio>

#include "kv/recipe.h"
#include "sim/recipe_client.h"

namespace synod::sim {

void Truth::record_apply(const KvMachine& kv, const KvApplied& applied, bool ok) {
  index_ = kv.applied();
  for (const mvccpb::Event& ev : applied.events) {
    events_.push_back(check::WatchEvent{ev.kv().mod_revision(), ev.kv().key(),
                                        ev.type() == mvccpb::Event::DELETE});
  }
  if (!ok) return;
  const synodpb::Request& r = applied.request;
  const etcdserverpb::PutRequest* put = r.has_fenced_put() ? &r.fenced_put().put()
                                        : r.has_put()      ? &r.put()
                                                           : nullptr;
  if (put != nullptr && put->key() == kResourceKey) {
    // "c<client>.t<token>.<n>", as the lock client writes it.
    unsigned client = 0;
    long long token = 0;
    if (std::sscanf(put->value().c_str(), "c%u.t%lld.", &client, &token) == 2) {
      fenced_acts_.push_back({index_.value, client, token});
    }
  }
  if (world_.options.workload == Workload::kSemaphore && applied.changed) {
    etcdserverpb::RangeRequest slots;
    slots.set_key(kSlotPrefix);
    slots.set_range_end(kv::recipe::prefix_end(kSlotPrefix));
    slots.set_keys_only(true);
    check::HolderSet now{index_.value, {}};
    const KvResult got = kv.range(slots);
    for (const mvccpb::KeyValue& held : got.range_response().kvs()) {
      now.holders.push_back(held.key());
    }
    if (slot_holders_.empty() || slot_holders_.back().holders != now.holders) {
      slot_holders_.push_back(std::move(now));
    }
  }
  if (r.has_lease_grant()) {
    // A client whose grant timed out tries the same ID again; if the first try had landed and
    // expired meanwhile, this is a new lease under an old ID.
    auto old = leases_.find(r.lease_grant().id());
    if (old != leases_.end()) {
      retired_leases_.push_back(old->second);
      leases_.erase(old);
    }
  }
  if (r.has_lease_revoke() && !applied.id) {  // the lessor's, not a client's
    check::LeaseLife& life = leases_[r.lease_revoke().id()];
    life.id = r.lease_revoke().id();
    if (!life.revoked_by_expiry) life.revoked_at_us = world_.now();
    life.revoked_by_expiry = true;
    ++world_.result.lease_expiries;
  }
}

void Truth::promised(int64_t lease, uint64_t until_us) {
  check::LeaseLife& life = leases_[lease];
  life.id = lease;
  life.promised_until_us = std::max(life.promised_until_us, until_us);
}

void Truth::acquired(const check::Acquisition& acquisition) {
  acquisitions_.push_back(acquisition);
}

void Truth::check() {
  auto report = [&](const std::vector<check::Violation>& found) {
    world_.violations.insert(world_.violations.end(), found.begin(), found.end());
  };
  report(check::check_fenced_acts(fenced_acts_));
  if (world_.options.workload == Workload::kLock) report(check::check_lock_fifo(acquisitions_));
  report(check::check_semaphore(slot_holders_, world_.options.permits));
  for (const auto& [id, life] : leases_) retired_leases_.push_back(life);
  report(check::check_lease_expiry(retired_leases_));
}

}  // namespace synod::sim
