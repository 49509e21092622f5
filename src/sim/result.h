// What a simulator run found: counts of what happened, the invariant violations, the
// linearizability verdict and the client history, liveness after the heal.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "check/linearizability.h"
#include "check/raft_invariants.h"

namespace synod::sim {

struct SimResult {
  uint64_t seed = 0;
  uint64_t ops_ok = 0, ops_fail = 0, ops_info = 0;
  uint64_t committed = 0;  // highest index applied anywhere
  uint64_t elections = 0;  // distinct (term, leader) pairs observed
  uint64_t messages_sent = 0, messages_dropped = 0, messages_duplicated = 0;
  uint64_t snapshots_sent = 0;
  uint64_t state_fetches = 0, state_fetch_failures = 0;  // snapshot states fetched from leaders
  std::map<std::string, uint64_t> faults_injected;
  std::string swarm;  // the mix a swarm run drew, as flags
  std::vector<check::Violation> violations;
  check::LinearizabilityResult linearizability;
  std::vector<check::Operation> history;  // the register workload's client history
  // Lock and semaphore workloads, summed over clients.
  uint64_t cycles = 0, acquisitions = 0, acts_ok = 0, acts_refused = 0, leases_lost = 0;
  uint64_t client_pauses = 0;
  uint64_t lease_expiries = 0;  // leases the lessor revoked
  // Watchers.
  uint64_t watch_streams = 0, watch_events = 0, watch_compaction_cancels = 0;
  // The FLP duel: rounds played, values chosen while it ran (0), held messages delivered late
  // and refused, and how long after the release the first value was chosen.
  uint64_t duel_rounds = 0, duel_chosen = 0, duel_refused = 0, duel_first_chosen_ms = 0;
  bool duel_decided_after = false;  // a value was chosen after the release
  // Sharded runs: replica moves the ring asked for, and those carried out.
  uint64_t moves_planned = 0, moves_done = 0;
  // The bank workload: transfers (across shards), audits that summed every account, and the
  // resolver's proposals for transactions their clients left.
  uint64_t transfers = 0, cross_shard = 0, audits = 0, resolver_proposals = 0;
  uint64_t resolver_commits = 0;  // three-phase: decisions to commit a precommitted transaction
  uint64_t txn_records_forgotten = 0;  // settled transactions whose records were forgotten
  uint64_t coordinator_crashes = 0;    // clients that died holding every participant's yes
  // Consistent cuts of every group taken while transfers ran: those whose records every group
  // still held at the end (checked: the bank's total in each), the messages in flight they
  // held, and those some group's record was lost for (its replicas restarted or installed a
  // later state).
  uint64_t cuts_checked = 0, cut_messages_in_flight = 0, cuts_incomplete = 0;
  bool liveness_ok = true;
  std::string liveness_detail;
  uint64_t end_time_us = 0;

  bool passed() const {
    // An unknown verdict fails too: clean runs check in a few hundred states, so hitting the
    // limit means something is badly off.
    return violations.empty() && liveness_ok &&
           linearizability.verdict == check::Verdict::kLinearizable;
  }
};

}  // namespace synod::sim
