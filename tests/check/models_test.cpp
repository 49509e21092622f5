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
