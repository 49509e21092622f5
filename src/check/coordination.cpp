#include "check/coordination.h"

#include <algorithm>
#include <sstream>

namespace synod::check {

std::vector<Violation> check_fenced_acts(const std::vector<FencedAct>& acts) {
  std::vector<Violation> out;
  const FencedAct* newest = nullptr;  // the act with the highest token so far
  for (const FencedAct& act : acts) {
    if (newest != nullptr && act.token < newest->token) {
      std::ostringstream os;
      os << "index " << act.index << ": client " << act.client << " wrote with token " << act.token
         << " after client " << newest->client << " wrote with token " << newest->token
         << " at index " << newest->index;
      out.push_back({"StaleFencingToken", os.str()});
    } else if (newest != nullptr && act.token == newest->token && act.client != newest->client) {
      std::ostringstream os;
      os << "index " << act.index << ": clients " << newest->client << " and " << act.client
         << " both wrote with token " << act.token;
      out.push_back({"SharedFencingToken", os.str()});
    }
    if (newest == nullptr || act.token > newest->token) newest = &act;
  }
  return out;
}

std::vector<Violation> check_lock_fifo(std::vector<Acquisition> acquisitions) {
  std::vector<Violation> out;
  std::sort(acquisitions.begin(), acquisitions.end(),
            [](const Acquisition& a, const Acquisition& b) { return a.token < b.token; });
  for (size_t i = 1; i < acquisitions.size(); ++i) {
    const Acquisition& before = acquisitions[i - 1];
    const Acquisition& after = acquisitions[i];
    if (after.revision > before.revision) continue;
    std::ostringstream os;
    os << "client " << after.client << " (asked at revision " << after.token
       << ") acquired at revision " << after.revision << ", not after client " << before.client
       << " (asked at " << before.token << ", acquired at " << before.revision << ")";
    out.push_back({"LockNotFifo", os.str()});
  }
  return out;
}

std::vector<Violation> check_semaphore(const std::vector<HolderSet>& history, int64_t permits) {
  std::vector<Violation> out;
  for (const HolderSet& h : history) {
    if (static_cast<int64_t>(h.holders.size()) <= permits) continue;
    std::ostringstream os;
    os << "index " << h.index << ": " << h.holders.size() << " holders of " << permits
       << " permits:";
    for (const std::string& holder : h.holders) os << " " << holder;
    out.push_back({"SemaphoreOverflow", os.str()});
  }
  return out;
}

std::vector<Violation> check_lease_expiry(const std::vector<LeaseLife>& leases) {
  std::vector<Violation> out;
  for (const LeaseLife& life : leases) {
    if (!life.revoked_by_expiry || life.revoked_at_us >= life.promised_until_us) continue;
    std::ostringstream os;
    os << "lease " << life.id << " expired at " << life.revoked_at_us / 1000 << " ms, "
       << (life.promised_until_us - life.revoked_at_us) / 1000
       << " ms before the time its holder was promised";
    out.push_back({"LeaseExpiredEarly", os.str()});
  }
  return out;
}

}  // namespace synod::check
