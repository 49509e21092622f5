// The register history's exact reductions (check/register_reduction.h) and the search's own
// (subsumption, symmetry classes of indeterminate writes): what each drops or keeps, that the
// histories they were made for are decided on a small budget, that planted violations are
// still caught with a failing window that fails by itself, and that check_kv agrees with the
// brute-force reference on random small histories shaped like the simulator's.
#include "check/register_reduction.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "brute_force.h"
#include "check/generate.h"
#include "check/linearizability.h"
#include "core/rand.h"
#include "test_ops.h"

namespace synod::check {
namespace {

using testing::brute_force_linearizable;

class History {
 public:
  History& put(const std::string& v, uint64_t t0, uint64_t t1, Outcome o = Outcome::kOk) {
    Operation& op = add(OpKind::kPut, t0, t1, o);
    op.value = v;
    return *this;
  }
  History& info_put(const std::string& v, uint64_t t0) { return put(v, t0, t0, Outcome::kInfo); }
  History& get(std::optional<std::string> v, uint64_t t0, uint64_t t1) {
    add(OpKind::kGet, t0, t1, Outcome::kOk).output = std::move(v);
    return *this;
  }
  // swapped: the compare matched (ok) or answered "mismatch"; info: indeterminate.
  History& cas(const std::string& from, const std::string& to, bool swapped, uint64_t t0,
               uint64_t t1, Outcome o = Outcome::kOk) {
    Operation& op = add(OpKind::kCas, t0, t1, o);
    op.expected = from;
    op.value = to;
    op.cas_succeeded = swapped;
    return *this;
  }
  History& info_cas(const std::string& from, const std::string& to, uint64_t t0) {
    return cas(from, to, false, t0, t0, Outcome::kInfo);
  }
  const std::vector<Operation>& ops() const { return ops_; }

 private:
  Operation& add(OpKind kind, uint64_t t0, uint64_t t1, Outcome o) {
    const uint64_t id = ops_.size();
    ops_.push_back(testing::make_op(id, static_cast<uint32_t>(id), kind, "x", t0, t1, o));
    return ops_.back();
  }
  std::vector<Operation> ops_;
};

// The ids of the operations reduce_register_history keeps.
std::vector<uint64_t> kept(const History& h) {
  std::vector<const Operation*> ops;
  for (const Operation& op : h.ops()) ops.push_back(&op);
  reduce_register_history(ops);
  std::vector<uint64_t> ids;
  for (const Operation* op : ops) ids.push_back(op->id);
  return ids;
}

bool keeps(const History& h, uint64_t id) {
  const std::vector<uint64_t> ids = kept(h);
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

Verdict verdict(const History& h) {
  const Verdict v = check_kv(h.ops()).verdict;
  EXPECT_EQ(v == Verdict::kLinearizable, brute_force_linearizable(h.ops()));
  return v;
}

// ---------------------------------------------------------------------------------------------
// Rule 1: mismatch answers that cannot have seen their expected value.

TEST(RegisterReduction, AMismatchAfterItsValueWasOverwrittenIsDropped) {
  History h;
  h.put("a", 0, 1).put("b", 2, 3).cas("a", "c", false, 4, 5);  // b certainly replaced a first
  EXPECT_FALSE(keeps(h, 2));
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(RegisterReduction, AMismatchAfterAReadOfAnotherValueIsDropped) {
  History h;
  h.put("a", 0, 1).put("b", 0, 10).get("b", 2, 3).cas("a", "c", false, 4, 5);
  EXPECT_FALSE(keeps(h, 3));
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(RegisterReduction, AMismatchBeforeItsValueIsWrittenOrOnAValueNeverWrittenIsDropped) {
  History before;
  before.cas("a", "c", false, 0, 1).put("a", 2, 3);
  EXPECT_FALSE(keeps(before, 0));
  History never;
  never.put("a", 0, 1).cas("z", "c", false, 2, 3);
  EXPECT_FALSE(keeps(never, 1));
}

TEST(RegisterReduction, AMismatchWhileItsValueMayBeCurrentIsKeptAndCaught) {
  // Nothing replaced a, so the register holds a when the cas compares: not linearizable.
  History h;
  h.put("a", 0, 1).cas("a", "c", false, 2, 3);
  EXPECT_TRUE(keeps(h, 1));
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
  // A write concurrent with the cas explains it; the write that ends a touches the cas only.
  History concurrent;
  concurrent.put("a", 0, 1).put("b", 3, 9).cas("a", "c", false, 2, 3);
  EXPECT_TRUE(keeps(concurrent, 2));
  EXPECT_EQ(verdict(concurrent), Verdict::kLinearizable);
}

TEST(RegisterReduction, AMismatchOnAValueWrittenTwiceIsKept) {
  // The rules need a value's writer to be unique: here a is current again when the cas runs.
  History h;
  h.put("a", 0, 1).put("b", 2, 3).put("a", 4, 5).cas("a", "c", false, 6, 7);
  EXPECT_TRUE(keeps(h, 3));
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

// ---------------------------------------------------------------------------------------------
// Rule 2: indeterminate cas that cannot have swapped.

TEST(RegisterReduction, AnIndeterminateCasInvokedAfterItsValueEndedIsDropped) {
  History h;
  h.put("a", 0, 1).put("b", 2, 3).info_cas("a", "c", 4);
  EXPECT_FALSE(keeps(h, 2));
  // Had it swapped, reading c would be fine; it cannot have.
  h.get("c", 10, 11);
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(RegisterReduction, AnIndeterminateCasThatMaySwapIsKept) {
  History h;
  h.put("a", 0, 1).info_cas("a", "c", 2).get("c", 5, 6);
  EXPECT_TRUE(keeps(h, 1));
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(RegisterReduction, AValueIsSwappedAwayOnce) {
  // A certain swap from a leaves no room for the indeterminate one: c is never written.
  History h;
  h.put("a", 0, 1).cas("a", "b", true, 2, 8).info_cas("a", "c", 2).get("c", 10, 11);
  EXPECT_FALSE(keeps(h, 2));
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

// ---------------------------------------------------------------------------------------------
// Rule 3: indeterminate writes of values nobody observes.

TEST(RegisterReduction, AnUnobservedWriteAMismatchMayNeedIsKept) {
  // Only the indeterminate write of u, invoked as the cas returns, explains its mismatch.
  History touching;
  touching.put("a", 0, 1).cas("a", "c", false, 2, 5).info_put("u", 5);
  EXPECT_TRUE(keeps(touching, 2));
  EXPECT_EQ(verdict(touching), Verdict::kLinearizable);
  History late;
  late.put("a", 0, 1).cas("a", "c", false, 2, 5).info_put("u", 6);
  EXPECT_FALSE(keeps(late, 2));
  EXPECT_EQ(verdict(late), Verdict::kNotLinearizable);
}

TEST(RegisterReduction, AnUnobservedWriteInvokedAfterTheExpectedValueEndedIsDropped) {
  // a ends by 4 (b is read at 6, invoked after a's write); u, invoked at 5, cannot be what
  // took a away before the cas, which may go after b anyway.
  History h;
  h.put("a", 0, 1).cas("a", "c", false, 2, 20).put("b", 3, 4).info_put("u", 5);
  h.info_put("w", 3);
  EXPECT_FALSE(keeps(h, 3));
  EXPECT_TRUE(keeps(h, 4));  // invoked before a certainly ended
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(RegisterReduction, UnobservedWritesWithoutMismatchesAreDropped) {
  History h;
  h.put("a", 0, 1).info_put("u", 2).info_cas("a", "w", 3).get("a", 4, 5);
  EXPECT_EQ(kept(h), (std::vector<uint64_t>{0, 3}));
}

// ---------------------------------------------------------------------------------------------
// The search's reductions on what is left.

// k values each need one indeterminate write to explain a mismatch right after them; the writes
// are interchangeable (values nobody observes, invoked together), so the search must not try
// their subsets, and must still use each at most once.
History needs_one_write_per_value(int values, int writes) {
  History h;
  for (int i = 0; i < writes; ++i) h.info_put("u" + std::to_string(i), 1);
  for (int i = 0; i < values; ++i) {
    const uint64_t t = 10 + 10 * static_cast<uint64_t>(i);
    h.put("a" + std::to_string(i), t, t + 1);
    h.cas("a" + std::to_string(i), "c", false, t + 2, t + 3);
  }
  return h;
}

TEST(RegisterReduction, InterchangeableWritesAreCountedNotEnumerated) {
  CheckOptions budget;
  budget.max_states = 20'000;  // 2^40 subsets of the writes without the symmetry classes
  const LinearizabilityResult enough = check_kv(needs_one_write_per_value(30, 40).ops(), budget);
  EXPECT_EQ(enough.verdict, Verdict::kLinearizable) << enough.explanation;
  EXPECT_LT(enough.states_explored, budget.max_states);
}

TEST(RegisterReduction, AnIndeterminateWriteTakesEffectAtMostOnce) {
  for (int values : {1, 2, 3}) {
    const History h = needs_one_write_per_value(values, values - 1);
    EXPECT_EQ(verdict(h), Verdict::kNotLinearizable) << values;
    EXPECT_EQ(verdict(needs_one_write_per_value(values, values)), Verdict::kLinearizable);
  }
  const LinearizabilityResult r = check_kv(needs_one_write_per_value(30, 29).ops());
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.failing_window.back().expected, "a29");  // the first cas left unexplained
  EXPECT_EQ(check_kv(r.failing_window).verdict, Verdict::kNotLinearizable);
}

// ---------------------------------------------------------------------------------------------
// Random small histories of the simulator's shape, against the brute-force reference.

uint64_t test_seed(uint64_t fallback) {
  const char* env = std::getenv("SYNOD_SEED");  // replay or widen: SYNOD_SEED=n
  return env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
}

// A generated linearizable history, then, two times in three, one to three operations changed
// at random: a read returning another value, a cas answering the other way or expecting another
// value, a put writing a value written already, a write's outcome changed, an operation moved
// in time.
std::vector<Operation> random_client_history(Rng& rng) {
  GenerateOptions o;
  o.seed = rng.next();
  o.ops = 2 + rng.uniform(9);
  o.clients = 3;
  o.keys = 1 + static_cast<uint32_t>(rng.uniform(2));
  o.spread = 20 + rng.uniform(300);
  o.info_share = 0.3;
  o.client_view = true;
  std::vector<Operation> ops = generate_linearizable(o);
  if (rng.chance(1.0 / 3)) return ops;
  std::vector<std::string> written;
  for (const Operation& op : ops) {
    if (op.kind != OpKind::kGet) written.push_back(op.value);
  }
  const auto other = [&]() -> std::optional<std::string> {
    if (written.empty() || rng.chance(0.15)) return std::nullopt;
    return written[rng.uniform(written.size())];
  };
  for (uint64_t changes = 1 + rng.uniform(3); changes > 0; --changes) {
    Operation& op = ops[rng.uniform(ops.size())];
    if (rng.chance(0.25)) {
      const uint64_t shift = rng.uniform(400);
      const bool later = rng.chance(0.5) || op.invoke_time < shift;
      op.invoke_time = later ? op.invoke_time + shift : op.invoke_time - shift;
      op.complete_time = later ? op.complete_time + shift : op.complete_time - shift;
    } else if (op.kind == OpKind::kGet) {
      op.output = other();
    } else if (op.kind == OpKind::kCas && rng.chance(0.5)) {
      op.cas_succeeded = !op.cas_succeeded;
    } else if (op.kind == OpKind::kCas) {
      op.expected = other().value_or("none");
    } else if (rng.chance(0.3)) {
      op.value = other().value_or(op.value);
    } else {
      op.outcome = static_cast<Outcome>(rng.uniform(3));
    }
  }
  return ops;
}

// How many operations the reductions drop from the history, over all its keys.
size_t dropped_by_reduction(const std::vector<Operation>& history) {
  std::map<std::string, std::vector<const Operation*>> by_key;
  for (const Operation& op : history) {
    const bool constrains =
        op.outcome != Outcome::kFail && (op.kind != OpKind::kGet || op.outcome == Outcome::kOk);
    if (constrains) by_key[op.key].push_back(&op);
  }
  size_t dropped = 0;
  for (auto& [key, ops] : by_key) {
    const size_t before = ops.size();
    reduce_register_history(ops);
    dropped += before - ops.size();
  }
  return dropped;
}

TEST(RegisterReductionRandom, AgreesWithBruteForceOnSimulatorShapedHistories) {
  const uint64_t seed = test_seed(20270114);
  std::cout << "seed " << seed << " (replay: SYNOD_SEED=" << seed << ")\n";
  Rng rng(seed);
  int linearizable = 0, not_linearizable = 0, reduced = 0;
  for (int i = 0; i < 20'000; ++i) {
    const std::vector<Operation> ops = random_client_history(rng);
    reduced += dropped_by_reduction(ops) > 0;
    const bool expected = brute_force_linearizable(ops);
    const LinearizabilityResult r = check_kv(ops);
    if (r.verdict != (expected ? Verdict::kLinearizable : Verdict::kNotLinearizable)) {
      std::string text;
      for (const Operation& op : ops) text += "  " + to_string(op) + "\n";
      FAIL() << "seed " << seed << " history " << i << ": expected " << expected << ", got "
             << to_string(r.verdict) << "\n"
             << text << r.explanation;
    }
    (expected ? linearizable : not_linearizable)++;
    if (expected) continue;
    ASSERT_FALSE(brute_force_linearizable(r.failing_window)) << "seed " << seed << " " << i;
  }
  std::cout << linearizable << " linearizable, " << not_linearizable << " not, " << reduced
            << " reduced\n";
  // Both verdicts well represented, and the reductions at work, or the comparison is weak.
  EXPECT_GT(linearizable, 4000);
  EXPECT_GT(not_linearizable, 4000);
  EXPECT_GT(reduced, 4000);
}

// ---------------------------------------------------------------------------------------------
// Long histories of the simulator's shape: decided, and planted violations caught.

std::vector<Operation> long_client_history(uint64_t seed, size_t n) {
  GenerateOptions o;
  o.seed = seed;
  o.ops = n;
  o.clients = 20;
  o.keys = 3;
  o.info_share = 0.15;
  o.client_view = true;
  return generate_linearizable(o);
}

TEST(RegisterReductionLong, SimulatorShapedHistoriesAreDecided) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::cout << "seed " << seed << "\n";
    const std::vector<Operation> ops = long_client_history(seed, 20'000);
    CheckOptions budget;
    budget.max_states = 500'000;  // the simulator's
    const LinearizabilityResult r = check_kv(ops, budget);
    EXPECT_EQ(r.verdict, Verdict::kLinearizable) << "seed " << seed << "\n" << r.explanation;
  }
}

// The violations below are planted in a long linearizable history; each must be caught, and
// its failing window must hold the planted operation and fail by itself.
void expect_caught(const std::vector<Operation>& ops, uint64_t planted, uint64_t seed) {
  CheckOptions budget;
  budget.max_states = 500'000;
  const LinearizabilityResult r = check_kv(ops, budget);
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable) << "seed " << seed << "\n" << r.explanation;
  std::vector<uint64_t> window;
  for (const Operation& op : r.failing_window) window.push_back(op.id);
  EXPECT_NE(std::find(window.begin(), window.end(), planted), window.end())
      << "seed " << seed << "\n"
      << r.explanation;
  EXPECT_EQ(check_kv(r.failing_window).verdict, Verdict::kNotLinearizable) << "seed " << seed;
  EXPECT_LT(window.size(), 30u) << "seed " << seed;
}

// The latest certain write of `key` completed before `t`, and the one before it.
struct Overwrite {
  const Operation* old_write = nullptr;
  const Operation* new_write = nullptr;
};
Overwrite overwritten_before(const std::vector<Operation>& ops, const std::string& key,
                             uint64_t t) {
  Overwrite o;
  for (const Operation& op : ops) {
    const bool writes = op.outcome == Outcome::kOk &&
                        (op.kind == OpKind::kPut || (op.kind == OpKind::kCas && op.cas_succeeded));
    if (!writes || op.key != key || op.complete_time >= t) continue;
    if (o.new_write == nullptr || op.id > o.new_write->id) {
      o.old_write = o.new_write;
      o.new_write = &op;
    } else if (o.old_write == nullptr || op.id > o.old_write->id) {
      o.old_write = &op;
    }
  }
  return o;
}

// A stale read: a read in the second half returns a value a certain write replaced (and
// completed) before the read began. Generated ids are in the order of the writes' points.
TEST(RegisterReductionLong, AStaleReadIsCaught) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::vector<Operation> ops = long_client_history(seed, 20'000);
    for (size_t i = ops.size() / 2; i < ops.size(); ++i) {
      Operation& get = ops[i];
      if (get.kind != OpKind::kGet) continue;
      const Overwrite o = overwritten_before(ops, get.key, get.invoke_time);
      if (o.old_write == nullptr || o.old_write->complete_time >= o.new_write->invoke_time) {
        continue;
      }
      get.output = o.old_write->value;
      expect_caught(ops, get.id, seed);
      break;
    }
  }
}

// A lost write: a certain put whose value is read, and every read of it after it completed
// now returns a value a certain write had put there before the put began, as if the put had
// never happened.
TEST(RegisterReductionLong, ALostWriteIsCaught) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::vector<Operation> ops = long_client_history(seed, 20'000);
    std::optional<uint64_t> planted;
    for (size_t i = ops.size() / 2; i < ops.size() && !planted; ++i) {
      const Operation& put = ops[i];
      if (put.kind != OpKind::kPut || put.outcome != Outcome::kOk) continue;
      const bool swapped_from = std::any_of(ops.begin(), ops.end(), [&](const Operation& c) {
        return c.kind == OpKind::kCas && c.expected == put.value;
      });
      const Operation* earlier = overwritten_before(ops, put.key, put.invoke_time).new_write;
      if (swapped_from || earlier == nullptr) continue;
      for (Operation& get : ops) {
        if (get.kind != OpKind::kGet || get.output != put.value) continue;
        if (get.invoke_time <= put.complete_time) continue;
        get.output = earlier->value;
        if (!planted) planted = get.id;
      }
    }
    ASSERT_TRUE(planted.has_value()) << "seed " << seed;
    expect_caught(ops, *planted, seed);
  }
}

// A cas that swapped from a value a certain write had replaced before the cas began.
TEST(RegisterReductionLong, ASwapFromAnOverwrittenValueIsCaught) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::vector<Operation> ops = long_client_history(seed, 20'000);
    std::optional<uint64_t> planted;
    for (size_t i = ops.size() / 2; i < ops.size() && !planted; ++i) {
      Operation& cas = ops[i];
      if (cas.kind != OpKind::kCas || !cas.cas_succeeded || cas.outcome != Outcome::kOk) continue;
      const Overwrite o = overwritten_before(ops, cas.key, cas.invoke_time);
      if (o.old_write == nullptr || o.old_write->complete_time >= o.new_write->invoke_time) {
        continue;
      }
      cas.expected = o.old_write->value;
      planted = cas.id;
    }
    ASSERT_TRUE(planted.has_value()) << "seed " << seed;
    expect_caught(ops, *planted, seed);
  }
}

}  // namespace
}  // namespace synod::check
