// The kv model (strings per key: get, put, append): its search, the reductions before it and the
// decision without search on prefix-code values, on handmade histories and against a brute
// force on random ones. Histories that are not linearizable must stay caught after every
// reduction.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>

#include "check/history_json.h"
#include "check/kv_model.h"
#include "check/kv_structure.h"
#include "check/models.h"
#include "test_ops.h"

namespace synod::check {
namespace {

Operation put(uint64_t id, std::string v, uint64_t t0, uint64_t t1, Outcome o = Outcome::kOk) {
  Operation w = testing::make_op(id, static_cast<uint32_t>(id), OpKind::kPut, "k", t0, t1, o);
  w.value = std::move(v);
  return w;
}

Operation append(uint64_t id, std::string v, uint64_t t0, uint64_t t1, Outcome o = Outcome::kOk) {
  Operation w = testing::make_op(id, static_cast<uint32_t>(id), OpKind::kAppend, "k", t0, t1, o);
  w.value = std::move(v);
  return w;
}

Operation get(uint64_t id, std::string v, uint64_t t0, uint64_t t1) {
  Operation r = testing::make_op(id, static_cast<uint32_t>(id), OpKind::kGet, "k", t0, t1);
  r.output = std::move(v);
  return r;
}

// Both ways of deciding, which must agree; returns the structured one.
LinearizabilityResult check(const std::vector<Operation>& h) {
  const LinearizabilityResult fast = check_string_kv(h);
  const LinearizabilityResult search = check_string_kv(h, {}, KvDecision::kSearch);
  EXPECT_EQ(fast.verdict, search.verdict) << fast.explanation << search.explanation;
  return fast;
}

Verdict verdict(const std::vector<Operation>& h) {
  return check(h).verdict;
}

KvStructureVerdict structure(const std::vector<Operation>& h) {
  std::vector<const Operation*> ops;
  for (const Operation& op : h) ops.push_back(&op);
  return check_kv_structure(ops);
}

constexpr Verdict kOk = Verdict::kLinearizable;
constexpr Verdict kBad = Verdict::kNotLinearizable;

TEST(KvModel, AppendsConcatenateAndAGetReadsTheWhole) {
  EXPECT_EQ(verdict({append(0, "a;", 0, 1), append(1, "b;", 2, 3), get(2, "a;b;", 4, 5)}), kOk);
  EXPECT_EQ(verdict({append(0, "a;", 0, 1), append(1, "b;", 2, 3), get(2, "b;a;", 4, 5)}), kBad);
}

TEST(KvModel, AnAbsentKeyReadsEmpty) {
  EXPECT_EQ(verdict({get(0, "", 0, 1), append(1, "a;", 2, 3)}), kOk);
  EXPECT_EQ(verdict({append(1, "a;", 0, 1), get(0, "", 2, 3)}), kBad);
}

TEST(KvModel, APutReplacesTheValue) {
  EXPECT_EQ(verdict({append(0, "a;", 0, 1), put(1, "p;", 2, 3), append(2, "b;", 4, 5),
                     get(3, "p;b;", 6, 7)}),
            kOk);
  // A put's value after another write's: the put would have replaced it.
  EXPECT_EQ(verdict({append(0, "a;", 0, 9), put(1, "p;", 0, 9), get(2, "a;p;", 10, 11)}), kBad);
}

TEST(KvModel, ConcurrentAppendsMayLandInEitherOrderButOnlyOne) {
  std::vector<Operation> h = {append(0, "a;", 0, 10), append(1, "b;", 0, 10),
                              get(2, "b;a;", 11, 12)};
  EXPECT_EQ(verdict(h), kOk);
  h.push_back(get(3, "a;b;", 13, 14));  // readers disagree on the order
  EXPECT_EQ(verdict(h), kBad);
}

TEST(KvModel, AStaleGetAfterACompletedAppendFails) {
  const LinearizabilityResult r =
      check({append(0, "a;", 0, 1), append(1, "b;", 2, 3), get(2, "a;", 4, 5)});
  EXPECT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.failed_id, 2u);
}

TEST(KvModel, AGetOfAValueNobodyWroteFails) {
  EXPECT_EQ(verdict({append(0, "a;", 0, 1), get(1, "a;z;", 2, 3)}), kBad);
  // A failed append never took effect.
  EXPECT_EQ(verdict({append(0, "a;", 0, 1, Outcome::kFail), get(1, "a;", 2, 3)}), kBad);
}

TEST(KvModel, AnIndeterminateAppendMayLandLateOrNever) {
  EXPECT_EQ(
      verdict({append(0, "a;", 0, 1, Outcome::kInfo), get(1, "", 2, 3), get(2, "a;", 50, 60)}),
      kOk);
  EXPECT_EQ(verdict({append(0, "a;", 0, 1, Outcome::kInfo), get(1, "", 2, 3)}), kOk);
  // But it lands once, and not before its invocation.
  EXPECT_EQ(verdict({append(0, "a;", 0, 1, Outcome::kInfo), get(1, "a;", 2, 3), get(2, "", 4, 5)}),
            kBad);
  EXPECT_EQ(verdict({get(1, "a;", 0, 1), append(0, "a;", 2, 3, Outcome::kInfo)}), kBad);
}

TEST(KvModel, AnAppendNobodySawMustStillLandBetweenTheReads) {
  // The ok append "u;" completes between the put and the get that read the put alone.
  EXPECT_EQ(verdict({put(0, "p;", 0, 1), append(1, "u;", 4, 5), get(2, "p;", 9, 10)}), kBad);
  // Concurrent with the get, it can land after it.
  EXPECT_EQ(verdict({put(0, "p;", 0, 1), append(1, "u;", 4, 12), get(2, "p;", 9, 10)}), kOk);
  // Indeterminate, it may never have happened.
  EXPECT_EQ(
      verdict({put(0, "p;", 0, 1), append(1, "u;", 4, 5, Outcome::kInfo), get(2, "p;", 9, 10)}),
      kOk);
}

TEST(KvModel, TwoPutsWhoseValuesMustEachStayCurrentOverOverlappingTimesFail) {
  // p; must hold from 1 (its put completes) to 20 (a get of it is invoked); q; from 11 to 30.
  const std::vector<Operation> h = {put(0, "p;", 0, 1), put(1, "q;", 10, 11), get(2, "p;", 20, 21),
                                    get(3, "q;", 30, 31)};
  EXPECT_EQ(verdict(h), kBad);
  const KvStructureVerdict v = structure(h);
  ASSERT_TRUE(v.applies);
  EXPECT_NE(v.reason.find("neither can come before the other"), std::string::npos) << v.reason;
  EXPECT_EQ(v.window.size(), 4u);
}

TEST(KvModel, TheInitialValueComesFirst) {
  EXPECT_EQ(verdict({put(0, "p;", 0, 1), get(1, "p;", 2, 3), get(2, "", 4, 5)}), kBad);
  EXPECT_EQ(verdict({put(0, "p;", 0, 10), get(1, "p;", 2, 3), get(2, "", 1, 5)}), kOk);
}

TEST(KvModel, GetsThatOrderAnAppendBeforeAnotherBindThemInTime) {
  // b; must come right after a;, but b; completed before a; was invoked.
  const std::vector<Operation> h = {append(1, "b;", 0, 1), append(0, "a;", 2, 3),
                                    get(2, "a;b;", 4, 5)};
  EXPECT_EQ(verdict(h), kBad);
  EXPECT_NE(structure(h).reason.find("order"), std::string::npos) << structure(h).reason;
}

TEST(KvModel, ValuesThatAreNotAPrefixCodeAreSearched) {
  // "a" begins "ab": the values read do not split one way only.
  const std::vector<Operation> h = {append(0, "a", 0, 1), append(1, "b", 2, 3), put(2, "ab", 4, 5),
                                    get(3, "ab", 6, 7)};
  EXPECT_FALSE(structure(h).applies);
  const LinearizabilityResult r = check(h);
  EXPECT_EQ(r.verdict, kOk);
  EXPECT_EQ(r.keys_without_search, 0u);
  // Non-prefix-code writes: "ab" then "c" read as "abc" fits a put and an append.
  EXPECT_EQ(verdict({put(0, "ab", 0, 1), append(1, "c", 2, 3), get(2, "abc", 4, 5),
                     append(3, "a", 6, 7), get(4, "abca", 8, 9)}),
            kOk);
  EXPECT_EQ(verdict({put(0, "ab", 0, 1), append(1, "c", 2, 3), get(2, "abc", 4, 5),
                     append(3, "a", 6, 7), get(4, "abc", 8, 9)}),
            kBad);
}

TEST(KvModel, KeysAreCheckedApart) {
  std::vector<Operation> h = {append(0, "a;", 0, 1), get(1, "a;", 2, 3)};
  Operation other = get(2, "a;", 4, 5);
  other.key = "j";  // nobody appended to j
  h.push_back(other);
  const LinearizabilityResult r = check(h);
  EXPECT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.key, "j");
}

// Many timed-out appends nobody saw, as a paused leader leaves behind: they are dropped before
// the search, and a stale get among them is still caught, by both ways of deciding.
TEST(KvModel, AStaleGetAmongManyUnobservedTimedOutAppendsIsStillCaught) {
  std::vector<Operation> h;
  for (uint64_t i = 0; i < 60; ++i) {
    h.push_back(append(i, "t" + std::to_string(i) + ";", i, i + 1, Outcome::kInfo));
  }
  h.push_back(append(60, "a;", 100, 101));
  h.push_back(get(61, "a;", 102, 103));
  EXPECT_EQ(verdict(h), kOk);
  h.push_back(append(62, "b;", 104, 105));
  h.push_back(get(63, "a;", 106, 107));  // stale: b; completed before
  CheckOptions opts;
  opts.max_states = 100'000;
  EXPECT_EQ(check_string_kv(h, opts).verdict, kBad);
  EXPECT_EQ(check_string_kv(h, opts, KvDecision::kSearch).verdict, kBad);
}

// A timed-out append some get saw did take effect, and before that get: it is not dropped.
TEST(KvModel, AnObservedTimedOutAppendIsKept) {
  std::vector<Operation> h = {append(0, "a;", 0, 1, Outcome::kInfo), get(1, "a;", 2, 3),
                              get(2, "", 4, 5)};
  EXPECT_EQ(verdict(h), kBad);
  // Its value inside a longer value read counts too (no prefix code here: "xa;" holds "a;").
  h = {append(0, "a;", 0, 1, Outcome::kInfo), put(1, "x", 0, 1), get(2, "xa;", 2, 3),
       get(3, "x", 4, 5)};
  EXPECT_EQ(verdict(h), kBad);
  // A timed-out put whose value begins what a get read is kept as well.
  h = {put(0, "p;", 0, 1, Outcome::kInfo), get(1, "p;", 2, 3), get(2, "", 4, 5)};
  EXPECT_EQ(verdict(h), kBad);
}

TEST(KvModel, FailingWindowsAreNotLinearizableByThemselves) {
  const std::vector<Operation> h = {
      append(0, "a;", 0, 1), get(1, "a;", 2, 3),     append(2, "b;", 4, 5),   get(3, "a;b;", 6, 7),
      append(4, "c;", 8, 9), get(5, "a;b;", 10, 11), get(6, "a;b;c;", 12, 13)};
  for (KvDecision d : {KvDecision::kStructure, KvDecision::kSearch}) {
    const LinearizabilityResult r = check_string_kv(h, {}, d);
    ASSERT_EQ(r.verdict, kBad);
    EXPECT_EQ(r.failed_id, 5u);
    EXPECT_LT(r.failing_window.size(), h.size());
    EXPECT_EQ(check_string_kv(r.failing_window, {}, KvDecision::kSearch).verdict, kBad);
  }
}

// When the search of the structure's window runs out of budget, the structure's own window and
// reason stand, and the window still fails by itself.
TEST(KvModel, TheStructuresWindowStandsWhenItsSearchRunsOut) {
  const std::vector<Operation> h = {append(0, "a;", 0, 1), append(1, "b;", 2, 3),
                                    get(2, "a;b;", 4, 5), append(3, "c;", 6, 7),
                                    get(4, "a;b;", 8, 9)};
  CheckOptions opts;
  opts.max_states = 1;
  const LinearizabilityResult r = check_string_kv(h, opts);
  ASSERT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.keys_without_search, 1u);
  EXPECT_NE(r.explanation.find("not linearizable by itself"), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("#4"), std::string::npos) << r.explanation;
  EXPECT_EQ(check_string_kv(r.failing_window, {}, KvDecision::kSearch).verdict, kBad);
  // With the budget, the search's explanation follows the structure's reason.
  const LinearizabilityResult full = check_string_kv(h);
  EXPECT_NE(full.explanation.find("no linearization reaches the return of"), std::string::npos);
  EXPECT_EQ(full.failed_id, 4u);
}

TEST(KvModel, ReadsPorcupinesKvFormat) {
  std::istringstream in(R"({:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :get, :key "0", :value nil}
{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :ok, :f :get, :key "0", :value "x 0 0 y"}
{:process 2, :type :invoke, :f :put, :key "1", :value "x 2 0 y"}
{:process 2, :type :info, :f :put, :key "1", :value "x 2 0 y"}
)");
  std::vector<Operation> h;
  HistoryStats stats;
  ASSERT_FALSE(read_history(in, HistoryFormat::kEdn, h, &stats, ObjectModel::kKv));
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(stats.keys, 2u);
  EXPECT_EQ(h[0].kind, OpKind::kAppend);
  EXPECT_EQ(h[0].value, "x 0 0 y");
  EXPECT_EQ(h[1].kind, OpKind::kGet);
  EXPECT_EQ(h[1].output, "x 0 0 y");
  EXPECT_EQ(h[2].kind, OpKind::kPut);
  EXPECT_EQ(h[2].outcome, Outcome::kInfo);
  EXPECT_EQ(check_history(h, ObjectModel::kKv).verdict, kOk);
  std::istringstream cas(R"({:process 0, :type :invoke, :f :cas, :key "0", :value [1 2]})");
  h.clear();
  const auto error = read_history(cas, HistoryFormat::kEdn, h, nullptr, ObjectModel::kKv);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("unknown f \"cas\" for the kv model (known: get, put, append)"),
            std::string::npos)
      << *error;
}

// ---------------------------------------------------------------------------------------------
// Random small histories against a brute force: every order of the operations that respects
// real time, every indeterminate write either taking effect or not.

bool brute_force(const std::vector<Operation>& h) {
  std::vector<const Operation*> ops;
  for (const Operation& op : h) {
    if (op.outcome == Outcome::kFail) continue;
    if (op.kind == OpKind::kGet && op.outcome != Outcome::kOk) continue;
    ops.push_back(&op);
  }
  std::vector<bool> done(ops.size());
  auto completes = [](const Operation* o) {
    return o->outcome == Outcome::kInfo ? UINT64_MAX : o->complete_time;
  };
  std::function<bool(const std::string&)> extend = [&](const std::string& state) {
    bool required_left = false;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (!done[i] && ops[i]->outcome != Outcome::kInfo) required_left = true;
    }
    if (!required_left) return true;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (done[i]) continue;
      bool minimal = true;  // no pending operation completed before this one was invoked
      for (size_t j = 0; j < ops.size(); ++j) {
        if (!done[j] && j != i && completes(ops[j]) < ops[i]->invoke_time) minimal = false;
      }
      if (!minimal) continue;
      std::string next = state;
      const Operation& o = *ops[i];
      if (o.kind == OpKind::kGet && state != o.output.value_or("")) continue;
      if (o.kind == OpKind::kPut) next = o.value;
      if (o.kind == OpKind::kAppend) next += o.value;
      done[i] = true;
      const bool ok = extend(next);
      done[i] = false;
      if (ok) return true;
    }
    return false;  // indeterminate ones left pending never took effect: covered above
  };
  return extend("");
}

// A history from a random execution (each operation takes effect at a random point of its
// interval, or for an indeterminate write maybe never), then up to twice (each time with
// probability 3/4) one get's value replaced by the value at another point of the execution, or
// an operation's interval moved. `tokens`: values drawn from a prefix code ("a;", "b;", ...);
// otherwise from short strings that are not one ("a", "b", "ab", "").
std::vector<Operation> random_history(std::mt19937_64& rng, bool tokens, int max_ops = 7,
                                      uint64_t span = 40) {
  const int n = 2 + static_cast<int>(rng() % (max_ops - 1));
  std::vector<Operation> h;
  std::vector<uint64_t> points;
  const char* plain[] = {"a", "b", "ab", "", "ba"};
  for (int i = 0; i < n; ++i) {
    const uint64_t t0 = rng() % span, t1 = t0 + rng() % 15;
    const uint64_t roll = rng() % 10;
    std::string v = tokens ? "v" + std::to_string(i) + ";" : plain[rng() % 5];
    Outcome o = rng() % 5 == 0 ? Outcome::kInfo : (rng() % 12 == 0 ? Outcome::kFail : Outcome::kOk);
    if (roll < 4) {
      h.push_back(get(i, "", t0, t1));
    } else if (roll < 6) {
      h.push_back(put(i, v, t0, t1, o));
    } else {
      h.push_back(append(i, v, t0, t1, o));
    }
    points.push_back(t0 + (t1 > t0 ? rng() % (t1 - t0 + 1) : 0));
  }
  std::vector<size_t> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return points[a] < points[b]; });
  std::string state;
  std::vector<std::string> states = {""};
  for (size_t i : order) {
    Operation& o = h[i];
    if (o.kind == OpKind::kGet) {
      o.output = state;
      continue;
    }
    if (o.outcome == Outcome::kFail) continue;
    if (o.outcome == Outcome::kInfo && rng() % 2 == 0) continue;  // never took effect
    state = o.kind == OpKind::kPut ? o.value : state + o.value;
    states.push_back(state);
  }
  for (int k = 0; k < 2 && rng() % 4 != 0; ++k) {
    Operation& o = h[rng() % n];
    if (o.kind == OpKind::kGet) {
      o.output = states[rng() % states.size()];
    } else {
      o.invoke_time = rng() % span;
      o.complete_time = o.invoke_time + rng() % 5;
    }
  }
  for (int i = 0; i < n; ++i) {
    // Indeterminate gets are dropped; keep them in to see that.
    if (h[i].kind == OpKind::kGet && rng() % 15 == 0) h[i].outcome = Outcome::kInfo;
  }
  return h;
}

std::string dump(const std::vector<Operation>& h) {
  std::string out;
  for (const Operation& op : h) out += "  " + to_string(op) + "\n";
  return out;
}

void agree_with_brute_force(bool tokens, uint64_t seed_offset) {
  const char* env = std::getenv("SYNOD_SEED");  // replay or widen: SYNOD_SEED=n
  const uint64_t seed = (env != nullptr ? std::strtoull(env, nullptr, 10) : 20260311) + seed_offset;
  std::cout << "seed " << seed << (env ? "" : " (SYNOD_SEED=n replays)") << "\n";
  std::mt19937_64 rng(seed);
  int bad = 0, structured = 0;
  constexpr int kTrials = 5000;
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::vector<Operation> h = random_history(rng, tokens);
    const bool want = brute_force(h);
    for (KvDecision d : {KvDecision::kStructure, KvDecision::kSearch}) {
      const LinearizabilityResult r = check_string_kv(h, {}, d);
      ASSERT_EQ(r.verdict == kOk, want)
          << "trial " << trial << (d == KvDecision::kSearch ? " search" : " structure") << ": "
          << r.explanation << dump(h);
      if (r.verdict == kOk) continue;
      // The window is evidence on its own.
      ASSERT_FALSE(brute_force(r.failing_window)) << "trial " << trial << ": window linearizable\n"
                                                  << dump(r.failing_window) << "of\n"
                                                  << dump(h);
      if (d == KvDecision::kStructure) structured += r.keys_without_search;
    }
    // The decision without search, and its own window (the search's replaces it above).
    const KvStructureVerdict v = structure(h);
    if (tokens) {
      ASSERT_TRUE(v.applies);
    }
    if (v.applies) {
      ASSERT_EQ(v.linearizable, want) << "trial " << trial << ": " << v.reason << dump(h);
      std::vector<Operation> window;
      for (size_t i : v.window) window.push_back(h[i]);
      ASSERT_TRUE(want || !brute_force(window))
          << "trial " << trial << ": " << v.reason << "\nwindow linearizable\n"
          << dump(window) << "of\n"
          << dump(h);
    }
    bad += !want;
  }
  std::cout << kTrials << " histories, " << bad << " not linearizable, " << structured
            << " of those decided without search\n";
  EXPECT_GT(bad, kTrials / 6);
  EXPECT_LT(bad, kTrials * 5 / 6);
  if (tokens) {
    EXPECT_GT(structured, kTrials / 10);
  }
}

TEST(KvModelRandom, AgreesWithBruteForceOnPrefixCodeValues) {
  agree_with_brute_force(/*tokens=*/true, 0);
}

TEST(KvModelRandom, AgreesWithBruteForceOnOtherValues) {
  agree_with_brute_force(/*tokens=*/false, 1);
}

// Longer histories than the brute force can take: the decision without search against the
// search, and the decision's own windows checked by the search.
TEST(KvModelRandom, AgreesWithTheSearchOnLongerHistories) {
  const char* env = std::getenv("SYNOD_SEED");
  const uint64_t seed = (env != nullptr ? std::strtoull(env, nullptr, 10) : 20260311) + 2;
  std::cout << "seed " << seed << "\n";
  std::mt19937_64 rng(seed);
  CheckOptions opts;
  opts.max_states = 200'000;
  int bad = 0, decided = 0;
  constexpr int kTrials = 1500;
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::vector<Operation> h = random_history(rng, /*tokens=*/true, 30, 120);
    const KvStructureVerdict v = structure(h);
    ASSERT_TRUE(v.applies);
    const Verdict search = check_string_kv(h, opts, KvDecision::kSearch).verdict;
    if (search == Verdict::kUnknown) continue;
    ++decided;
    ASSERT_EQ(v.linearizable, search == kOk) << "trial " << trial << ": " << v.reason << dump(h);
    if (v.linearizable) continue;
    ++bad;
    std::vector<Operation> window;
    for (size_t i : v.window) window.push_back(h[i]);
    // Long chains of appends can leave the window's search undecided; never linearizable.
    ASSERT_NE(check_string_kv(window, opts, KvDecision::kSearch).verdict, kOk)
        << "trial " << trial << ": " << v.reason << "\nwindow\n"
        << dump(window) << "of\n"
        << dump(h);
  }
  std::cout << decided << " histories decided by the search, " << bad << " not linearizable\n";
  EXPECT_GT(decided, kTrials * 9 / 10);
  EXPECT_GT(bad, decided / 6);
  EXPECT_LT(bad, decided * 5 / 6);
}

}  // namespace
}  // namespace synod::check
