// Handmade histories with known verdicts, subtle ones included, and randomized ones.
#include "check/linearizability.h"

#include <gtest/gtest.h>

#include <iostream>

#include "check/generate.h"

namespace synod::check {
namespace {

class HistoryBuilder {
 public:
  HistoryBuilder& put(uint32_t c, const std::string& k, const std::string& v, uint64_t t0,
                      uint64_t t1, Outcome o = Outcome::kOk) {
    return add({next_++, c, OpKind::kPut, k, v, "", t0, t1, o, std::nullopt, false});
  }
  HistoryBuilder& get(uint32_t c, const std::string& k, std::optional<std::string> v, uint64_t t0,
                      uint64_t t1) {
    return add({next_++, c, OpKind::kGet, k, "", "", t0, t1, Outcome::kOk, std::move(v), false});
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

TEST(Linearizability, EmptyHistoryIsLinearizable) {
  EXPECT_EQ(check_kv({}).verdict, Verdict::kLinearizable);
}

TEST(Linearizability, SequentialHistoryIsLinearizable) {
  HistoryBuilder h;
  h.get(0, "x", std::nullopt, 0, 1).put(0, "x", "a", 2, 3).get(1, "x", "a", 4, 5);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, ConcurrentWritesMayBeSeenInEitherOrder) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 10).put(1, "x", "b", 0, 10).get(2, "x", "a", 11, 12);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, StaleReadAfterCompletedWriteFails) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(0, "x", "b", 2, 3).get(1, "x", "a", 4, 5);
  const auto r = check_kv(h.ops());
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "x");
  EXPECT_FALSE(r.failing_window.empty());
  EXPECT_NE(r.explanation.find("get x -> a"), std::string::npos) << r.explanation;
}

TEST(Linearizability, LostUpdateUnderCompareAndSetFails) {
  // Both clients swap from the same value: only one of them can have seen it.
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).cas(1, "x", "a", "b", true, 2, 5).cas(2, "x", "a", "c", true, 2, 5);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, CasMismatchIsARead) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).cas(1, "x", "z", "b", false, 2, 3).get(1, "x", "a", 4, 5);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
  HistoryBuilder bad;
  bad.put(0, "x", "a", 0, 1).cas(1, "x", "a", "b", false, 2, 3);
  EXPECT_EQ(verdict(bad), Verdict::kNotLinearizable);
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

TEST(Linearizability, ValueReadBeforeItsWriteWasInvokedFails) {
  HistoryBuilder h;
  h.get(1, "x", "a", 0, 1).put(0, "x", "a", 5, 0, Outcome::kInfo);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, FailedWriteNeverTookEffect) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1, Outcome::kFail).get(1, "x", "a", 2, 3);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, ReadOfAValueNeverWrittenFails) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).get(1, "x", "zzz", 2, 3);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, KeysAreIndependent) {
  HistoryBuilder h;
  h.put(0, "x", "a", 0, 1).put(0, "y", "b", 2, 3).get(1, "x", "a", 4, 5).get(1, "y", "b", 4, 5);
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, AbsentIsNotTheEmptyString) {
  HistoryBuilder h;
  h.cas(0, "x", "", "a", true, 0, 1);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

std::vector<Operation> random_history(uint64_t seed, size_t n) {
  GenerateOptions o;
  o.seed = seed;
  o.ops = n;
  o.info_share = 0.1;
  return generate_linearizable(o);
}

TEST(Linearizability, RandomLinearizableHistoriesCheck) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const auto ops = random_history(seed, 2000);
    const auto r = check_kv(ops);
    EXPECT_EQ(r.verdict, Verdict::kLinearizable) << "seed " << seed << "\n" << r.explanation;
  }
}

TEST(Linearizability, RandomHistoryWithACorruptedReadFails) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto ops = random_history(seed, 500);
    for (auto& op : ops) {
      if (op.kind == OpKind::kGet && op.id > 250) {
        op.output = "never-written";
        break;
      }
    }
    EXPECT_EQ(check_kv(ops).verdict, Verdict::kNotLinearizable) << "seed " << seed;
  }
}

TEST(Linearizability, StateLimitGivesUnknown) {
  const auto ops = random_history(3, 2000);
  CheckOptions opts;
  opts.max_states = 10;
  EXPECT_EQ(check_kv(ops, opts).verdict, Verdict::kUnknown);
}

}  // namespace
}  // namespace synod::check
