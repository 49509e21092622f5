// The truth a run is judged by: the log as first applied anywhere (every replica applies the
// same entries to the same effect, which the nodes' StoreConvergence check holds them to), and
// what clients learned that the log cannot tell (the lease each was promised, the locks each
// acquired). At the end, the coordination checks (check/coordination.h) judge it.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "check/coordination.h"
#include "check/watch.h"
#include "core/consensus/types.h"
#include "sim/kv_machine.h"
#include "sim/world.h"

namespace synod::sim {

class Truth {
 public:
  explicit Truth(World& world) : world_(world) {}

  // The highest index applied anywhere.
  raft::Index index() const { return index_; }
  // The first replica to apply the entry at `kv.applied()` reports what it did; `ok` when the
  // store took it without error.
  void record_apply(const KvMachine& kv, const KvApplied& applied, bool ok);
  // A client was promised its lease until `until_us` (by a grant or a keep-alive).
  void promised(int64_t lease, uint64_t until_us);
  // A client acquired a lock.
  void acquired(const check::Acquisition& acquisition);
  // Every watch event the log produced, in revision order.
  const std::vector<check::WatchEvent>& events() const { return events_; }

  // The coordination checks over the whole run: fenced writes, FIFO lock order, semaphore
  // bounds, leases never revoked while promised. Violations go to the world.
  void check();

 private:
  World& world_;
  raft::Index index_;
  std::vector<check::WatchEvent> events_;
  std::vector<check::FencedAct> fenced_acts_;
  std::vector<check::Acquisition> acquisitions_;
  std::vector<check::HolderSet> slot_holders_;
  std::map<int64_t, check::LeaseLife> leases_;    // by ID, the current grant's
  std::vector<check::LeaseLife> retired_leases_;  // earlier grants of a reused ID
};

}  // namespace synod::sim
