// The mutex (fencing tokens), set and list models of synod check, on handmade histories.
#include <gtest/gtest.h>

#include "check/models.h"
#include "test_ops.h"

namespace synod::check {
namespace {

Operation op(uint64_t id, uint32_t client, OpKind kind, uint64_t t0, uint64_t t1,
             Outcome outcome = Outcome::kOk) {
  return testing::make_op(id, client, kind, "k", t0, t1, outcome);
}

Operation acquire(uint64_t id, uint32_t c, int64_t token, uint64_t t0, uint64_t t1) {
  Operation o = op(id, c, OpKind::kAcquire, t0, t1);
  o.token = token;
  return o;
}

Operation fenced(uint64_t id, uint32_t c, std::string v, int64_t token, uint64_t t0, uint64_t t1,
                 Outcome outcome = Outcome::kOk) {
  Operation o = op(id, c, OpKind::kFencedPut, t0, t1, outcome);
  o.value = std::move(v);
  o.token = token;
  return o;
}

Operation read_all(uint64_t id, uint32_t c, std::vector<std::string> got, uint64_t t0,
                   uint64_t t1) {
  Operation o = op(id, c, OpKind::kReadAll, t0, t1);
  o.elements = std::move(got);
  return o;
}

Operation add(uint64_t id, uint32_t c, OpKind kind, std::string x, uint64_t t0, uint64_t t1,
              Outcome outcome = Outcome::kOk) {
  Operation o = op(id, c, kind, t0, t1, outcome);
  o.value = std::move(x);
  return o;
}

TEST(MutexModel, AStaleHolderWhoseWriteSucceedsAfterTheNewHoldersFails) {
  std::vector<Operation> h = {acquire(0, 1, 5, 0, 1), acquire(1, 2, 7, 2, 3),
                              fenced(2, 2, "b", 7, 4, 5), fenced(3, 1, "a", 5, 6, 7)};
  EXPECT_EQ(check_history(h, ObjectModel::kMutex).verdict, Verdict::kNotLinearizable);
  h[3].outcome = Outcome::kFail;  // refused, as fencing demands
  EXPECT_EQ(check_history(h, ObjectModel::kMutex).verdict, Verdict::kLinearizable);
}

TEST(MutexModel, TokensMustIncreaseAcrossAcquisitions) {
  EXPECT_EQ(
      check_history({acquire(0, 1, 7, 0, 1), acquire(1, 2, 7, 2, 3)}, ObjectModel::kMutex).verdict,
      Verdict::kNotLinearizable);
  // Concurrent acquisitions may be ordered either way.
  EXPECT_EQ(check_history({acquire(0, 1, 9, 0, 10), acquire(1, 2, 7, 2, 12)}, ObjectModel::kMutex)
                .verdict,
            Verdict::kLinearizable);
}

TEST(MutexModel, ReadsSeeTheLastFencedWrite) {
  Operation r = op(2, 3, OpKind::kGet, 6, 7);
  r.output = "a";
  EXPECT_EQ(check_history({fenced(0, 1, "a", 5, 0, 1), fenced(1, 2, "b", 7, 2, 3), r},
                          ObjectModel::kMutex)
                .verdict,
            Verdict::kNotLinearizable);
}

// A lock history as the fault campaign records one: every cycle's release is indeterminate
// (timed out), and now and then a fenced write and an acquire too. Without pruning, each of
// those stays open to the end and the search branches on which of them took effect.
std::vector<Operation> long_lock_history(int cycles) {
  std::vector<Operation> h;
  uint64_t id = 0, t = 0;
  constexpr uint64_t kNever = UINT64_MAX / 2;
  for (int i = 0; i < cycles; ++i) {
    const uint32_t c = 1 + static_cast<uint32_t>(i % 3);
    const int64_t token = 10 + 2 * i;
    h.push_back(acquire(id++, c, token, t, t + 1));
    h.push_back(fenced(id++, c, "v" + std::to_string(i), token, t + 2, t + 3));
    if (i % 10 == 5) {
      h.push_back(
          fenced(id++, c, "lost" + std::to_string(i), token, t + 4, kNever, Outcome::kInfo));
      h.push_back(op(id++, 10 + c, OpKind::kAcquire, t + 4, kNever, Outcome::kInfo));
    }
    h.push_back(op(id++, 20 + c, OpKind::kRelease, t + 4, kNever, Outcome::kInfo));
    t += 10;
  }
  return h;
}

TEST(MutexModel, IndeterminateOperationsNobodyObservedNeedNoSearch) {
  const std::vector<Operation> h = long_lock_history(3000);
  CheckOptions budget;
  budget.max_states = 200'000;  // unpruned, the search runs out of this at once
  const LinearizabilityResult r = check_history(h, ObjectModel::kMutex, budget);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
  EXPECT_LT(r.states_explored, 50'000u);
  // A stale holder's write succeeding at the end is still caught.
  std::vector<Operation> bad = h;
  bad.push_back(fenced(1'000'000, 9, "stale", 12, 40'000, 40'001));
  EXPECT_EQ(check_history(bad, ObjectModel::kMutex, budget).verdict, Verdict::kNotLinearizable);
}

TEST(MutexModel, AnIndeterminateWriteThatWasReadStays) {
  // The read of "x" is explained only by the indeterminate write having taken effect.
  std::vector<Operation> h = {acquire(0, 1, 5, 0, 1), fenced(1, 1, "a", 5, 2, 3),
                              acquire(2, 2, 9, 4, 5),
                              fenced(3, 2, "x", 9, 6, 1000, Outcome::kInfo)};
  Operation r = op(4, 3, OpKind::kGet, 20, 21);
  r.output = "x";
  h.push_back(r);
  EXPECT_EQ(check_history(h, ObjectModel::kMutex).verdict, Verdict::kLinearizable);
  // With a token below the one already written it could not have taken effect.
  h[3].token = 3;
  EXPECT_EQ(check_history(h, ObjectModel::kMutex).verdict, Verdict::kNotLinearizable);
}

TEST(SetModel, ReadsReturnExactlyWhatWasAddedInAnyOrder) {
  std::vector<Operation> h = {add(0, 0, OpKind::kAdd, "1", 0, 1),
                              add(1, 1, OpKind::kAdd, "2", 2, 3), read_all(2, 2, {"2", "1"}, 4, 5)};
  EXPECT_EQ(check_history(h, ObjectModel::kSet).verdict, Verdict::kLinearizable);
  h[2].elements = {"2"};  // the completed add of 1 is lost
  EXPECT_EQ(check_history(h, ObjectModel::kSet).verdict, Verdict::kNotLinearizable);
}

TEST(SetModel, AnIndeterminateAddMayOrMayNotHaveHappened) {
  const Operation maybe = add(0, 0, OpKind::kAdd, "9", 0, 0, Outcome::kInfo);
  EXPECT_EQ(check_history({maybe, read_all(1, 1, {}, 5, 6)}, ObjectModel::kSet).verdict,
            Verdict::kLinearizable);
  EXPECT_EQ(check_history({maybe, read_all(1, 1, {"9"}, 5, 6)}, ObjectModel::kSet).verdict,
            Verdict::kLinearizable);
}

TEST(SetModel, ManyIndeterminateAddsNobodyReadNeedNoSearch) {
  std::vector<Operation> h;
  std::vector<std::string> acked;
  constexpr uint64_t kNever = UINT64_MAX / 2;
  for (uint64_t i = 0; i < 400; ++i) {
    const std::string x = std::to_string(i);
    if (i % 4 == 0) {
      h.push_back(
          add(i, 100 + static_cast<uint32_t>(i), OpKind::kAdd, x, i * 10, kNever, Outcome::kInfo));
    } else {
      h.push_back(add(i, 1, OpKind::kAdd, x, i * 10, i * 10 + 1));
      acked.push_back(x);
    }
  }
  h.push_back(read_all(1000, 2, acked, 10'000, 10'001));
  CheckOptions budget;
  budget.max_states = 200'000;
  const LinearizabilityResult r = check_history(h, ObjectModel::kSet, budget);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
  EXPECT_LT(r.states_explored, 10'000u);
  acked.pop_back();  // an acknowledged add missing from the read
  h.back().elements = acked;
  EXPECT_EQ(check_history(h, ObjectModel::kSet, budget).verdict, Verdict::kNotLinearizable);
}

TEST(ListModel, OrderMatters) {
  std::vector<Operation> h = {add(0, 0, OpKind::kAppend, "a", 0, 1),
                              add(1, 1, OpKind::kAppend, "b", 2, 3),
                              read_all(2, 2, {"a", "b"}, 4, 5)};
  EXPECT_EQ(check_history(h, ObjectModel::kList).verdict, Verdict::kLinearizable);
  h[2].elements = {"b", "a"};
  EXPECT_EQ(check_history(h, ObjectModel::kList).verdict, Verdict::kNotLinearizable);
}

}  // namespace
}  // namespace synod::check
