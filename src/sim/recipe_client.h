// A simulated client that runs a lock or semaphore recipe (kv::recipe, the steps the server's
// v3lock and Semaphore services run) in cycles, through the simulated cluster:
//   grant a lease -> (semaphore: put the permit count) -> contend -> poll its predecessors
//   until it holds -> act on the protected resource -> release (lock: delete its key) ->
//   revoke the lease,
// keeping the lease alive on the way. Waiting polls (a linearizable Range every few ms) where
// the server watches; the recipe steps and their reading are the server's.
//
// Acting on the resource:
//   - lock: 1..3 fenced puts (synodpb.FencedPutRequest) of kResourceKey whose value names the
//     client and token, "c<client>.t<token>.<n>"; the store refuses a stale token;
//   - semaphore: one txn "if my contender key still has my create revision, put
//     kSlotPrefix + c<client> on my lease": a slot exists only while its holder's permit does,
//     and goes when the lease is revoked.
// The simulator records what the log accepted and judges it (check/coordination.h).
//
// One request at a time; the simulator sends each step, and reports its answer, rejection or
// timeout. Deterministic given the Rng passed in. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/rand.h"
#include "sim/kv_command.h"

namespace synod::sim {

enum class Recipe : uint8_t { kLock, kSemaphore };

inline constexpr const char* kLockName = "lock";
inline constexpr const char* kSemaphoreName = "sem";
inline constexpr const char* kResourceKey = "res";
inline constexpr const char* kSlotPrefix = "slot/";

struct RecipeOptions {
  Recipe recipe = Recipe::kLock;
  int64_t permits = 2;  // semaphore
  int64_t lease_ttl_seconds = 1;
  uint64_t keepalive_every_us = 300'000;
  // Planted bugs, which the coordination checkers must catch:
  bool unfenced = false;      // the lock holder writes with a plain put, no token checked
  bool extra_permit = false;  // the semaphore client counts permits + 1
};

struct RecipeStep {
  KvCommand cmd;          // client and seq are the simulator's to fill
  uint64_t delay_us = 0;  // think time before it is sent
  bool counted = true;    // an operation of the workload (polls and keep-alives are not)
};

struct RecipeStats {
  uint64_t cycles = 0;        // released and revoked
  uint64_t acquisitions = 0;  // held the lock or a permit
  uint64_t acts_ok = 0;       // the store accepted the act
  uint64_t acts_refused = 0;  // the store refused it (stale token, permit gone)
  uint64_t leases_lost = 0;   // the lease expired under the client
};

class RecipeClient {
 public:
  RecipeClient(uint32_t id, const RecipeOptions& options);

  // The next request. Precondition: no request outstanding.
  RecipeStep next(uint64_t now_us, Rng& rng);

  // What an answer taught the simulator.
  struct Learned {
    // The lease is promised alive until this time (the request's send time plus the TTL).
    std::optional<std::pair<int64_t, uint64_t>> promise;
    bool cycle_done = false;
    uint64_t cycle_start_us = 0;  // of the cycle that just finished
    // It now holds: (token, the revision of the answer that showed it first).
    std::optional<std::pair<int64_t, int64_t>> acquired;
  };
  // The answer to the request sent at sent_us.
  Learned on_reply(const KvResult& result, uint64_t sent_us, uint64_t now_us, Rng& rng);
  // The node refused the request before the log (no leader), or it timed out: a write may
  // still land; every step here is safe to repeat.
  void on_failure();

  bool holding() const { return state_ == State::kAct; }
  const RecipeStats& stats() const { return stats_; }

 private:
  enum class State : uint8_t { kGrant, kPermits, kContend, kWait, kAct, kUnlock, kRevoke };

  std::string name() const;
  std::string my_key() const;
  void new_cycle(uint64_t now_us);
  void lost();
  void acquired(Rng& rng, int64_t revision, Learned& learned);
  RecipeStep act();

  const uint32_t id_;
  const RecipeOptions o_;
  State state_ = State::kGrant;
  bool keepalive_outstanding_ = false;
  bool granted_ = false;
  uint64_t lease_seq_ = 0;
  int64_t lease_ = 0;
  uint64_t last_keepalive_us_ = 0;
  uint64_t cycle_start_us_ = 0;
  uint64_t poll_after_us_ = 0;  // the next poll waits this long
  int64_t my_revision_ = 0;     // the contender key's create revision: the fencing token
  int acts_left_ = 0;
  int act_seq_ = 0;
  RecipeStats stats_;
};

}  // namespace synod::sim
