// Proof that the simulator's checks can fail: each planted bug must be reported within the
// first 100 seeds of the default sweep (swarm testing: each seed draws its own faults, nemesis
// intensities and BUGGIFY sites), in the workload that exercises it. The sweeps are
// deterministic, so each prints the seed that caught it; bench/catch_rates.sh measures how
// often each is caught over more seeds.
#include <gtest/gtest.h>

#include <sstream>

#include "sim/simulation.h"

namespace synod::sim {
namespace {

constexpr uint64_t kSeeds = 100;

struct Planted {
  const char* bug;
  Workload workload = Workload::kRegister;
  int watchers = 0;
  replica::EngineKind engine = replica::EngineKind::kRaft;
  int nodes = 0;                 // 0: the default
  const char* faults = nullptr;  // a fixed mix instead of the swarm's
  int shards = 0;                // sharded: this many groups over 9 hosts (sim/cluster.h)
};

// Returns the first seed in [1, kSeeds] whose run reports a violation, or 0.
uint64_t first_failing_seed(const Planted& p, SimResult& failing) {
  for (uint64_t s = 1; s <= kSeeds; ++s) {
    SimOptions o;
    o.seed = s;
    o.swarm = p.faults == nullptr;
    if (p.faults != nullptr) {
      std::string why;
      EXPECT_TRUE(parse_faults(p.faults, o.faults, why)) << why;
    }
    o.engine = p.engine;
    o.workload = p.workload;
    o.watchers = p.watchers;
    if (p.nodes != 0) o.nodes = p.nodes;
    if (p.workload != Workload::kRegister) o.ops = 300;
    if (p.shards != 0) {
      o.shards = p.shards;
      o.nodes = 9;
      o.keys = 16;
      o.clients = 8;
      o.ops = 600;
    }
    std::string error;
    EXPECT_TRUE(parse_bug(p.bug, o, error)) << error;
    std::ostringstream log;
    SimResult r = run_simulation(o, log);
    // Only a reported violation counts; a search that gave up (unknown) proves nothing.
    if (!r.violations.empty() || r.linearizability.verdict == check::Verdict::kNotLinearizable) {
      failing = r;
      return s;
    }
  }
  return 0;
}

bool has(const SimResult& r, const std::string& invariant) {
  for (const auto& v : r.violations) {
    if (v.invariant == invariant) return true;
  }
  return false;
}

TEST(PlantedBugs, VoteWithoutLogCheckBreaksLeaderCompleteness) {
  SimResult r;
  const uint64_t seed = first_failing_seed({"vote-without-log-check"}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "LeaderCompleteness") || has(r, "StateMachineSafety") ||
              has(r, "LogMatching"));
}

TEST(PlantedBugs, VoteBeforePersistBreaksElectionSafety) {
  // A vote answered before it is durable is lost only if the voter dies inside its fsync: the
  // BUGGIFY site that crashes a node there is what reaches it.
  SimResult r;
  const uint64_t seed = first_failing_seed({"vote-before-persist"}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "ElectionSafety") || has(r, "LogMatching") || has(r, "StateMachineSafety"));
}

TEST(PlantedBugs, ReadIndexWithoutQuorumServesStaleReads) {
  SimResult r;
  const uint64_t seed = first_failing_seed({"read-index-without-quorum"}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_EQ(r.linearizability.verdict, check::Verdict::kNotLinearizable);
  EXPECT_FALSE(r.linearizability.failing_window.empty());
}

TEST(PlantedBugs, AStaleReadInOneShardIsCaughtInAShardedCluster) {
  // The same bug in every group of a cluster of 16 shards on 9 hosts: partitions of hosts cut
  // some group's leader off, and the history, checked key by key, shows the stale read.
  SimResult r;
  const uint64_t seed = first_failing_seed(
      {.bug = "read-index-without-quorum", .faults = "partition,crash", .shards = 16}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_EQ(r.linearizability.verdict, check::Verdict::kNotLinearizable);
}

TEST(PlantedBugs, AMoveThatRemovesTheOldReplicaFirstLeavesAGroupUnderReplicated) {
  // Rebalancing removes the losing host's replica before the new one is added and caught up:
  // the group commits a configuration with fewer voters than its replication factor.
  SimResult r;
  const uint64_t seed = first_failing_seed(
      {.bug = "remove-before-catch-up", .faults = "rebalance,crash,partition", .shards = 32}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "ReplicationKept"));
}

TEST(PlantedBugs, AParticipantCommittingBeforeTheDecisionIsDurableChangesTheBankTotal) {
  // Participants commit a transfer before its decision is recorded in the coordinator group;
  // a client that stops there leaves the rest to the resolver, which finds no decision and
  // aborts: one side of the transfer happened, the other did not.
  SimResult r;
  const uint64_t seed = first_failing_seed({.bug = "commit-before-decision",
                                            .workload = Workload::kBank,
                                            .faults = "crash,partition",
                                            .shards = 8},
                                           r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "BankTotal"));
}

TEST(PlantedBugs, ACutThatIgnoresMessagesInFlightChangesTheBankTotal) {
  // A consistent cut restored without its channel state: a transfer whose decision one group
  // had carried out and another had not yet received at the cut is settled as undecided
  // (aborted) in the second, so one side of it is in the cut and the other is not.
  SimResult r;
  const uint64_t seed = first_failing_seed({.bug = "cut-ignores-in-flight",
                                            .workload = Workload::kBank,
                                            .faults = "crash,partition",
                                            .shards = 8},
                                           r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "CutTotal"));
}

TEST(PlantedBugs, CommittingAPreviousTermEntryByCountIsReported) {
  // The leader's commit rule (thesis 3.6.2) is checked where it acts; the loss it leads to
  // (Raft figure 8) needs three leaders in quick succession and shows far more rarely.
  SimResult r;
  const uint64_t seed = first_failing_seed({"commit-previous-term"}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "LeaderCommitsOwnTerm") || has(r, "LeaderCompleteness") ||
              has(r, "StateMachineSafety") || has(r, "CommittedDurable"));
}

TEST(PlantedBugs, AnUnfencedLockLetsAPausedHolderWriteAfterItsSuccessor) {
  // The holder pauses past its lease right before a write; the next waiter acquires and
  // writes; the old holder wakes and its plain put lands. Fenced, the store refuses it.
  SimResult r;
  const uint64_t seed = first_failing_seed({"unfenced-lock", Workload::kLock}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "StaleFencingToken") || has(r, "SharedFencingToken"));
}

TEST(PlantedBugs, ASemaphoreClientCountingOnePermitTooManyOverflowsIt) {
  SimResult r;
  const uint64_t seed = first_failing_seed({"extra-permit", Workload::kSemaphore}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "SemaphoreOverflow"));
}

TEST(PlantedBugs, ALessorThatKeepsItsDeadlinesOnPromotionExpiresLeasesEarly) {
  // A new leader that does not restart every lease from its promotion expires those the old
  // leader kept renewing as soon as their grant time + TTL has passed.
  SimResult r;
  const uint64_t seed = first_failing_seed({"lessor-keeps-deadlines", Workload::kLock}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "LeaseExpiredEarly"));
}

TEST(PlantedBugs, AWatcherResumingAtTheWrongRevisionHasAGapOrADuplicate) {
  // One revision late skips the events of its last revision + 1; one early repeats its last.
  for (const char* bug : {"watch-resume-gap", "watch-resume-duplicate"}) {
    SimResult r;
    const uint64_t seed = first_failing_seed({bug, Workload::kRegister, 2}, r);
    std::cout << bug << " caught at seed " << seed << "\n";
    ASSERT_NE(seed, 0u);
    EXPECT_TRUE(has(r, "WatchStream"));
  }
}

// Multi-Paxos: its checker computes what is chosen from what acceptors made durable.
constexpr replica::EngineKind kPaxos = replica::EngineKind::kMultiPaxos;

TEST(PlantedBugs, AnAcceptorAnsweringBeforePersistingLetsALeaderLearnWhatIsNotChosen) {
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"answer-before-persist", Workload::kRegister, 0, kPaxos}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "LearnedIsChosen"));
}

TEST(PlantedBugs, ALeaderIgnoringPromisedValuesChangesAChosenValue) {
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"ignore-promised-values", Workload::kRegister, 0, kPaxos}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "ChosenNeverChanges") || has(r, "LearnedIsChosen") || has(r, "ChosenDurable"));
}

TEST(PlantedBugs, SkippingPhase1AfterARoundChangeBreaksRoundSafety) {
  // A leader refused with a higher round goes on proposing at the next round without phase 1:
  // two proposers lead one round, and a value another proposer had chosen can be replaced.
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"skip-phase1-on-round-change", Workload::kRegister, 0, kPaxos}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "RoundSafety") || has(r, "ChosenNeverChanges") || has(r, "LearnedIsChosen") ||
              has(r, "OneValuePerRound"));
}

// PBFT, four replicas, one of them Byzantine (the swarm makes every PBFT run a Byzantine one).
constexpr replica::EngineKind kPbft = replica::EngineKind::kPbft;

bool honest_replicas_disagree(const SimResult& r) {
  return has(r, "HonestReplicasAgree") || has(r, "HonestHistoriesAgree");
}

TEST(PlantedBugs, QuorumsOf2fLetAnEquivocatingPrimarySplitTheHonestReplicas) {
  SimResult r;
  const uint64_t seed = first_failing_seed({"small-quorums", Workload::kRegister, 0, kPbft, 4}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(honest_replicas_disagree(r));
}

// Forged votes commit the victims' side of an equivocation, or an altered message's garbage
// reaches the state machine.
TEST(PlantedBugs, AcceptingMessagesWithoutCheckingMacsActsOnForgedOrAlteredOnes) {
  SimResult r;
  const uint64_t seed = first_failing_seed({"skip-mac-check", Workload::kRegister, 0, kPbft, 4}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(honest_replicas_disagree(r) || has(r, "StoreApply"));
}

TEST(PlantedBugs, AViewChangeDroppingPreparedCertificatesLosesACommittedRequest) {
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"drop-prepared-in-view-change", Workload::kRegister, 0, kPbft, 4}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(honest_replicas_disagree(r));
}

// A member that fell behind the others' compacted logs fetches a state, and a Byzantine member
// serves one with a write nobody made. Crashes and partitions are what leave members behind.
TEST(PlantedBugs, InstallingAFetchedStateWithoutCheckingItsDigestTakesAByzantineState) {
  SimResult r;
  const uint64_t seed = first_failing_seed(
      {"unchecked-state", Workload::kRegister, 0, kPbft, 5, "byzantine,crash,partition"}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_TRUE(has(r, "StoreConvergence") || honest_replicas_disagree(r) ||
              r.linearizability.verdict == check::Verdict::kNotLinearizable);
}

// A request ordered twice (a reissuing Byzantine primary, or an honest replica that installed a
// fetched state and orders again what that state had executed) must take effect once: without
// its client and timestamp the state machine cannot tell, and an old write lands again.
TEST(PlantedBugs, ARequestOrderedTwiceTakesEffectTwiceWithoutItsClientsTimestamp) {
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"apply-every-copy", Workload::kRegister, 0, kPbft, 4}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_EQ(r.linearizability.verdict, check::Verdict::kNotLinearizable);
}

TEST(PlantedBugs, AClientAcceptingOneReplyTakesAByzantineReplicasLie) {
  SimResult r;
  const uint64_t seed =
      first_failing_seed({"client-accepts-one-reply", Workload::kRegister, 0, kPbft, 4}, r);
  std::cout << "caught at seed " << seed << "\n";
  ASSERT_NE(seed, 0u);
  EXPECT_EQ(r.linearizability.verdict, check::Verdict::kNotLinearizable);
}

}  // namespace
}  // namespace synod::sim
