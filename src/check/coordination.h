// Checkers for the coordination recipes, judged from what the replicated log applied (the
// simulator records it as the first replica applies each entry) and from what clients were
// promised. Pure; no clocks, no threads.
//
//   - check_fenced_acts: mutual exclusion as the protected resource sees it. Every write the
//     store accepted carries the writer's fencing token (its lock key's create revision); in
//     log order the tokens never decrease, and one token is one holder's. A stale holder that
//     acts after a newer holder did, or two holders acting under one token, fail the check.
//   - check_lock_fifo: waiters acquire in the order they asked. An acquisition is the
//     linearizable read (or contending txn) that showed the contender first; its revision
//     orders it. By token (= the order of asking), those revisions must increase.
//   - check_semaphore: the holders of a semaphore's slots, after every applied entry that
//     changed them, are never more than its permits.
//   - check_lease_expiry: a lease is never revoked by expiry before the time its holder was
//     promised (the send time of the last acknowledged grant or keep-alive, plus the TTL the
//     answer carried). Failover must not shorten a lease.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "check/raft_invariants.h"

namespace synod::check {

// One write to the protected resource that the store accepted, in log order.
struct FencedAct {
  uint64_t index = 0;   // the Raft entry that applied it
  uint32_t client = 0;  // who wrote it
  int64_t token = 0;    // the fencing token it carried
};
std::vector<Violation> check_fenced_acts(const std::vector<FencedAct>& acts);

// A contender that learned it holds the lock.
struct Acquisition {
  uint32_t client = 0;
  int64_t token = 0;     // its key's create revision: when it asked
  int64_t revision = 0;  // the revision of the read that showed it first
};
std::vector<Violation> check_lock_fifo(std::vector<Acquisition> acquisitions);

// The semaphore's slot holders after one applied entry (recorded when the set changes).
struct HolderSet {
  uint64_t index = 0;
  std::vector<std::string> holders;
};
std::vector<Violation> check_semaphore(const std::vector<HolderSet>& history, int64_t permits);

// What one lease's holder was promised, and when the log revoked it for expiry. One record per
// grant: an ID granted again after its revoke is a new lease.
struct LeaseLife {
  int64_t id = 0;
  uint64_t promised_until_us = 0;  // max over acknowledged grants and keep-alives
  bool revoked_by_expiry = false;
  uint64_t revoked_at_us = 0;  // when the revoke was first applied anywhere
};
std::vector<Violation> check_lease_expiry(const std::vector<LeaseLife>& leases);

}  // namespace synod::check
