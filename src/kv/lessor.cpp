#include "kv/lessor.h"

#include <cassert>

namespace synod::kv {

namespace {
constexpr int64_t kMicrosPerSecond = 1'000'000;
}

Lessor::Lessor(int64_t extension_us, int64_t retry_us, LessorBugs bugs)
    : extension_us_(extension_us), retry_us_(retry_us), bugs_(bugs) {
  assert(extension_us >= 0 && retry_us > 0);
}

void Lessor::on_grant(int64_t id, int64_t ttl_seconds, int64_t now_us) {
  deadlines_[id] = now_us + ttl_seconds * kMicrosPerSecond;
}

void Lessor::on_revoke(int64_t id) {
  deadlines_.erase(id);
  revoking_.erase(id);
}

void Lessor::set_leader(bool leader, uint64_t term, const Store& store, int64_t now_us) {
  const bool promoted = leader && (!leader_ || term != leader_term_);
  if (promoted && !bugs_.keep_deadlines_on_promotion) {
    deadlines_.clear();
    revoking_.clear();
    for (int64_t id : store.lease_ids()) {
      std::optional<LeaseInfo> lease = store.lease(id);
      if (lease) deadlines_[id] = now_us + lease->ttl * kMicrosPerSecond + extension_us_;
    }
  }
  if (promoted) epoch_proposed_at_.reset();
  leader_ = leader;
  leader_term_ = leader ? term : 0;
}

bool Lessor::epoch_due(const Store& store, int64_t now_us) {
  if (!leader_ || store.lessor_epoch() >= leader_term_) return false;
  if (epoch_proposed_at_ && now_us - *epoch_proposed_at_ < retry_us_) return false;
  epoch_proposed_at_ = now_us;
  return true;
}

std::vector<int64_t> Lessor::due_revokes(const Store& store, int64_t now_us, size_t max) {
  std::vector<int64_t> due;
  if (!serving(store)) return due;
  for (const auto& [id, expiry] : deadlines_) {
    if (due.size() >= max) break;
    if (expiry > now_us) continue;
    auto [proposed, fresh] = revoking_.try_emplace(id, now_us);
    if (!fresh) {
      if (now_us - proposed->second < retry_us_) continue;
      proposed->second = now_us;
    }
    due.push_back(id);
  }
  return due;
}

int64_t Lessor::renew(int64_t id, const Store& store, int64_t now_us) {
  assert(leader_);
  std::optional<LeaseInfo> lease = store.lease(id);
  auto it = deadlines_.find(id);
  if (!lease || it == deadlines_.end() || it->second <= now_us) return 0;
  it->second = now_us + lease->ttl * kMicrosPerSecond;
  return lease->ttl;
}

std::optional<int64_t> Lessor::deadline(int64_t id, int64_t now_us) const {
  auto it = deadlines_.find(id);
  if (it == deadlines_.end() || it->second <= now_us) return std::nullopt;
  return it->second;
}

}  // namespace synod::kv
