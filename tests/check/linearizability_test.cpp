// Linearizability checker: handmade histories with known verdicts (the subtle cases named after
// the anomaly they contain), failing windows, the model-independent search, and randomized
// histories checked against a brute-force reference. Randomized tests print their seeds.
#include "check/linearizability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>

#include "brute_force.h"
#include "check/generate.h"
#include "core/rand.h"

namespace synod::check {
namespace {

using testing::brute_force_linearizable;

class HistoryBuilder {
 public:
  HistoryBuilder& put(uint32_t c, const std::string& k, const std::string& v, uint64_t t0,
                      uint64_t t1, Outcome o = Outcome::kOk) {
    return add({next_++, c, OpKind::kPut, k, v, "", t0, t1, o, std::nullopt, false});
  }
  HistoryBuilder& get(uint32_t c, const std::string& k, std::optional<std::string> v, uint64_t t0,
                      uint64_t t1, Outcome o = Outcome::kOk) {
    return add({next_++, c, OpKind::kGet, k, "", "", t0, t1, o, std::move(v), false});
  }
  HistoryBuilder& cas(uint32_t c, const std::string& k, const std::string& from,
                      const std::string& to, bool swapped, uint64_t t0, uint64_t t1,
                      Outcome o = Outcome::kOk) {
    return add({next_++, c, OpKind::kCas, k, to, from, t0, t1, o, std::nullopt, swapped});
  }
  const std::vector<Operation>& ops() const { return ops_; }

 private:
  HistoryBuilder& add(Operation op) {
    ops_.push_back(std::move(op));
    return *this;
  }
  std::vector<Operation> ops_;
  uint64_t next_ = 0;
};

Verdict verdict(const HistoryBuilder& h) {
  return check_kv(h.ops()).verdict;
}

std::vector<uint64_t> ids(const std::vector<Operation>& ops) {
  std::vector<uint64_t> out;
  for (const Operation& op : ops) out.push_back(op.id);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Verdicts on handmade histories.

TEST(Linearizability, EmptyHistoryIsLinearizable) {
  EXPECT_EQ(check_kv({}).verdict, Verdict::kLinearizable);
}

TEST(Linearizability, SequentialHistoryIsLinearizable) {
  HistoryBuilder h;
  h.get(0, "x", std::nullopt, 0, 1).put(0, "x", "a", 2, 3).get(1, "x", "a", 4, 5);
  h.cas(1, "x", "a", "b", true, 6, 7).cas(0, "x", "a", "c", false, 8, 9).get(0, "x", "b", 10, 11);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, ConcurrentWritesMayBeSeenInEitherOrder) {
  for (const char* seen : {"a", "b"}) {
    HistoryBuilder h;
    h.put(0, "x", "a", 0, 10).put(1, "x", "b", 0, 10).get(2, "x", seen, 11, 12);
    EXPECT_EQ(verdict(h), Verdict::kLinearizable) << seen;
  }
}

TEST(Linearizability, ReadsDuringAWriteMaySeeOldThenNew) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(1, "x", "b", 2, 20).get(2, "x", "a", 3, 4).get(2, "x", "b", 5, 6);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, ReadsDuringAWriteMayNotSeeNewThenOld) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(1, "x", "b", 2, 20).get(2, "x", "b", 3, 4).get(2, "x", "a", 5, 6);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, ReadersMayNotDisagreeOnTheOrderOfCompletedWrites) {
  // Both writes completed before either read: the reads fix one order, so a later read cannot
  // go back to the first value.
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 5).put(1, "x", "b", 0, 5).get(2, "x", "a", 6, 7).get(3, "x", "b", 8, 9);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, StaleReadAfterCompletedWriteFails) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(0, "x", "b", 2, 3).get(1, "x", "a", 4, 5);
  const LinearizabilityResult r = check_kv(h.ops());
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "x");
  EXPECT_NE(r.explanation.find("get x -> a"), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("holding \"b\""), std::string::npos) << r.explanation;
}

TEST(Linearizability, OperationsThatTouchAreConcurrent) {
  // The write returns at the instant the read is invoked: either may come first.
  HistoryBuilder touching;
  touching.put(0, "x", "a", 0, 5).get(1, "x", std::nullopt, 5, 6);
  EXPECT_EQ(verdict(touching), Verdict::kLinearizable);
  HistoryBuilder after;
  after.put(0, "x", "a", 0, 5).get(1, "x", std::nullopt, 6, 7);
  EXPECT_EQ(verdict(after), Verdict::kNotLinearizable);
}

TEST(Linearizability, LostUpdateUnderCompareAndSetFails) {
  // Both clients swap from the same value: only one of them can have seen it.
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).cas(1, "x", "a", "b", true, 2, 5).cas(2, "x", "a", "c", true, 2, 5);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, ChainedCompareAndSetsAreLinearizable) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).cas(1, "x", "a", "b", true, 2, 5).cas(2, "x", "b", "c", true, 2, 5);
  h.get(0, "x", "c", 6, 7);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, CasMismatchIsARead) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).cas(1, "x", "z", "b", false, 2, 3).get(1, "x", "a", 4, 5);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
  HistoryBuilder bad;
  bad.put(0, "x", "a", 0, 1).cas(1, "x", "a", "b", false, 2, 3);
  EXPECT_EQ(verdict(bad), Verdict::kNotLinearizable);
}

TEST(Linearizability, AbsentIsNotTheEmptyString) {
  HistoryBuilder swap;
  swap.cas(0, "x", "", "a", true, 0, 1);
  EXPECT_EQ(verdict(swap), Verdict::kNotLinearizable);
  HistoryBuilder mismatch;
  mismatch.cas(0, "x", "", "a", false, 0, 1);
  EXPECT_EQ(verdict(mismatch), Verdict::kLinearizable);
  HistoryBuilder empty;
  empty.put(0, "x", "", 0, 1).get(1, "x", std::nullopt, 2, 3);
  EXPECT_EQ(verdict(empty), Verdict::kNotLinearizable);
}

TEST(Linearizability, IndeterminateWriteMayLandLater) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 0, Outcome::kInfo).get(1, "x", std::nullopt, 1, 2).get(1, "x", "a", 10, 11);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, IndeterminateWriteMayNeverLand) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 0, Outcome::kInfo).get(1, "x", std::nullopt, 100, 101);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, IndeterminateWriteLandsAtMostOnce) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 0, Outcome::kInfo).get(1, "x", "a", 1, 2).put(2, "x", "b", 3, 4);
  h.get(1, "x", "a", 5, 6);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, IndeterminateCompareAndSetMayLand) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).cas(1, "x", "a", "b", false, 2, 0, Outcome::kInfo);
  h.get(2, "x", "b", 10, 11);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, ValueReadBeforeItsWriteWasInvokedFails) {
  HistoryBuilder h;
  h.get(1, "x", "a", 0, 1).put(0, "x", "a", 5, 0, Outcome::kInfo);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, FailedWriteNeverTookEffect) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1, Outcome::kFail).get(1, "x", "a", 2, 3);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
  HistoryBuilder cas;
  cas.put(0, "x", "a", 0, 1).cas(0, "x", "a", "b", true, 2, 3, Outcome::kFail);
  cas.get(1, "x", "b", 4, 5);
  EXPECT_EQ(verdict(cas), Verdict::kNotLinearizable);
}

TEST(Linearizability, GetsThatDidNotCompleteConstrainNothing) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).get(1, "x", "zzz", 2, 3, Outcome::kFail);
  h.get(1, "x", "zzz", 4, 5, Outcome::kInfo);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, ReadOfAValueNeverWrittenFails) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).get(1, "x", "zzz", 2, 3);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, KeysAreIndependent) {
  // The same interleaving would be a stale read on a single key.
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(0, "y", "b", 2, 3).get(1, "x", "a", 4, 5).get(1, "y", "b", 4, 5);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, AViolationNamesItsKeyAndStaysWithinIt) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(0, "y", "a", 0, 1).put(1, "y", "b", 2, 3).get(2, "x", "a", 4, 5);
  h.get(2, "y", "a", 4, 5);
  const LinearizabilityResult r = check_kv(h.ops());
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "y");
  for (const Operation& op : r.failing_window) EXPECT_EQ(op.key, "y");
}

TEST(Linearizability, InvalidHistoryIsUnknownWithAReason) {
  HistoryBuilder backwards;
  backwards.put(0, "x", "a", 5, 4);
  const LinearizabilityResult r = check_kv(backwards.ops());
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_NE(r.explanation.find("completes before it is invoked"), std::string::npos);
  std::vector<Operation> duplicate = HistoryBuilder().get(0, "x", {}, 0, 1).ops();
  duplicate.push_back(duplicate.front());
  EXPECT_EQ(check_kv(duplicate).verdict, Verdict::kUnknown);
  EXPECT_TRUE(validate(duplicate).has_value());
}

TEST(Linearizability, StateLimitGivesUnknown) {
  GenerateOptions o;
  o.seed = 3;
  o.ops = 2000;
  CheckOptions opts;
  opts.max_states = 10;
  const LinearizabilityResult r = check_kv(generate_linearizable(o), opts);
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_NE(r.explanation.find("max_states"), std::string::npos);
}

// Indeterminate writes nobody observed are dropped before the search (exact without
// "mismatch" cas answers); with one such answer they must stay.
TEST(Linearizability, ManyUnobservedIndeterminateWritesStayCheapAndChangeNoVerdict) {
  HistoryBuilder h;
  for (uint32_t c = 0; c < 60; ++c)
    h.put(c, "x", "lost" + std::to_string(c), 10 + c, 0, Outcome::kInfo);
  h.put(100, "x", "a", 0, 5).get(101, "x", "a", 200, 210);
  CheckOptions opts;
  opts.max_states = 1000;  // 60 open writes: far more configurations without the drop
  EXPECT_EQ(check_kv(h.ops(), opts).verdict, Verdict::kLinearizable);
  h.put(102, "x", "b", 220, 230).get(103, "x", "a", 240, 250);  // a stale read
  EXPECT_EQ(check_kv(h.ops(), opts).verdict, Verdict::kNotLinearizable);
}

TEST(Linearizability, AnUnobservedWriteAMismatchCasNeedsIsKept) {
  // The cas found x != "a", which only the indeterminate write of "b" explains.
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 5)
      .put(1, "x", "b", 10, 0, Outcome::kInfo)
      .cas(2, "x", "a", "c", false, 20, 30);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

// ---------------------------------------------------------------------------------------------
// Failing windows.

TEST(FailingWindow, StaleReadWindowIsTheOverwriteAndTheRead) {
  // The first write is not needed to show the violation: from any value, "put b" then "get a"
  // fails.
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(0, "x", "b", 2, 3).get(1, "x", "a", 4, 5);
  const LinearizabilityResult r = check_kv(h.ops());
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(ids(r.failing_window), (std::vector<uint64_t>{1, 2}));
  EXPECT_NE(r.explanation.find("starting from any value of x"), std::string::npos);
}

TEST(FailingWindow, NeverWrittenReadWindowStartsFromAbsent) {
  // From an arbitrary value the read alone is fine, so the window must keep the key's start.
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).get(1, "x", "zzz", 2, 3);
  const LinearizabilityResult r = check_kv(h.ops());
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(ids(r.failing_window), (std::vector<uint64_t>{0, 1}));
  EXPECT_NE(r.explanation.find("starting from absent"), std::string::npos);
}

TEST(FailingWindow, EndsAtTheFirstOperationNoLinearizationGetsPast) {
  // A long linearizable run, a lost update, then more operations: the window ends at the
  // violation and drops both the run before it and everything after. Two swaps from "v49"
  // fail from any value, so not even the write of "v49" is needed.
  HistoryBuilder h;
  for (uint64_t i = 0; i < 50; ++i) h.put(0, "x", "v" + std::to_string(i), 10 * i, 10 * i + 1);
  h.cas(1, "x", "v49", "w", true, 500, 505).cas(2, "x", "v49", "z", true, 500, 506);
  for (uint64_t i = 0; i < 50; ++i) h.get(0, "x", "z", 600 + 10 * i, 601 + 10 * i);
  const LinearizabilityResult r = check_kv(h.ops());
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(ids(r.failing_window), (std::vector<uint64_t>{50, 51}));
  EXPECT_NE(r.explanation.find("cas x v49 -> z"), std::string::npos) << r.explanation;
}

TEST(FailingWindow, OperationsOpenAtTheStartStayInTheWindow) {
  // The long write of "b" is open across the whole window: leaving it out would make the
  // window fail for the wrong reason, so it stays (as optional).
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(1, "x", "b", 2, 100).get(2, "x", "a", 10, 11);
  h.get(2, "x", "b", 12, 13).get(2, "x", "a", 14, 15);
  const LinearizabilityResult r = check_kv(h.ops());
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(ids(r.failing_window), (std::vector<uint64_t>{1, 3, 4}));
  EXPECT_EQ(check_kv(r.failing_window).verdict, Verdict::kNotLinearizable);
}

TEST(FailingWindow, UnshrunkWindowIsThePrefixUpToTheFailure) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(0, "x", "b", 2, 3).get(1, "x", "a", 4, 5).get(1, "x", "b", 6, 7);
  CheckOptions opts;
  opts.shrink_window = false;
  const LinearizabilityResult r = check_kv(h.ops(), opts);
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(ids(r.failing_window), (std::vector<uint64_t>{0, 1, 2}));
}

// ---------------------------------------------------------------------------------------------
// The model-independent search with another model: a counter with add(n) and read.

class CounterModel final : public Model {
 public:
  struct Op {
    bool is_read;
    uint32_t amount;  // add: the increment; read: the value seen
  };
  explicit CounterModel(std::vector<Op> ops) : ops_(std::move(ops)) {}
  uint32_t initial_state() override { return 0; }  // the state id is the counter's value
  std::optional<uint32_t> step(uint32_t state, size_t op) override {
    if (!ops_[op].is_read) return state + ops_[op].amount;
    if (state != ops_[op].amount) return std::nullopt;
    return state;
  }
  std::string describe_state(uint32_t state) const override { return std::to_string(state); }

 private:
  std::vector<Op> ops_;
};

TEST(CheckPartition, WorksWithAnotherModel) {
  // Two concurrent adds; reads may see 1 or 2 in between, and must see 3 afterwards.
  CounterModel ok({{false, 1}, {false, 2}, {true, 2}, {true, 3}});
  const std::vector<SearchOp> ops = {{0, 10}, {0, 10}, {1, 5}, {11, 12}};
  EXPECT_EQ(check_partition(ops, ok).verdict, Verdict::kLinearizable);
  CounterModel bad({{false, 1}, {false, 2}, {true, 2}, {true, 1}});
  const PartitionResult r = check_partition(ops, bad);
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.failed_op, 3u);
  EXPECT_EQ(r.states_at_failure, (std::vector<uint32_t>{3}));
  // Without Model::unknown_state the window cannot be cut from the middle.
  EXPECT_FALSE(r.window_from_unknown_state);
  EXPECT_EQ(r.window, (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(CheckPartition, OptionalOperationsMaySkipOrLand) {
  CounterModel model({{false, 5}, {true, 0}, {false, 1}, {true, 1}});
  std::vector<SearchOp> ops = {{0, 0, true}, {1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(check_partition(ops, model).verdict, Verdict::kLinearizable);  // add 5 never landed
  ops[1] = {7, 8};  // the read of 0 now comes after the add of 1
  EXPECT_EQ(check_partition(ops, model).verdict, Verdict::kNotLinearizable);
}

// A lamp: "on" and "off" switch it, "lit" sees it on. The "on" operations are interchangeable
// (symmetry class 0) unless the model is told not to say so.
class LampModel final : public Model {
 public:
  enum Kind { kOn, kOff, kLit };
  LampModel(std::vector<Kind> ops, bool classes) : ops_(std::move(ops)), classes_(classes) {}
  uint32_t initial_state() override { return 0; }
  std::optional<uint32_t> step(uint32_t state, size_t op) override {
    if (ops_[op] == kLit) return state == 1 ? std::optional<uint32_t>(1) : std::nullopt;
    return ops_[op] == kOn ? 1 : 0;
  }
  std::string describe_state(uint32_t state) const override { return state ? "on" : "off"; }
  std::optional<uint32_t> symmetry_class(size_t op) const override {
    if (classes_ && ops_[op] == kOn) return 0;
    return std::nullopt;
  }

 private:
  std::vector<Kind> ops_;
  bool classes_;
};

// `rounds` times the lamp is switched off and then seen lit, so each round needs one of the
// `switches` indeterminate "on" operations, all invoked at the start.
PartitionResult check_lamp(int rounds, int switches, bool classes, uint64_t max_states) {
  std::vector<LampModel::Kind> kinds;
  std::vector<SearchOp> ops;
  for (int i = 0; i < switches; ++i) {
    kinds.push_back(LampModel::kOn);
    ops.push_back({0, 0, true});
  }
  for (int i = 0; i < rounds; ++i) {
    const uint64_t t = 10 + 10 * static_cast<uint64_t>(i);
    kinds.push_back(LampModel::kOff);
    ops.push_back({t, t + 1});
    kinds.push_back(LampModel::kLit);
    ops.push_back({t + 2, t + 3});
  }
  LampModel model(kinds, classes);
  CheckOptions opts;
  opts.max_states = max_states;
  return check_partition(ops, model, opts);
}

TEST(CheckPartition, InterchangeableOptionalOperationsAreTakenInCallOrder) {
  // One switch too few: refuting it means trying which of the 29 switches did which rounds,
  // subsets of them without the class, and only their 30 prefixes with it.
  const PartitionResult r = check_lamp(30, 29, true, 20'000);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_LT(r.states_explored, 5'000u);
  EXPECT_EQ(check_lamp(30, 29, false, 20'000).verdict, Verdict::kUnknown);
}

TEST(CheckPartition, AnOptionalOperationOfAClassTakesEffectAtMostOnce) {
  for (int rounds : {1, 2, 5, 30}) {
    EXPECT_EQ(check_lamp(rounds, rounds, true, 20'000).verdict, Verdict::kLinearizable);
    const PartitionResult r = check_lamp(rounds, rounds - 1, true, 20'000);
    ASSERT_EQ(r.verdict, Verdict::kNotLinearizable) << rounds;
    EXPECT_EQ(r.failed_op, static_cast<size_t>(rounds - 1 + 2 * rounds - 1));  // the last "lit"
  }
  EXPECT_EQ(check_lamp(5, 4, false, 20'000).verdict, Verdict::kNotLinearizable);
}

// ---------------------------------------------------------------------------------------------
// Randomized histories.

// Small, mostly non-linearizable histories over few values, so that collisions are common.
std::vector<Operation> random_small_history(Rng& rng) {
  const char* values[] = {"a", "b", ""};
  const size_t n = 1 + rng.uniform(7);
  std::vector<Operation> ops;
  for (uint64_t i = 0; i < n; ++i) {
    Operation op;
    op.id = i;
    op.client = static_cast<uint32_t>(rng.uniform(3));
    op.key = rng.chance(0.8) ? "x" : "y";
    op.kind = static_cast<OpKind>(rng.uniform(3));
    op.invoke_time = rng.uniform(20);
    op.complete_time = op.invoke_time + rng.uniform(10);
    const uint64_t outcome = rng.uniform(10);
    op.outcome = outcome < 7 ? Outcome::kOk : outcome < 9 ? Outcome::kInfo : Outcome::kFail;
    op.value = values[rng.uniform(3)];
    op.expected = values[rng.uniform(3)];
    if (!rng.chance(0.25)) op.output = values[rng.uniform(2)];
    op.cas_succeeded = rng.chance(0.5);
    ops.push_back(op);
  }
  return ops;
}

TEST(LinearizabilityRandom, AgreesWithBruteForceOnSmallHistories) {
  const uint64_t seed = 20261122;
  std::cout << "seed " << seed << "\n";
  Rng rng(seed);
  int linearizable = 0, not_linearizable = 0;
  for (int i = 0; i < 20'000; ++i) {
    const std::vector<Operation> ops = random_small_history(rng);
    const bool expected = brute_force_linearizable(ops);
    const LinearizabilityResult r = check_kv(ops);
    ASSERT_EQ(r.verdict, expected ? Verdict::kLinearizable : Verdict::kNotLinearizable)
        << "seed " << seed << " history " << i;
    (expected ? linearizable : not_linearizable)++;
    if (expected) continue;
    // The window is a non-linearizable history by itself, cut from the failing key.
    ASSERT_FALSE(brute_force_linearizable(r.failing_window)) << "seed " << seed << " " << i;
    for (const Operation& op : r.failing_window) ASSERT_EQ(op.key, r.key);
  }
  // Both verdicts are well represented, or the comparison would be weak.
  EXPECT_GT(linearizable, 4000);
  EXPECT_GT(not_linearizable, 4000);
}

std::vector<Operation> random_linearizable(uint64_t seed, size_t n, double info_share) {
  GenerateOptions o;
  o.seed = seed;
  o.ops = n;
  o.info_share = info_share;
  return generate_linearizable(o);
}

TEST(LinearizabilityRandom, GeneratedLinearizableHistoriesPass) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::cout << "seed " << seed << "\n";
    const LinearizabilityResult r = check_kv(random_linearizable(seed, 2000, 0.1));
    EXPECT_EQ(r.verdict, Verdict::kLinearizable) << "seed " << seed << "\n" << r.explanation;
  }
}

TEST(LinearizabilityRandom, VerdictDoesNotDependOnHistoryOrder) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    std::cout << "seed " << seed << "\n";
    std::vector<Operation> ops = random_linearizable(seed, 500, 0.1);
    Rng rng(seed);
    for (size_t i = ops.size() - 1; i > 0; --i) std::swap(ops[i], ops[rng.uniform(i + 1)]);
    EXPECT_EQ(check_kv(ops).verdict, Verdict::kLinearizable) << "seed " << seed;
  }
}

// Makes a get in the second half of the history return a value overwritten before it began:
// a put P1 completed, then a put P2 of the same key ran entirely before the get. Values are
// unique, so nothing else could have written P1's value. Returns the get's id.
std::optional<uint64_t> plant_stale_read(std::vector<Operation>& ops) {
  for (size_t g = ops.size() / 2; g < ops.size(); ++g) {
    Operation& get = ops[g];
    if (get.kind != OpKind::kGet) continue;
    for (size_t p1 = 0; p1 < g; ++p1) {
      const Operation& first = ops[p1];
      if (first.kind != OpKind::kPut || first.outcome != Outcome::kOk || first.key != get.key) {
        continue;
      }
      for (size_t p2 = p1 + 1; p2 < g; ++p2) {
        const Operation& second = ops[p2];
        const bool after = second.kind == OpKind::kPut && second.outcome == Outcome::kOk &&
                           second.key == get.key && second.invoke_time > first.complete_time &&
                           second.complete_time < get.invoke_time;
        if (!after) continue;
        get.output = first.value;
        return get.id;
      }
    }
  }
  return std::nullopt;
}

TEST(LinearizabilityRandom, OneStaleReadInAGeneratedHistoryFails) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::cout << "seed " << seed << "\n";
    std::vector<Operation> ops = random_linearizable(seed, 1000, 0.1);
    const std::optional<uint64_t> stale = plant_stale_read(ops);
    ASSERT_TRUE(stale.has_value()) << "seed " << seed;
    const LinearizabilityResult r = check_kv(ops);
    ASSERT_EQ(r.verdict, Verdict::kNotLinearizable) << "seed " << seed;
    // Everything before the stale read linearizes, so the failure is pinned to it.
    const std::vector<uint64_t> window = ids(r.failing_window);
    EXPECT_NE(std::find(window.begin(), window.end(), *stale), window.end()) << "seed " << seed;
    EXPECT_EQ(check_kv(r.failing_window).verdict, Verdict::kNotLinearizable) << "seed " << seed;
    EXPECT_LT(window.size(), 20u) << "seed " << seed;
  }
}

}  // namespace
}  // namespace synod::check
