#include "sim/recipe_client.h"

#include <algorithm>
#include <cassert>

#include "kv/recipe.h"

namespace synod::sim {

namespace {

RecipeStep propose(synodpb::Request request, uint64_t delay_us = 0) {
  RecipeStep s;
  s.cmd.op = KvOp::kPropose;
  s.cmd.proposal = std::move(request);
  s.delay_us = delay_us;
  return s;
}

}  // namespace

RecipeClient::RecipeClient(uint32_t id, const RecipeOptions& options) : id_(id), o_(options) {
  assert(o_.lease_ttl_seconds > 0 && o_.permits > 0);
}

std::string RecipeClient::name() const {
  return o_.recipe == Recipe::kLock ? kLockName : kSemaphoreName;
}

std::string RecipeClient::my_key() const {
  return kv::recipe::contender_key(name(), lease_);
}

void RecipeClient::new_cycle(uint64_t now_us) {
  state_ = State::kGrant;
  granted_ = false;
  lease_ = 0;
  my_revision_ = 0;
  cycle_start_us_ = now_us;
}

void RecipeClient::lost() {
  ++stats_.leases_lost;
  new_cycle(cycle_start_us_);  // the same cycle, over again with a new lease
}

void RecipeClient::acquired(Rng& rng, int64_t revision, Learned& learned) {
  ++stats_.acquisitions;
  learned.acquired = {my_revision_, revision};
  state_ = State::kAct;
  acts_left_ = 1 + static_cast<int>(rng.uniform(3));
}

RecipeStep RecipeClient::next(uint64_t now_us, Rng& rng) {
  assert(!keepalive_outstanding_);
  if (granted_ && state_ != State::kRevoke &&
      now_us - last_keepalive_us_ >= o_.keepalive_every_us) {
    keepalive_outstanding_ = true;
    last_keepalive_us_ = now_us;
    RecipeStep s;
    s.cmd.op = KvOp::kKeepAlive;
    s.cmd.lease = lease_;
    s.counted = false;
    return s;
  }
  synodpb::Request r;
  switch (state_) {
    case State::kGrant: {
      if (lease_ == 0) lease_ = static_cast<int64_t>((uint64_t{id_} + 1) << 24 | ++lease_seq_);
      r.mutable_lease_grant()->set_id(lease_);
      r.mutable_lease_grant()->set_ttl(o_.lease_ttl_seconds);
      return propose(std::move(r));
    }
    case State::kPermits:
      *r.mutable_txn() = kv::recipe::permits_txn(name(), o_.permits);
      return propose(std::move(r));
    case State::kContend:
      *r.mutable_txn() = kv::recipe::contend_txn(name(), lease_, "");
      return propose(std::move(r));
    case State::kWait: {
      RecipeStep s;
      s.cmd.op = KvOp::kRange;
      const int64_t permits = o_.recipe == Recipe::kLock ? 1 : o_.permits;
      s.cmd.range = kv::recipe::predecessors(name(), my_revision_, permits);
      s.delay_us = poll_after_us_;
      s.counted = false;
      return s;
    }
    case State::kAct:
      return act();
    case State::kUnlock:
      r.mutable_delete_range()->set_key(my_key());
      return propose(std::move(r));
    case State::kRevoke: {
      r.mutable_lease_revoke()->set_id(lease_);
      // A semaphore holder keeps its permit (and slot) a while before it leaves.
      const uint64_t hold_us = o_.recipe == Recipe::kSemaphore ? rng.range(20'000, 150'000) : 0;
      return propose(std::move(r), hold_us);
    }
  }
  assert(false);
  return {};
}

RecipeStep RecipeClient::act() {
  synodpb::Request r;
  const std::string value = "c" + std::to_string(id_) + ".t" + std::to_string(my_revision_) + "." +
                            std::to_string(++act_seq_);
  if (o_.recipe == Recipe::kSemaphore) {
    etcdserverpb::TxnRequest* txn = r.mutable_txn();
    etcdserverpb::Compare* cmp = txn->add_compare();
    cmp->set_key(my_key());
    cmp->set_target(etcdserverpb::Compare::CREATE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_create_revision(my_revision_);
    etcdserverpb::PutRequest* put = txn->add_success()->mutable_request_put();
    put->set_key(std::string(kSlotPrefix) + "c" + std::to_string(id_));
    put->set_value(value);
    put->set_lease(lease_);
    return propose(std::move(r));
  }
  etcdserverpb::PutRequest* put =
      o_.unfenced ? r.mutable_put() : r.mutable_fenced_put()->mutable_put();
  put->set_key(kResourceKey);
  put->set_value(value);
  if (!o_.unfenced) {
    r.mutable_fenced_put()->set_lock(kLockName);
    r.mutable_fenced_put()->set_token(my_revision_);
  }
  return propose(std::move(r), act_seq_ % 3 == 0 ? 10'000 : 0);
}

RecipeClient::Learned RecipeClient::on_reply(const KvResult& result, uint64_t sent_us,
                                             uint64_t now_us, Rng& rng) {
  Learned learned;
  const uint64_t ttl_us = static_cast<uint64_t>(o_.lease_ttl_seconds) * 1'000'000;
  if (keepalive_outstanding_) {
    keepalive_outstanding_ = false;
    if (result.ttl > 0) {
      learned.promise = {lease_, sent_us + static_cast<uint64_t>(result.ttl) * 1'000'000};
    } else {
      lost();  // expired: whatever this cycle held is gone with the lease
    }
    return learned;
  }
  const int64_t permits = o_.recipe == Recipe::kLock ? 1 : o_.permits + (o_.extra_permit ? 1 : 0);
  switch (state_) {
    case State::kGrant:
      if (result.error && result.error->find("exists") == std::string::npos) {
        lease_ = 0;  // try another ID
        return learned;
      }
      // "lease already exists": an earlier try that timed out did land; it is this client's.
      if (!result.error) learned.promise = {lease_, sent_us + ttl_us};
      granted_ = true;
      last_keepalive_us_ = sent_us;
      state_ = o_.recipe == Recipe::kSemaphore ? State::kPermits : State::kContend;
      return learned;
    case State::kPermits:
      if (!result.error && !kv::recipe::check_permits(result.txn_response(), name(), o_.permits)) {
        state_ = State::kContend;
      }
      return learned;
    case State::kContend: {
      if (result.error) {
        lost();  // lease not found: it expired before the contender key went in
        return learned;
      }
      auto c = kv::recipe::read_contended(result.txn_response(), "", permits);
      if (!c) return learned;  // try again
      my_revision_ = c->my_revision;
      poll_after_us_ = 0;
      if (c->first) {
        acquired(rng, c->txn_revision, learned);
      } else {
        state_ = State::kWait;
      }
      return learned;
    }
    case State::kWait: {
      if (result.error) return learned;
      const kv::recipe::Wait w =
          kv::recipe::read_predecessors(result.range_response(), name(), lease_, permits);
      if (w.gone) {
        lost();
      } else if (w.held) {
        acquired(rng, result.range_response().header().revision(), learned);
      } else {
        poll_after_us_ = rng.range(5'000, 30'000);
      }
      return learned;
    }
    case State::kAct:
      if (o_.recipe == Recipe::kSemaphore) {
        const bool entered = !result.error && result.txn_response().succeeded();
        ++(entered ? stats_.acts_ok : stats_.acts_refused);
        state_ = State::kRevoke;
        return learned;
      }
      if (result.error) {
        ++stats_.acts_refused;  // stale token, or the lock is nobody's: no longer held
        state_ = State::kUnlock;
        return learned;
      }
      ++stats_.acts_ok;
      if (--acts_left_ == 0) state_ = State::kUnlock;
      return learned;
    case State::kUnlock:
      state_ = State::kRevoke;
      return learned;
    case State::kRevoke:
      ++stats_.cycles;
      learned.cycle_done = true;
      learned.cycle_start_us = cycle_start_us_;
      new_cycle(now_us);
      return learned;
  }
  return learned;
}

void RecipeClient::on_failure() {
  if (keepalive_outstanding_) {
    keepalive_outstanding_ = false;
    // Try again in about 100 ms rather than a whole interval later.
    const uint64_t back =
        o_.keepalive_every_us - std::min<uint64_t>(o_.keepalive_every_us, 100'000);
    last_keepalive_us_ = last_keepalive_us_ > back ? last_keepalive_us_ - back : 0;
    return;
  }
  // A lock act that timed out may have landed; the holder goes on with its next one.
  if (state_ == State::kAct && o_.recipe == Recipe::kLock && --acts_left_ == 0) {
    state_ = State::kUnlock;
  }
}

}  // namespace synod::sim
