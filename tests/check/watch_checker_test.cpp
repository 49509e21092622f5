// check::check_watch_stream on handmade streams with known verdicts: the faults it claims to
// catch (gap, duplicate, reorder, split revision, unjustified compaction cancel, missing tail)
// are caught, and correct streams pass.
#include "check/watch.h"

#include <gtest/gtest.h>

namespace synod::check {
namespace {

const std::vector<WatchEvent> kHistory = {
    {2, "a", false}, {3, "b", false}, {4, "a", false}, {4, "a2", false},
    {5, "a", true},  {6, "c", false}, {7, "a", false},
};

WatchSpec prefix_a(int64_t start = 1) {
  return WatchSpec{.key = "a", .range_end = "b", .start_revision = start};
}

TEST(WatchChecker, ACorrectStreamPasses) {
  std::vector<WatchReceived> got = {
      {{{2, "a", false}}},
      {{{4, "a", false}, {4, "a2", false}, {5, "a", true}}},
      {{{7, "a", false}}},
  };
  EXPECT_EQ(check_watch_stream(prefix_a(), kHistory, got, /*complete=*/true), std::nullopt);
}

TEST(WatchChecker, AGapIsCaught) {
  std::vector<WatchReceived> got = {{{{2, "a", false}}}, {{{5, "a", true}}}};
  auto verdict = check_watch_stream(prefix_a(), kHistory, got, false);
  ASSERT_TRUE(verdict);
  EXPECT_NE(verdict->find("out of order"), std::string::npos) << *verdict;
}

TEST(WatchChecker, ADuplicateIsCaught) {
  std::vector<WatchReceived> got = {{{{2, "a", false}}}, {{{2, "a", false}}}};
  auto verdict = check_watch_stream(prefix_a(), kHistory, got, false);
  ASSERT_TRUE(verdict);
  EXPECT_NE(verdict->find("duplicate"), std::string::npos) << *verdict;
}

TEST(WatchChecker, ASplitRevisionIsCaught) {
  std::vector<WatchReceived> got = {{{{2, "a", false}, {4, "a", false}}}, {{{4, "a2", false}}}};
  auto verdict = check_watch_stream(prefix_a(), kHistory, got, false);
  ASSERT_TRUE(verdict);
  EXPECT_NE(verdict->find("split"), std::string::npos) << *verdict;
}

TEST(WatchChecker, FiltersAndStartRevisionDecideWhatIsOwed) {
  WatchSpec w = prefix_a(4);
  w.no_delete = true;
  std::vector<WatchReceived> got = {{{{4, "a", false}, {4, "a2", false}}}, {{{7, "a", false}}}};
  EXPECT_EQ(check_watch_stream(w, kHistory, got, true), std::nullopt);
  std::vector<WatchReceived> with_delete = {{{{4, "a", false}, {4, "a2", false}}},
                                            {{{5, "a", true}}}};
  EXPECT_TRUE(check_watch_stream(w, kHistory, with_delete, false));
}

TEST(WatchChecker, ACompactionCancelMustBeJustified) {
  std::vector<WatchReceived> justified = {{{}, true, 3}};
  EXPECT_EQ(check_watch_stream(prefix_a(2), kHistory, justified, true), std::nullopt);
  std::vector<WatchReceived> unjustified = {{{{2, "a", false}}}, {{}, true, 2}};
  auto verdict = check_watch_stream(prefix_a(2), kHistory, unjustified, true);
  ASSERT_TRUE(verdict);
  EXPECT_NE(verdict->find("canceled for compaction"), std::string::npos) << *verdict;
  std::vector<WatchReceived> after_cancel = {{{}, true, 3}, {{{7, "a", false}}}};
  EXPECT_TRUE(check_watch_stream(prefix_a(2), kHistory, after_cancel, false));
}

TEST(WatchChecker, AMissingTailIsCaughtOnlyWhenDrained) {
  std::vector<WatchReceived> got = {{{{2, "a", false}}}};
  EXPECT_EQ(check_watch_stream(prefix_a(), kHistory, got, false), std::nullopt);
  auto verdict = check_watch_stream(prefix_a(), kHistory, got, true);
  ASSERT_TRUE(verdict);
  EXPECT_NE(verdict->find("missing"), std::string::npos) << *verdict;
}

TEST(WatchChecker, FromKeyAndSingleKeyRanges) {
  WatchSpec from_b{.key = "b", .range_end = std::string(1, '\0'), .start_revision = 1};
  std::vector<WatchReceived> got = {{{{3, "b", false}}}, {{{6, "c", false}}}};
  EXPECT_EQ(check_watch_stream(from_b, kHistory, got, true), std::nullopt);
  WatchSpec only_a2{.key = "a2", .range_end = "", .start_revision = 1};
  std::vector<WatchReceived> one = {{{{4, "a2", false}}}};
  EXPECT_EQ(check_watch_stream(only_a2, kHistory, one, true), std::nullopt);
}

}  // namespace
}  // namespace synod::check
