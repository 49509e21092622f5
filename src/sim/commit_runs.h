// The classic results of atomic commitment, shown as runs (`synod commit`): one transaction,
// a coordinator that is not replicated and n participants, under the simulator's discipline
// (virtual time, message delays drawn from the seed, a seed replays a run exactly).
//
//   coordinator-crash  the coordinator dies once it has every vote, before it says anything
//                      more. 2PC: the participants, all uncertain, can only wait: blocked.
//                      3PC: they terminate (all uncertain, so abort), and agree.
//   partition          the coordinator's next message (2PC: Commit, 3PC: PreCommit) reaches
//                      participant 1 only; then the coordinator dies and participant 1 is cut
//                      off from the rest. 2PC: participant 1 commits, the rest block, no one
//                      disagrees. 3PC: participant 1, pre-committed, terminates alone and
//                      commits; the rest, uncertain, terminate and abort: they disagree.
//   partial-send       the coordinator's next message reaches participant 1 only, then it
//                      dies; no partition. 2PC: the others learn the outcome from participant
//                      1 (cooperative termination). 3PC: termination commits. Both agree.
//   none               no fault: everyone commits (or aborts, if a participant votes no).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/txn/commit.h"

namespace synod::sim {

enum class CommitScenario : uint8_t { kNone, kCoordinatorCrash, kPartition, kPartialSend };
const char* to_string(CommitScenario s);
bool parse_commit_scenario(const std::string& name, CommitScenario* out);

struct CommitRunOptions {
  txn::Protocol protocol = txn::Protocol::kTwoPhase;
  CommitScenario scenario = CommitScenario::kNone;
  int participants = 3;
  int votes_no = 0;  // this participant votes no (0: all vote yes)
  uint64_t seed = 1;
  uint64_t time_limit_ms = 5000;  // the run stops here; an undecided participant is blocked
  bool verbose = false;           // the run's events, one per line, in `log`
};

struct CommitRunResult {
  std::vector<txn::State> states;  // participant i at states[i - 1], at the end
  std::optional<txn::State> coordinator;
  bool coordinator_crashed = false;
  bool blocked = false;     // a participant that could still act never decided
  bool agreement = true;    // no two (participants or coordinator) decided differently
  uint64_t decided_ms = 0;  // when the last participant that decided did
  std::string log;
};

CommitRunResult run_commit(const CommitRunOptions& options);
// One paragraph: what happened and what it shows.
std::string describe(const CommitRunOptions& options, const CommitRunResult& result);

}  // namespace synod::sim
