// The Gibbons–Korach check for unique-value registers against the search (check_kv), which it
// must agree with on every history it applies to, and on handmade ones.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "check/linearizability.h"
#include "check/unique_register.h"
#include "test_ops.h"

namespace synod::check {
namespace {

Operation op(uint64_t id, OpKind kind, uint64_t t0, uint64_t t1, Outcome o = Outcome::kOk) {
  return testing::make_op(id, static_cast<uint32_t>(id), kind, "x", t0, t1, o);
}

Operation put(uint64_t id, std::string v, uint64_t t0, uint64_t t1, Outcome o = Outcome::kOk) {
  Operation w = op(id, OpKind::kPut, t0, t1, o);
  w.value = std::move(v);
  return w;
}

Operation get(uint64_t id, std::optional<std::string> v, uint64_t t0, uint64_t t1) {
  Operation r = op(id, OpKind::kGet, t0, t1);
  r.output = std::move(v);
  return r;
}

UniqueRegisterVerdict judge(const std::vector<Operation>& h) {
  std::vector<const Operation*> ops;
  for (const Operation& op : h) ops.push_back(&op);
  return check_unique_register(ops);
}

TEST(UniqueRegister, AStaleReadAfterACompletedOverwriteFails) {
  auto v = judge({put(0, "1", 0, 10), put(1, "2", 20, 30), get(2, "1", 40, 50)});
  ASSERT_TRUE(v.applies);
  EXPECT_FALSE(v.linearizable);
  EXPECT_NE(v.reason.find("\"1\""), std::string::npos) << v.reason;
}

TEST(UniqueRegister, ConcurrentWritesMayBeReadInEitherOrder) {
  auto v =
      judge({put(0, "1", 0, 30), put(1, "2", 5, 35), get(2, "2", 10, 40), get(3, "1", 50, 60)});
  ASSERT_TRUE(v.applies);
  EXPECT_TRUE(v.linearizable);
}

TEST(UniqueRegister, AReadOfAValueNobodyWroteFails) {
  auto v = judge({put(0, "1", 0, 10), get(1, "7", 20, 30)});
  EXPECT_FALSE(v.linearizable);
  EXPECT_NE(v.reason.find("no write wrote"), std::string::npos);
}

TEST(UniqueRegister, DoesNotApplyToCasOrRepeatedValues) {
  EXPECT_FALSE(judge({put(0, "1", 0, 10), put(1, "1", 20, 30)}).applies);
  const Operation cas = op(0, OpKind::kCas, 0, 10);
  EXPECT_FALSE(judge({cas}).applies);
}

// Random small histories with distinct written values: the verdicts must match the search's.
TEST(UniqueRegister, AgreesWithTheSearchOnRandomHistories) {
  const char* env = std::getenv("SYNOD_SEED");  // replay or widen: SYNOD_SEED=n
  const uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : 20261201;
  std::cout << "seed " << seed << "\n";
  std::mt19937_64 rng(seed);
  int checked = 0, non_linearizable = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    std::vector<Operation> h;
    const int n = 2 + static_cast<int>(rng() % 7);
    int writes = 0;
    for (int i = 0; i < n; ++i) {
      const uint64_t t0 = rng() % 60;
      const uint64_t t1 = t0 + rng() % 25;
      if (rng() % 2 == 0) {
        Outcome o = rng() % 6 == 0 ? Outcome::kInfo : Outcome::kOk;
        h.push_back(put(h.size(), "v" + std::to_string(writes++), t0, t1, o));
      } else {
        std::optional<std::string> out;
        const uint64_t pick = rng() % (writes + 2);
        if (pick < static_cast<uint64_t>(writes)) out = "v" + std::to_string(pick);
        if (pick == static_cast<uint64_t>(writes) + 1 && writes > 0) out = "v0";
        h.push_back(get(h.size(), out, t0, t1));
      }
    }
    const UniqueRegisterVerdict fast = judge(h);
    ASSERT_TRUE(fast.applies);
    CheckOptions opts;
    opts.shrink_window = false;
    const Verdict search = check_kv(h, opts).verdict;
    ASSERT_NE(search, Verdict::kUnknown);
    if (fast.linearizable != (search == Verdict::kLinearizable)) {
      std::string ops;
      for (const Operation& op : h) ops += "  " + to_string(op) + "\n";
      FAIL() << "trial " << trial << ": fast says " << fast.linearizable << " (" << fast.reason
             << "), search " << to_string(search) << "\n"
             << ops;
    }
    ++checked;
    non_linearizable += !fast.linearizable;
  }
  std::cout << checked << " histories, " << non_linearizable << " not linearizable\n";
  EXPECT_GT(non_linearizable, 400);
  EXPECT_GT(checked - non_linearizable, 400);
}

}  // namespace
}  // namespace synod::check
