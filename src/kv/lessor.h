// kv::Lessor: when each lease expires, as one member knows it (etcd's lessor). The leases
// themselves (ID, granted TTL, keys) are the store's replicated state; expiry times are not:
// the leader alone decides that a lease has expired and proposes its revoke through the log, so
// every member deletes the lease's keys at the same revision.
//
// Failover never expires a lease early: a member that becomes leader does not know the old
// leader's renewals, so it gives every lease the store holds its full TTL plus one election
// timeout from the moment of promotion (a renewal acknowledged by the old leader happened
// before the new one was elected).
//
// Nor does a deposed leader's decision: a revoke it proposed can be chosen long after it lost
// leadership (a Multi-Paxos leader proposes again every value a promise reports; a Raft leader
// commits what its log holds), after a later leader renewed the lease. So each leader first
// gets its term recorded in the store (a lessor epoch entry) and only then renews or revokes;
// its revokes carry its term, and a revoke of an older term than the store's epoch changes
// nothing. A revoke chosen before the epoch applied is one the new leader saw applied before
// it renewed anything.
//
// Time is the caller's monotonic clock in microseconds (the server's steady clock, the
// simulator's virtual time). Pure: no clocks, threads or I/O; the caller serializes calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "kv/store.h"

namespace synod::kv {

// A bug the simulator plants to prove its lease check fails: a new leader keeps the deadlines
// it had as a follower (grant time + TTL, blind to the old leader's renewals).
struct LessorBugs {
  bool keep_deadlines_on_promotion = false;
};

class Lessor {
 public:
  // extension_us: what a new leader adds to every lease (the election timeout).
  // retry_us: how long a proposed revoke may take to apply before it is proposed again.
  explicit Lessor(int64_t extension_us, int64_t retry_us = 3'000'000, LessorBugs bugs = {});

  // Apply-time notifications, on every member, for grants and revokes that succeeded.
  void on_grant(int64_t id, int64_t ttl_seconds, int64_t now_us);
  void on_revoke(int64_t id);

  // Call at every tick, and before serving a lease request, with the member's current role and
  // term. On becoming leader every lease the store holds expires ttl + extension from now.
  // Leading a term other than the one last seen is a promotion too: a member can lose and win
  // leadership between two calls (a paused leader that wakes, is deposed, and is handed
  // leadership back), and what it knew of the leases then is stale.
  void set_leader(bool leader, uint64_t term, const Store& store, int64_t now_us);
  bool leader() const { return leader_; }
  // The term it leads (0 if not leader): what its epoch entry and its revokes carry.
  uint64_t term() const { return leader_term_; }

  // On the leader: true if its epoch entry should be proposed now (it has not applied, and was
  // not proposed in the last retry_us).
  bool epoch_due(const Store& store, int64_t now_us);
  // On the leader: its epoch has applied, so it may renew and revoke.
  bool serving(const Store& store) const { return leader_ && store.lessor_epoch() == leader_term_; }

  // On a serving leader: the expired leases whose revoke should be proposed now (none proposed
  // in the last retry_us), at most `max`, in ID order; each is marked as proposed.
  std::vector<int64_t> due_revokes(const Store& store, int64_t now_us, size_t max);

  // On the leader: renews a live lease and returns its granted TTL in seconds; 0 if the store
  // has no such lease or it has expired (its revoke is on the way).
  int64_t renew(int64_t id, const Store& store, int64_t now_us);

  // A live lease's deadline (microseconds, the caller's clock); nullopt if unknown or expired.
  std::optional<int64_t> deadline(int64_t id, int64_t now_us) const;

 private:
  const int64_t extension_us_;
  const int64_t retry_us_;
  const LessorBugs bugs_;
  bool leader_ = false;
  uint64_t leader_term_ = 0;                  // the term it leads, while leader_
  std::map<int64_t, int64_t> deadlines_;      // lease -> expiry
  std::map<int64_t, int64_t> revoking_;       // lease -> when its revoke was last proposed
  std::optional<int64_t> epoch_proposed_at_;  // when its epoch was last proposed
};

}  // namespace synod::kv
