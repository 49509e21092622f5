#include "core/consensus/log.h"

#include <gtest/gtest.h>

namespace synod::raft {
namespace {

Entry e(uint64_t term, uint64_t index, std::string data = "") {
  return Entry{Term(term), Index(index), EntryType::kNormal, std::move(data)};
}

Log log_of(std::vector<Entry> entries) {
  return Log(SnapshotMeta{}, std::move(entries), Index(0), Index(0));
}

TEST(Log, AppendsAfterAMatchingPrefix) {
  Log log = log_of({e(1, 1), e(1, 2)});
  auto last = log.maybe_append(Index(2), Term(1), {e(2, 3)});
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, Index(3));
  EXPECT_EQ(log.last_term(), Term(2));
}

TEST(Log, RejectsWhenThePrefixDoesNotMatch) {
  Log log = log_of({e(1, 1), e(1, 2)});
  EXPECT_FALSE(log.maybe_append(Index(2), Term(2), {e(2, 3)}));
  EXPECT_FALSE(log.maybe_append(Index(5), Term(1), {}));
  EXPECT_EQ(log.last_index(), Index(2));
}

TEST(Log, TruncatesAConflictingSuffixOnly) {
  Log log = log_of({e(1, 1), e(1, 2), e(1, 3), e(1, 4)});
  auto last = log.maybe_append(Index(1), Term(1), {e(1, 2), e(3, 3)});
  ASSERT_TRUE(last);
  EXPECT_EQ(log.last_index(), Index(3));
  EXPECT_EQ(log.term(Index(3)), Term(3));
}

TEST(Log, KeepsEntriesAStaleAppendAlreadyHas) {
  Log log = log_of({e(1, 1), e(1, 2), e(1, 3)});
  ASSERT_TRUE(log.maybe_append(Index(0), Term(0), {e(1, 1)}));
  EXPECT_EQ(log.last_index(), Index(3));
}

TEST(Log, RefusesToTruncateCommittedEntries) {
  Log log = log_of({e(1, 1), e(1, 2)});
  log.commit_to(Index(2));
  EXPECT_FALSE(log.maybe_append(Index(1), Term(1), {e(2, 2)}));
  EXPECT_EQ(log.term(Index(2)), Term(1));
}

TEST(Log, RefusesNonContiguousEntries) {
  Log log = log_of({e(1, 1)});
  EXPECT_FALSE(log.maybe_append(Index(1), Term(1), {e(1, 3)}));
}

TEST(Log, FindConflictByTermSkipsAWholeTerm) {
  Log log = log_of({e(1, 1), e(2, 2), e(2, 3), e(2, 4), e(4, 5)});
  EXPECT_EQ(log.find_conflict_by_term(Index(5), Term(3)), Index(4));
  EXPECT_EQ(log.find_conflict_by_term(Index(4), Term(1)), Index(1));
  EXPECT_EQ(log.find_conflict_by_term(Index(9), Term(9)), Index(5));
}

TEST(Log, UpToDateComparesTermThenIndex) {
  Log log = log_of({e(1, 1), e(2, 2)});
  EXPECT_TRUE(log.is_up_to_date(Index(1), Term(3)));
  EXPECT_TRUE(log.is_up_to_date(Index(2), Term(2)));
  EXPECT_FALSE(log.is_up_to_date(Index(5), Term(1)));
  EXPECT_FALSE(log.is_up_to_date(Index(1), Term(2)));
}

TEST(Log, PersistedIgnoresAReplacedEntry) {
  Log log = log_of({});
  log.append({e(1, 1), e(1, 2)});
  log.mark_sent(Index(2));
  ASSERT_TRUE(log.maybe_append(Index(1), Term(1), {e(2, 2)}));
  log.persisted_to(Index(2), Term(1));  // the driver persisted the old entry 2
  EXPECT_LT(log.persisted(), Index(2));
}

TEST(Log, CompactKeepsTheSuffix) {
  Log log = log_of({e(1, 1), e(1, 2), e(1, 3)});
  log.commit_to(Index(3));
  log.applied_to(Index(2));
  log.compact(SnapshotMeta{Index(2), Term(1), {}});
  EXPECT_EQ(log.first_index(), Index(3));
  EXPECT_EQ(log.term(Index(2)), Term(1));
  EXPECT_FALSE(log.term(Index(1)).has_value());
}

TEST(Log, RestoreReplacesADivergentLog) {
  Log log = log_of({e(1, 1), e(1, 2)});
  log.restore(SnapshotMeta{Index(5), Term(3), {}});
  EXPECT_EQ(log.last_index(), Index(5));
  EXPECT_EQ(log.committed(), Index(5));
  EXPECT_EQ(log.first_index(), Index(6));
}

// Multi-Paxos acceptors: a run of a higher round overwrites the slots it names and keeps the
// slots after it; what changed is handed out again (the Ready rewrites from there) and is no
// longer counted as durable.
TEST(Log, OverwriteReplacesTheRunAndKeepsTheSlotsAfterIt) {
  Log log = log_of({e(1, 1, "a"), e(1, 2, "b"), e(1, 3, "c"), e(1, 4, "d")});
  log.mark_sent(Index(4));
  log.persisted_to(Index(4), Term(1));
  auto first = log.overwrite({e(3, 2, "B"), e(3, 3, "C")});
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, Index(2));
  EXPECT_EQ(log.last_index(), Index(4));
  EXPECT_EQ(log.at(Index(2)).data, "B");
  EXPECT_EQ(log.at(Index(4)).data, "d");  // kept: an older round's accepted value
  EXPECT_EQ(log.term(Index(4)), Term(1));
  EXPECT_EQ(log.unsent_from(), Index(2));
  EXPECT_EQ(log.persisted(), Index(1));
}

TEST(Log, OverwriteLeavesChosenSlotsAndSameRoundSlotsAlone) {
  Log log = Log(SnapshotMeta{}, {e(1, 1, "a"), e(2, 2, "b")}, Index(1), Index(0));
  EXPECT_FALSE(log.overwrite({e(3, 1, "x"), e(2, 2, "b")}));  // slot 1 chosen; slot 2 the same
  EXPECT_EQ(log.at(Index(1)).data, "a");
  auto first = log.overwrite({e(2, 2, "b"), e(2, 3, "c")});  // extends the log
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, Index(3));
  EXPECT_EQ(log.last_index(), Index(3));
}

// PBFT: a run is written over whatever the slots held (a new view's choice, a prepared mark in
// the same view), the slots after it stay, and the log is handed out again from its first.
TEST(Log, ReplaceWritesWhateverTheSlotsHeldAndKeepsTheRest) {
  Log log = log_of({e(1, 1, "a"), e(1, 2, "b"), e(1, 3, "c")});
  log.mark_sent(Index(3));
  log.persisted_to(Index(3), Term(1));
  log.replace({e(1, 2, "b prepared"), e(0, 3, "c'"), e(2, 4, "d")});
  EXPECT_EQ(log.at(Index(2)).data, "b prepared");
  EXPECT_EQ(log.term(Index(3)), Term(0));  // any term: the engine decides what may replace
  EXPECT_EQ(log.last_index(), Index(4));
  EXPECT_EQ(log.unsent_from(), Index(2));
  EXPECT_EQ(log.persisted(), Index(1));
  log.replace({e(2, 2, "B")});
  EXPECT_EQ(log.at(Index(4)).data, "d");  // kept
}

}  // namespace
}  // namespace synod::raft
