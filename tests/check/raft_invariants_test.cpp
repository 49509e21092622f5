// The Raft invariant checker: each invariant must fire on a handmade violation and stay quiet
// on the legal case next to it; a real cluster driven through the hooks must stay clean.
#include "check/raft_invariants.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>

#include "core/consensus/conf.h"
#include "replica/memory_log.h"

namespace synod::check {
namespace {

using raft::ConfState;
using raft::Entry;
using raft::EntryType;
using raft::Index;
using raft::NodeId;
using raft::Persisted;
using raft::Log;
using raft::Role;
using raft::SnapshotMeta;
using raft::Term;

Entry entry(uint64_t index, uint64_t term, std::string data = "x") {
  return Entry{Term(term), Index(index), EntryType::kNormal, std::move(data)};
}

Entry conf_entry(uint64_t index, uint64_t term, std::vector<uint64_t> voters) {
  ConfState conf;
  for (uint64_t v : voters) conf.voters.push_back(NodeId(v));
  return Entry{Term(term), Index(index), EntryType::kConfChange, raft::encode_conf(conf)};
}

ConfState voters(std::vector<uint64_t> ids) {
  ConfState conf;
  for (uint64_t v : ids) conf.voters.push_back(NodeId(v));
  return conf;
}

// A log holding `entries` after `snapshot`, committed up to `committed`.
Log log_of(std::vector<Entry> entries, uint64_t committed = 0, SnapshotMeta snapshot = {}) {
  return Log(snapshot, std::move(entries), Index(committed), snapshot.index);
}

SnapshotMeta snapshot_at(uint64_t index, uint64_t term) {
  SnapshotMeta meta;
  meta.index = Index(index);
  meta.term = Term(term);
  return meta;
}

size_t count(const RaftInvariants& inv, const std::string& name) {
  size_t n = 0;
  for (const Violation& v : inv.violations()) n += v.invariant == name ? 1 : 0;
  return n;
}
bool has(const RaftInvariants& inv, const std::string& name) {
  return count(inv, name) > 0;
}

// A one-voter cluster of its own: it elects itself on ticks. Two of these with different ids
// stand in for two nodes that each believe they lead the same term.
std::unique_ptr<raft::Raft> lone_leader(uint64_t id) {
  raft::Config c;
  c.id = NodeId(id);
  c.initial_conf.voters = {NodeId(id)};
  auto r = std::make_unique<raft::Raft>(c, Persisted{});
  for (int i = 0; i < 30 && r->role() != Role::kLeader; ++i) r->tick();
  EXPECT_EQ(r->role(), Role::kLeader);
  return r;
}

// --- Election Safety ---------------------------------------------------------------------------

TEST(ElectionSafety, TwoRealLeadersOfOneTermAreReported) {
  RaftInvariants inv;
  auto a = lone_leader(1);
  auto b = lone_leader(2);
  ASSERT_EQ(a->term(), b->term());
  inv.on_step(*a);
  inv.on_step(*a);
  EXPECT_TRUE(inv.ok());
  inv.on_step(*b);
  EXPECT_TRUE(has(inv, "ElectionSafety"));
}

TEST(ElectionSafety, OneLeaderPerTermAcrossTermsIsClean) {
  RaftInvariants inv;
  const Log log;
  inv.observe_leader(NodeId(1), Term(1), log);
  inv.observe_leader(NodeId(2), Term(2), log);
  inv.observe_leader(NodeId(1), Term(3), log);
  inv.observe_leader(NodeId(1), Term(3), log);
  EXPECT_TRUE(inv.ok());
}

TEST(ElectionSafety, DetailNamesTheTermAndBothLeaders) {
  RaftInvariants inv;
  const Log log;
  inv.observe_leader(NodeId(1), Term(7), log);
  inv.observe_leader(NodeId(3), Term(7), log);
  ASSERT_EQ(inv.violations().size(), 1u);
  EXPECT_EQ(inv.violations()[0].detail, "term 7 has two leaders: n1 and n3");
}

// --- Leader Append-Only --------------------------------------------------------------------------

TEST(LeaderAppendOnly, LeaderRewritingAnIndexItHandedOutIsReported) {
  RaftInvariants inv;
  const Log log = log_of({entry(1, 2), entry(2, 2, "y")});
  inv.observe_entries(NodeId(1), Role::kLeader, Term(2), {entry(1, 2), entry(2, 2)}, log);
  inv.observe_entries(NodeId(1), Role::kLeader, Term(2), {entry(2, 2, "y")}, log);
  EXPECT_TRUE(has(inv, "LeaderAppendOnly"));
}

TEST(LeaderAppendOnly, AppendsAfterEarlierBatchesAreClean) {
  RaftInvariants inv;
  const Log log = log_of({entry(1, 2), entry(2, 2), entry(3, 2)});
  inv.observe_entries(NodeId(1), Role::kLeader, Term(2), {entry(1, 2), entry(2, 2)}, log);
  inv.observe_entries(NodeId(1), Role::kLeader, Term(2), {entry(3, 2)}, log);
  EXPECT_TRUE(inv.ok());
}

TEST(LeaderAppendOnly, FollowersAndLeadersOfNewTermsMayOverwrite) {
  RaftInvariants inv;
  const Log log = log_of({entry(1, 2), entry(2, 3)});
  inv.observe_entries(NodeId(1), Role::kLeader, Term(2), {entry(1, 2), entry(2, 2)}, log);
  // n1 lost leadership, then led term 3 and replaced its uncommitted entry 2.
  inv.observe_entries(NodeId(1), Role::kFollower, Term(3), {entry(2, 3, "f")}, log);
  inv.observe_entries(NodeId(1), Role::kLeader, Term(4), {entry(2, 4)}, log);
  EXPECT_FALSE(has(inv, "LeaderAppendOnly"));
}

// --- Log Matching --------------------------------------------------------------------------------

TEST(LogMatching, DifferentDataAtOneIndexAndTermFromRealNodesIsReported) {
  RaftInvariants inv;
  auto a = lone_leader(1);
  auto b = lone_leader(2);
  a->propose("x");
  b->propose("y");
  inv.on_ready(*a, a->ready());
  EXPECT_FALSE(has(inv, "LogMatching"));
  inv.on_ready(*b, b->ready());
  EXPECT_TRUE(has(inv, "LogMatching"));
}

TEST(LogMatching, SameEntryAfterDifferentPreviousTermsIsReported) {
  RaftInvariants inv;
  const Log a = log_of({entry(1, 1), entry(2, 3)});
  const Log b = log_of({entry(1, 2), entry(2, 3)});
  inv.observe_entries(NodeId(1), Role::kFollower, Term(3), {entry(2, 3)}, a);
  inv.observe_entries(NodeId(2), Role::kFollower, Term(3), {entry(2, 3)}, b);
  ASSERT_TRUE(has(inv, "LogMatching"));
  EXPECT_NE(inv.violations()[0].detail.find("follows term 1 on n1 but term 2 on n2"),
            std::string::npos);
}

TEST(LogMatching, PreviousTermComesFromTheSnapshotBoundary) {
  RaftInvariants inv;
  const Log full = log_of({entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 2)});
  const Log same = log_of({entry(4, 2)}, 0, snapshot_at(3, 1));
  const Log other = log_of({entry(4, 2)}, 0, snapshot_at(3, 2));
  inv.observe_entries(NodeId(1), Role::kFollower, Term(2), {entry(4, 2)}, full);
  inv.observe_entries(NodeId(2), Role::kFollower, Term(2), {entry(4, 2)}, same);
  EXPECT_TRUE(inv.ok());
  inv.observe_entries(NodeId(3), Role::kFollower, Term(2), {entry(4, 2)}, other);
  EXPECT_TRUE(has(inv, "LogMatching"));
}

TEST(LogMatching, UnknownPreviousTermIsSkippedNotReported) {
  RaftInvariants inv;
  // The entry handed out lies below the log's snapshot: the term before it is compacted away.
  const Log compacted = log_of({}, 0, snapshot_at(10, 2));
  const Log full = log_of({entry(1, 1), entry(2, 3)});
  inv.observe_entries(NodeId(1), Role::kFollower, Term(3), {entry(2, 3)}, compacted);
  inv.observe_entries(NodeId(2), Role::kFollower, Term(3), {entry(2, 3)}, full);
  EXPECT_TRUE(inv.ok());
  // The first known previous term is kept: a later disagreement with it is still caught.
  const Log other = log_of({entry(1, 2), entry(2, 3)});
  inv.observe_entries(NodeId(3), Role::kFollower, Term(3), {entry(2, 3)}, other);
  EXPECT_TRUE(has(inv, "LogMatching"));
}

// --- State Machine Safety ------------------------------------------------------------------------

TEST(StateMachineSafety, DifferentAppliedEntriesAtOneIndexAreReported) {
  RaftInvariants inv;
  inv.on_apply(NodeId(1), entry(1, 1, "a"));
  inv.on_apply(NodeId(2), entry(1, 1, "a"));
  EXPECT_TRUE(inv.ok());
  inv.on_apply(NodeId(3), entry(1, 2, "b"));
  EXPECT_TRUE(has(inv, "StateMachineSafety"));
}

TEST(StateMachineSafety, SameTermDifferentDataIsReported) {
  RaftInvariants inv;
  inv.on_apply(NodeId(1), entry(4, 2, "a"));
  inv.on_apply(NodeId(2), entry(4, 2, "b"));
  EXPECT_TRUE(has(inv, "StateMachineSafety"));
}

TEST(StateMachineSafety, ACommitIndexPassingADifferentEntryIsReportedBeforeAnyApply) {
  RaftInvariants inv;
  inv.on_apply(NodeId(1), entry(2, 1, "a"));
  inv.observe_commit(NodeId(2), log_of({entry(1, 1), entry(2, 2, "b")}, /*committed=*/1));
  EXPECT_TRUE(inv.ok());  // index 2 is not committed on n2 yet
  inv.observe_commit(NodeId(2), log_of({entry(1, 1), entry(2, 2, "b")}, /*committed=*/2));
  EXPECT_TRUE(has(inv, "StateMachineSafety"));
}

TEST(StateMachineSafety, RealNodeCommittingADifferentEntryIsReported) {
  RaftInvariants inv;
  auto a = lone_leader(1);
  a->propose("x");
  inv.on_ready(*a, a->ready());
  a->advance();  // its own write is durable: a lone voter commits
  raft::Ready rd = a->ready();
  ASSERT_FALSE(rd.committed.empty());
  EXPECT_TRUE(inv.ok());
  inv.on_apply(NodeId(2), Entry{rd.committed.back().term, rd.committed.back().index,
                                EntryType::kNormal, "not x"});
  inv.on_ready(*a, rd);
  EXPECT_TRUE(has(inv, "StateMachineSafety"));
}

TEST(StateMachineSafety, SnapshotDisagreeingWithACommittedEntryIsReported) {
  RaftInvariants inv;
  inv.on_apply(NodeId(1), entry(5, 2));
  inv.on_snapshot_install(NodeId(2), snapshot_at(5, 2));
  EXPECT_TRUE(inv.ok());
  inv.on_snapshot_install(NodeId(3), snapshot_at(5, 3));
  EXPECT_TRUE(has(inv, "StateMachineSafety"));
}

// --- Leader Completeness -------------------------------------------------------------------------

TEST(LeaderCompleteness, RealLeaderMissingACommittedEntryIsReported) {
  RaftInvariants inv;
  inv.on_apply(NodeId(2), entry(5, 1, "committed"));
  auto a = lone_leader(1);  // its log ends at its no-op, index 1
  inv.on_step(*a);
  EXPECT_TRUE(has(inv, "LeaderCompleteness"));
}

TEST(LeaderCompleteness, LeaderHoldingADifferentTermAtACommittedIndexIsReported) {
  RaftInvariants inv;
  inv.on_apply(NodeId(2), entry(1, 1));
  inv.on_apply(NodeId(2), entry(2, 1));
  inv.observe_leader(NodeId(1), Term(3), log_of({entry(1, 1), entry(2, 2)}));
  ASSERT_TRUE(has(inv, "LeaderCompleteness"));
  EXPECT_NE(inv.violations()[0].detail.find("lacks entry 2 (term 1)"), std::string::npos);
}

TEST(LeaderCompleteness, LeaderHoldingEveryCommittedEntryIsClean) {
  RaftInvariants inv;
  inv.on_apply(NodeId(2), entry(1, 1));
  inv.on_apply(NodeId(2), entry(2, 2));
  inv.observe_leader(NodeId(1), Term(3), log_of({entry(1, 1), entry(2, 2), entry(3, 3)}));
  EXPECT_TRUE(inv.ok());
}

TEST(LeaderCompleteness, EntriesCoveredByTheLeadersSnapshotCount) {
  RaftInvariants inv;
  for (uint64_t i = 1; i <= 4; ++i) inv.on_apply(NodeId(2), entry(i, 1));
  inv.observe_leader(NodeId(1), Term(2), log_of({entry(5, 2)}, 0, snapshot_at(4, 1)));
  EXPECT_TRUE(inv.ok());
}

TEST(LeaderCompleteness, EntriesCommittedOnlyOnceALaterLeaderWasKnownAreNotRequired) {
  RaftInvariants inv;
  inv.observe_leader(NodeId(2), Term(5), log_of({}));
  inv.on_apply(NodeId(2), entry(1, 5));  // possibly committed in term 5
  // A stale leader of term 4 shows up late: it need not hold what term 5 committed.
  inv.observe_leader(NodeId(1), Term(4), log_of({}));
  EXPECT_TRUE(inv.ok());
}

// --- Leader commits own term
// ----------------------------------------------------------------------

TEST(LeaderCommitsOwnTerm, ALeaderCommittingAnOlderTermsEntryByCountIsReported) {
  RaftInvariants inv;
  const Log before = log_of({entry(1, 1), entry(2, 1), entry(3, 3)}, 1);
  inv.observe_leader_commit(NodeId(1), Term(3), before);  // elected with commit 1
  const Log after = log_of({entry(1, 1), entry(2, 1), entry(3, 3)}, 2);
  inv.observe_leader_commit(NodeId(1), Term(3), after);  // 2 is of term 1
  ASSERT_TRUE(has(inv, "LeaderCommitsOwnTerm"));
  EXPECT_NE(inv.violations()[0].detail.find("commit index to 2, an entry of term 1"),
            std::string::npos);
}

TEST(LeaderCommitsOwnTerm, CommittingItsOwnEntryCommitsTheOlderOnesWithIt) {
  RaftInvariants inv;
  inv.observe_leader_commit(NodeId(1), Term(3), log_of({entry(1, 1), entry(2, 1), entry(3, 3)}, 1));
  inv.observe_leader_commit(NodeId(1), Term(3), log_of({entry(1, 1), entry(2, 1), entry(3, 3)}, 3));
  // A new term starts from whatever commit index the node had as a follower.
  inv.observe_leader_commit(NodeId(1), Term(5), log_of({entry(1, 1), entry(2, 1), entry(3, 3)}, 3));
  EXPECT_TRUE(inv.ok());
}

// --- CommittedDurable ----------------------------------------------------------------------------

struct Cluster {
  std::map<NodeId, Persisted> disks;
  std::map<NodeId, const Persisted*> view() const {
    std::map<NodeId, const Persisted*> out;
    for (const auto& [id, p] : disks) out[id] = &p;
    return out;
  }
};

TEST(CommittedDurable, CommittedEntryLeftOnAMinorityIsReported) {
  RaftInvariants inv;
  inv.set_initial_conf(voters({1, 2, 3}));
  inv.on_apply(NodeId(1), entry(1, 1));
  Cluster c;
  c.disks[NodeId(1)].entries = {entry(1, 1)};
  c.disks[NodeId(2)].entries = {entry(1, 1)};
  c.disks[NodeId(3)];
  inv.on_crash(NodeId(3), c.view());
  EXPECT_TRUE(inv.ok());
  c.disks[NodeId(2)].entries.clear();  // n2's write was never fsynced
  inv.on_crash(NodeId(2), c.view());
  ASSERT_TRUE(has(inv, "CommittedDurable"));
  EXPECT_NE(inv.violations()[0].detail.find("durable on only 1 of voters {n1,n2,n3}"),
            std::string::npos);
}

TEST(CommittedDurable, DifferentTermAtTheIndexDoesNotCount) {
  RaftInvariants inv;
  inv.set_initial_conf(voters({1, 2, 3}));
  inv.on_apply(NodeId(1), entry(1, 2));
  Cluster c;
  c.disks[NodeId(1)].entries = {entry(1, 2)};
  c.disks[NodeId(2)].entries = {entry(1, 1)};
  c.disks[NodeId(3)].entries = {entry(1, 1)};
  inv.on_crash(NodeId(1), c.view());
  EXPECT_TRUE(has(inv, "CommittedDurable"));
}

TEST(CommittedDurable, SnapshotsCoverCommittedEntries) {
  RaftInvariants inv;
  inv.set_initial_conf(voters({1, 2, 3}));
  inv.on_apply(NodeId(1), entry(3, 1));
  Cluster c;
  c.disks[NodeId(1)].snapshot = raft::Snapshot{snapshot_at(3, 1), "image"};
  c.disks[NodeId(2)].entries = {entry(1, 1), entry(2, 1), entry(3, 1)};
  c.disks[NodeId(3)];
  inv.on_crash(NodeId(3), c.view());
  EXPECT_TRUE(inv.ok());
}

TEST(CommittedDurable, QuorumsCountInTheLatestCommittedConfiguration) {
  RaftInvariants inv;
  inv.set_initial_conf(voters({1, 2, 3}));
  inv.on_apply(NodeId(1), conf_entry(1, 1, {1, 2, 3, 4, 5}));
  inv.on_apply(NodeId(1), entry(2, 1));
  Cluster c;
  for (uint64_t id : {1, 2}) c.disks[NodeId(id)].entries = {conf_entry(1, 1, {1, 2, 3, 4, 5})};
  for (uint64_t id : {1, 2}) c.disks[NodeId(id)].entries.push_back(entry(2, 1));
  for (uint64_t id : {3, 4, 5}) c.disks[NodeId(id)];
  inv.on_crash(NodeId(5), c.view());  // a quorum of {1,2,3} once, but not of the five
  EXPECT_TRUE(has(inv, "CommittedDurable"));
}

TEST(CommittedDurable, AQuorumOfAnAppendedConfigurationIsEnough) {
  // thesis 4.1: the leader counts quorums in the newest configuration in its log, committed or
  // not; removing n4 lets {n1, n2} commit while the committed configuration has four voters.
  RaftInvariants inv;
  inv.set_initial_conf(voters({1, 2, 3, 4}));
  const Entry change = conf_entry(2, 1, {1, 2, 3});
  const Log log = log_of({entry(1, 1), change});
  inv.observe_entries(NodeId(1), Role::kLeader, Term(1), {entry(1, 1), change}, log);
  inv.on_apply(NodeId(1), entry(1, 1));
  Cluster c;
  for (uint64_t id : {1, 2}) c.disks[NodeId(id)].entries = {entry(1, 1), change};
  for (uint64_t id : {3, 4}) c.disks[NodeId(id)];
  inv.on_crash(NodeId(4), c.view());
  EXPECT_TRUE(inv.ok());
}

TEST(CommittedDurable, AnEvenVoterSetIsSafeWithHalfItsVotersHolding) {
  // Every quorum of six voters (four) contains one of any three: no leader can be elected
  // without a voter that holds the entry, so three holders are enough, though not a majority.
  RaftInvariants inv;
  inv.set_initial_conf(voters({1, 2, 3, 4, 5, 6}));
  inv.on_apply(NodeId(1), entry(1, 1));
  Cluster c;
  for (uint64_t id : {1, 2, 3}) c.disks[NodeId(id)].entries = {entry(1, 1)};
  for (uint64_t id : {4, 5, 6}) c.disks[NodeId(id)];
  inv.on_crash(NodeId(6), c.view());
  EXPECT_TRUE(inv.ok());
  c.disks[NodeId(3)].entries.clear();  // two of six: a quorum {3,4,5,6} lacks it
  inv.on_crash(NodeId(3), c.view());
  ASSERT_TRUE(has(inv, "CommittedDurable"));
  EXPECT_NE(inv.violations()[0].detail.find("durable on only 2 of voters {n1,n2,n3,n4,n5,n6}"),
            std::string::npos);
}

TEST(CommittedDurable, AConfigurationCountsFromTheStepThatAppendedIt) {
  // thesis 4.1: a node uses the newest configuration in its log as soon as it is there. Here
  // node 1's log holds {n1,n2,n3} at index 2, which no Ready has handed out: on_step must make
  // the checker count quorums in it, where the committed configuration has five voters.
  Persisted disk;
  disk.entries = {entry(1, 1), conf_entry(2, 1, {1, 2, 3})};
  raft::Config config;
  config.id = NodeId(1);
  config.initial_conf = voters({1, 2, 3, 4, 5});
  const raft::Raft node(config, disk);
  ASSERT_EQ(node.conf(), voters({1, 2, 3}));
  Cluster c;
  for (uint64_t id : {1, 2}) c.disks[NodeId(id)].entries = {entry(1, 1)};
  for (uint64_t id : {3, 4, 5}) c.disks[NodeId(id)];
  for (const bool stepped : {false, true}) {
    RaftInvariants inv;
    inv.set_initial_conf(voters({1, 2, 3, 4, 5}));
    if (stepped) inv.on_step(node);
    inv.on_apply(NodeId(1), entry(1, 1));
    inv.on_crash(NodeId(5), c.view());
    EXPECT_EQ(inv.ok(), stepped);  // two of five, but two of {n1,n2,n3} is enough
  }
}

TEST(CommittedDurable, NothingCommittedOrNoMembershipIsNotChecked) {
  RaftInvariants inv;
  Cluster c;
  c.disks[NodeId(1)];
  inv.on_crash(NodeId(1), c.view());  // nothing committed
  inv.on_apply(NodeId(1), entry(1, 1));
  inv.on_crash(NodeId(1), c.view());  // no membership known
  EXPECT_TRUE(inv.ok());
}

// --- Bounds --------------------------------------------------------------------------------------

TEST(RaftInvariants, ViolationsAreBoundedPerInvariantAndCounted) {
  RaftInvariants inv;
  for (uint64_t i = 1; i <= 100; ++i) {
    inv.on_apply(NodeId(1), entry(i, 1, "a"));
    inv.on_apply(NodeId(2), entry(i, 2, "b"));
  }
  EXPECT_EQ(count(inv, "StateMachineSafety"), RaftInvariants::kMaxPerInvariant);
  EXPECT_EQ(inv.suppressed(), 100 - RaftInvariants::kMaxPerInvariant);
  // A flood of one kind leaves room for the others.
  inv.observe_leader(NodeId(1), Term(9), log_of({}));
  inv.observe_leader(NodeId(2), Term(9), log_of({}));
  EXPECT_TRUE(has(inv, "ElectionSafety"));
}

TEST(RaftInvariants, RepeatedIdenticalViolationIsRecordedOnce) {
  RaftInvariants inv;
  const Log log;
  inv.observe_leader(NodeId(1), Term(2), log);
  for (int i = 0; i < 10; ++i) inv.observe_leader(NodeId(2), Term(2), log);
  EXPECT_EQ(inv.violations().size(), 1u);
  EXPECT_EQ(inv.suppressed(), 0u);
}

// --- A real cluster through the driver hooks -----------------------------------------------------

// A minimal synchronous driver: every Ready is persisted at once, messages are delivered in
// order, nothing is lost. Enough to show the hooks stay quiet on a correct run with a crash.
class MiniCluster {
 public:
  MiniCluster(int n, RaftInvariants& inv) : inv_(inv) {
    for (int i = 1; i <= n; ++i) conf_.voters.push_back(NodeId(i));
    inv_.set_initial_conf(conf_);
    for (int i = 1; i <= n; ++i) start(NodeId(i));
  }

  void round(uint64_t round_no) {
    for (auto& [id, node] : nodes_) {
      if (!node.up) continue;
      node.raft->tick();
      inv_.on_step(*node.raft);
      drain(node);
    }
    deliver_all();
    if (raft::Raft* l = leader(); l != nullptr && round_no % 3 == 0) {
      l->propose("cmd" + std::to_string(round_no));
      inv_.on_step(*l);
      drain(nodes_.at(l->id()));
      deliver_all();
    }
  }

  void crash(NodeId id) {
    nodes_.at(id).up = false;
    std::map<NodeId, const Persisted*> durable;
    for (const auto& [nid, node] : nodes_) durable[nid] = &node.durable;
    inv_.on_crash(id, durable);
  }
  void restart(NodeId id) { start(id); }

  raft::Raft* leader() {
    for (auto& [id, node] : nodes_) {
      if (node.up && node.raft->role() == Role::kLeader) return node.raft.get();
    }
    return nullptr;
  }
  uint64_t max_applied() const { return max_applied_; }

 private:
  struct Node {
    std::unique_ptr<raft::Raft> raft;
    Persisted durable;
    bool up = true;
  };

  void start(NodeId id) {
    raft::Config c;
    c.id = id;
    c.seed = id.value * 7919;
    c.initial_conf = conf_;
    Node& node = nodes_[id];
    node.up = true;
    node.raft = std::make_unique<raft::Raft>(c, node.durable);
    inv_.on_step(*node.raft);
  }

  void drain(Node& node) {
    for (int i = 0; i < 100 && node.raft->has_ready(); ++i) {
      raft::Ready rd = node.raft->ready();
      inv_.on_ready(*node.raft, rd);
      replica::write_ready(node.durable, rd);
      for (auto* msgs : {&rd.immediate_messages, &rd.messages}) {
        mailbox_.insert(mailbox_.end(), msgs->begin(), msgs->end());
      }
      for (const Entry& e : rd.committed) {
        inv_.on_apply(node.raft->id(), e);
        max_applied_ = std::max(max_applied_, e.index.value);
      }
      node.raft->advance();
      inv_.on_step(*node.raft);
    }
  }

  void deliver_all() {
    for (int i = 0; i < 10'000 && !mailbox_.empty(); ++i) {
      raft::Message m = std::move(mailbox_.front());
      mailbox_.pop_front();
      auto it = nodes_.find(m.to);
      if (it == nodes_.end() || !it->second.up) continue;
      it->second.raft->step(m);
      inv_.on_step(*it->second.raft);
      drain(it->second);
    }
  }

  RaftInvariants& inv_;
  ConfState conf_;
  std::map<NodeId, Node> nodes_;
  std::deque<raft::Message> mailbox_;
  uint64_t max_applied_ = 0;
};

TEST(RaftInvariants, CorrectClusterWithACrashedLeaderStaysClean) {
  RaftInvariants inv;
  MiniCluster cluster(3, inv);
  NodeId crashed;
  for (uint64_t r = 1; r <= 400; ++r) {
    if (r == 150) {
      raft::Raft* l = cluster.leader();
      ASSERT_NE(l, nullptr);
      crashed = l->id();
      cluster.crash(crashed);
    }
    if (r == 220) cluster.restart(crashed);
    cluster.round(r);
  }
  for (const Violation& v : inv.violations()) ADD_FAILURE() << v.invariant << ": " << v.detail;
  EXPECT_GT(cluster.max_applied(), 50u);
}

}  // namespace
}  // namespace synod::check
