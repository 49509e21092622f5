// The coordination checkers on handmade histories: each violation they claim to catch is
// caught, and correct histories pass.
#include <gtest/gtest.h>

#include "check/coordination.h"

namespace synod::check {
namespace {

TEST(FencedActs, IncreasingTokensFromSuccessiveHoldersPass) {
  EXPECT_TRUE(check_fenced_acts({{3, 1, 10}, {4, 1, 10}, {9, 2, 15}, {12, 3, 20}}).empty());
}

TEST(FencedActs, AStaleHolderWritingAfterANewerOneFails) {
  // Client 1 held with token 10, was paused, client 2 acquired (15) and wrote; client 1 wakes
  // and its write lands: exactly what fencing exists to stop.
  auto v = check_fenced_acts({{3, 1, 10}, {9, 2, 15}, {11, 1, 10}});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].invariant, "StaleFencingToken");
  EXPECT_NE(v[0].detail.find("index 11: client 1 wrote with token 10 after client 2"),
            std::string::npos)
      << v[0].detail;
}

TEST(FencedActs, TwoClientsUnderOneTokenFail) {
  auto v = check_fenced_acts({{3, 1, 10}, {5, 2, 10}});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].invariant, "SharedFencingToken");
}

TEST(LockFifo, AcquisitionsInTheOrderAskedPass) {
  // Reported out of order (client 2's answer arrived first): only revisions count.
  EXPECT_TRUE(check_lock_fifo({{2, 12, 20}, {1, 10, 11}, {3, 15, 25}}).empty());
}

TEST(LockFifo, AWaiterOvertakingAnEarlierOneFails) {
  auto v = check_lock_fifo({{1, 10, 30}, {2, 12, 20}});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].invariant, "LockNotFifo");
  EXPECT_NE(v[0].detail.find("client 2 (asked at revision 12) acquired at revision 20"),
            std::string::npos)
      << v[0].detail;
}

TEST(Semaphore, AtMostPermitsHoldersPass) {
  EXPECT_TRUE(check_semaphore({{1, {"a"}}, {2, {"a", "b"}}, {3, {"b"}}}, 2).empty());
}

TEST(Semaphore, MoreHoldersThanPermitsFail) {
  auto v = check_semaphore({{1, {"a", "b"}}, {2, {"a", "b", "c"}}}, 2);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].invariant, "SemaphoreOverflow");
  EXPECT_NE(v[0].detail.find("index 2: 3 holders of 2 permits: a b c"), std::string::npos)
      << v[0].detail;
}

TEST(LeaseExpiry, RevokeAfterThePromisePasses) {
  const std::vector<LeaseLife> leases = {
      {1, 5'000'000, true, 5'000'001},
      {2, 9'000'000, false, 0},  // revoked by its client, or still alive
  };
  EXPECT_TRUE(check_lease_expiry(leases).empty());
}

TEST(LeaseExpiry, RevokeBeforeThePromiseFails) {
  auto v = check_lease_expiry({{7, 5'000'000, true, 4'000'000}});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].invariant, "LeaseExpiredEarly");
  EXPECT_NE(v[0].detail.find("1000 ms before"), std::string::npos) << v[0].detail;
}

}  // namespace
}  // namespace synod::check
