// DeadlineTable: expired keys in deadline order, ties in the order added, cancelled entries
// never expire, and an expiry looks only at what is due (counted in comparisons, not timed).
#include "base/deadline_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace synod::base {
namespace {

using Ticks = DeadlineTable<uint64_t, int>;

TEST(DeadlineTable, ExpiredKeysComeOutEarliestDeadlineFirst) {
  Ticks table;
  table.add(30, 3);
  table.add(10, 1);
  table.add(20, 2);
  EXPECT_EQ(table.pop_expired(30), (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(table.empty());
}

TEST(DeadlineTable, EqualDeadlinesExpireInTheOrderAdded) {
  Ticks table;
  for (int key : {5, 1, 4, 2, 3}) table.add(7, key);
  table.add(6, 9);
  EXPECT_EQ(table.pop_expired(7), (std::vector<int>{9, 5, 1, 4, 2, 3}));
}

TEST(DeadlineTable, OnlyEntriesAtOrBeforeNowExpire) {
  Ticks table;
  table.add(10, 1);
  table.add(11, 2);
  table.add(12, 3);
  EXPECT_TRUE(table.pop_expired(9).empty());
  EXPECT_EQ(table.pop_expired(11), (std::vector<int>{1, 2}));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_TRUE(table.contains(3));
  EXPECT_FALSE(table.contains(1));
  EXPECT_TRUE(table.pop_expired(11).empty());  // nothing expires twice
  EXPECT_EQ(table.pop_expired(100), (std::vector<int>{3}));
}

TEST(DeadlineTable, ACancelledEntryNeverExpires) {
  Ticks table;
  table.add(1, 1);
  table.add(1, 2);
  table.add(1, 3);
  EXPECT_TRUE(table.cancel(2));
  EXPECT_FALSE(table.contains(2));
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.pop_expired(1), (std::vector<int>{1, 3}));
}

TEST(DeadlineTable, CancellingWhatIsNotThereChangesNothing) {
  Ticks table;
  table.add(5, 1);
  EXPECT_FALSE(table.cancel(2));  // never added
  EXPECT_EQ(table.pop_expired(5), (std::vector<int>{1}));
  EXPECT_FALSE(table.cancel(1));  // already expired
  EXPECT_TRUE(table.empty());
}

TEST(DeadlineTable, ACancelledKeyMayBeAddedAgainWithANewDeadline) {
  Ticks table;
  table.add(5, 1);
  table.add(5, 2);
  ASSERT_TRUE(table.cancel(1));
  table.add(5, 1);  // now behind 2 among equal deadlines
  EXPECT_EQ(table.deadline_of(1), 5u);
  EXPECT_EQ(table.pop_expired(5), (std::vector<int>{2, 1}));
  EXPECT_EQ(table.deadline_of(1), std::nullopt);
}

TEST(DeadlineTable, ARekeyedEntryKeepsItsDeadlineAndItsPlaceAmongEquals) {
  Ticks table;
  table.add(5, 1);
  table.add(5, 2);
  table.add(6, 3);
  ASSERT_TRUE(table.rekey(1, 10));
  EXPECT_FALSE(table.contains(1));
  EXPECT_EQ(table.deadline_of(10), 5u);
  EXPECT_FALSE(table.cancel(1));
  EXPECT_EQ(table.pop_expired(6), (std::vector<int>{10, 2, 3}));
}

TEST(DeadlineTable, RekeyingWhatIsNotThereChangesNothing) {
  Ticks table;
  table.add(5, 1);
  EXPECT_FALSE(table.rekey(2, 3));
  EXPECT_FALSE(table.contains(3));
  EXPECT_EQ(table.pop_expired(5), (std::vector<int>{1}));
}

TEST(DeadlineTable, NextDeadlineIsTheEarliest) {
  Ticks table;
  EXPECT_EQ(table.next_deadline(), std::nullopt);
  table.add(9, 1);
  table.add(4, 2);
  EXPECT_EQ(table.next_deadline(), 4u);
  table.cancel(2);
  EXPECT_EQ(table.next_deadline(), 9u);
}

TEST(DeadlineTable, ClearForgetsEveryEntry) {
  Ticks table;
  table.add(1, 1);
  table.add(2, 2);
  table.clear();
  EXPECT_TRUE(table.empty());
  EXPECT_TRUE(table.pop_expired(UINT64_MAX).empty());
  table.add(1, 1);  // keys are free again
  EXPECT_EQ(table.pop_expired(1), (std::vector<int>{1}));
}

TEST(DeadlineTable, WorksOverSteadyClockTimePoints) {
  using Clock = std::chrono::steady_clock;
  DeadlineTable<Clock::time_point, std::string> table;
  const Clock::time_point t0{};
  table.add(t0 + std::chrono::seconds(2), "transfer");
  table.add(t0 + std::chrono::milliseconds(1500), "proposal");
  table.add(t0 + std::chrono::seconds(7), "conf");
  EXPECT_EQ(table.pop_expired(t0 + std::chrono::seconds(2)),
            (std::vector<std::string>{"proposal", "transfer"}));
  EXPECT_EQ(table.size(), 1u);
}

TEST(DeadlineTableDeathTest, AddingAKeyTwiceAborts) {
  Ticks table;
  table.add(1, 1);
  EXPECT_DEATH(table.add(2, 1), "SYNOD_ASSERT");
}

TEST(DeadlineTableDeathTest, RekeyingOntoAKeyInUseAborts) {
  Ticks table;
  table.add(1, 1);
  table.add(2, 2);
  EXPECT_DEATH(table.rekey(1, 2), "SYNOD_ASSERT");
}

// A time whose comparisons are counted: the cost of an expiry, measured without a clock.
struct CountedTick {
  uint64_t value = 0;
  static inline uint64_t comparisons = 0;
  bool operator<(const CountedTick& other) const {
    ++comparisons;
    return value < other.value;
  }
};

TEST(DeadlineTable, AnExpiryLooksOnlyAtWhatIsDue) {
  constexpr int kEntries = 100'000;
  DeadlineTable<CountedTick, int> table;
  for (int i = 0; i < kEntries; ++i) table.add(CountedTick{uint64_t(1000 + i)}, i);
  CountedTick::comparisons = 0;
  EXPECT_TRUE(table.pop_expired(CountedTick{999}).empty());
  EXPECT_LE(CountedTick::comparisons, 2u);
  CountedTick::comparisons = 0;
  EXPECT_EQ(table.pop_expired(CountedTick{1002}), (std::vector<int>{0, 1, 2}));
  // Three expired of 100,000: a few comparisons each plus the one that stops, not one per entry.
  EXPECT_LE(CountedTick::comparisons, 3 * 4 + 1u);
  CountedTick::comparisons = 0;
  EXPECT_TRUE(table.cancel(kEntries / 2));
  // A search down a tree of 100,000 (about 17 levels, a few comparisons each), not a scan.
  EXPECT_LE(CountedTick::comparisons, 200u);
  EXPECT_EQ(table.size(), size_t{kEntries - 4});
}

// Many entries, random deadlines with many ties, random cancels: each expiry must give exactly
// what a stable sort of the live entries by deadline gives up to `now`.
TEST(DeadlineTable, MatchesAStableSortAcrossManyEntries) {
  const uint64_t seed = 20240601;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  constexpr int kEntries = 50'000;
  Ticks table;
  std::vector<std::tuple<uint64_t, int>> live;  // (deadline, key) in the order added
  for (int key = 0; key < kEntries; ++key) {
    const uint64_t deadline = rng() % 1000;  // about 50 entries per deadline
    table.add(deadline, key);
    live.emplace_back(deadline, key);
  }
  std::vector<bool> cancelled(kEntries, false);
  for (int i = 0; i < kEntries / 10; ++i) {
    const auto key = static_cast<int>(rng() % kEntries);
    EXPECT_EQ(table.cancel(key), !cancelled[key]);
    cancelled[key] = true;
  }
  std::erase_if(live, [&](auto& e) { return cancelled[std::get<1>(e)]; });
  std::stable_sort(live.begin(), live.end(),
                   [](auto& a, auto& b) { return std::get<0>(a) < std::get<0>(b); });
  size_t next = 0;
  for (uint64_t now = 0; now < 1100; now += 1 + rng() % 37) {
    std::vector<int> expected;
    while (next < live.size() && std::get<0>(live[next]) <= now) {
      expected.push_back(std::get<1>(live[next++]));
    }
    ASSERT_EQ(table.pop_expired(now), expected) << "now " << now;
    ASSERT_EQ(table.size(), live.size() - next);
  }
  EXPECT_TRUE(table.empty());
}

}  // namespace
}  // namespace synod::base
