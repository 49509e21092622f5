// kv::SessionWindow: which of a client's requests take effect, and its encoding.
#include "kv/sessions.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "core/rand.h"

namespace synod::kv {
namespace {

TEST(SessionWindow, InOrderRequestsTakeEffectOnceEach) {
  SessionWindow w;
  for (uint64_t t = 100; t < 110; ++t) {
    EXPECT_TRUE(w.admit(t)) << t;
    EXPECT_FALSE(w.admit(t)) << t;
  }
  for (uint64_t t = 100; t < 110; ++t) EXPECT_FALSE(w.admit(t)) << t;
  EXPECT_EQ(w.highest(), 109u);
  EXPECT_FALSE(w.admit(0));
  // Once the opening holes are filled, an in-order client costs its highest timestamp only.
  SessionWindow in_order;
  for (uint64_t t = 1; t <= 300; ++t) ASSERT_TRUE(in_order.admit(t));
  EXPECT_EQ(in_order.encode().size(), 8u);
}

TEST(SessionWindow, ARequestOrderedAfterALaterOneTakesEffectOnce) {
  SessionWindow w;
  ASSERT_TRUE(w.admit(1000));
  EXPECT_TRUE(w.admit(1005));
  for (uint64_t t : {1003u, 1001u, 1004u, 1002u}) {
    EXPECT_TRUE(w.admit(t)) << t;
    EXPECT_FALSE(w.admit(t)) << t;
  }
  EXPECT_FALSE(w.admit(1000));
  EXPECT_FALSE(w.admit(1005));
}

TEST(SessionWindow, TheFirstRequestLeavesRoomForTheOnesBeforeIt) {
  SessionWindow w;
  ASSERT_TRUE(w.admit(5000));
  EXPECT_TRUE(w.admit(5000 - SessionWindow::kOpening));
  EXPECT_FALSE(w.admit(5000 - SessionWindow::kOpening));
  EXPECT_FALSE(w.admit(5000 - SessionWindow::kOpening - 1));
  SessionWindow low;
  ASSERT_TRUE(low.admit(3));  // no timestamp 0
  EXPECT_TRUE(low.admit(1));
  EXPECT_TRUE(low.admit(2));
  EXPECT_FALSE(low.admit(1));
}

TEST(SessionWindow, RequestsOlderThanTheWindowNeverTakeEffect) {
  SessionWindow w;
  ASSERT_TRUE(w.admit(10));
  const uint64_t far = 10 + SessionWindow::kWindow + 5;
  ASSERT_TRUE(w.admit(far));  // skipped over 11 .. far - 1; the window keeps the newest
  EXPECT_TRUE(w.admit(far - SessionWindow::kWindow));
  EXPECT_FALSE(w.admit(far - SessionWindow::kWindow - 1));  // skipped, but out of the window
  EXPECT_FALSE(w.admit(10));
  EXPECT_TRUE(w.admit(far - 1));
}

TEST(SessionWindow, EncodingRoundTripsAndRejectsWhatNoWindowWrites) {
  SessionWindow w;
  ASSERT_TRUE(w.admit(77));
  ASSERT_TRUE(w.admit(90));
  ASSERT_TRUE(w.admit(80));
  std::optional<SessionWindow> back = SessionWindow::decode(w.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->encode(), w.encode());
  EXPECT_FALSE(back->admit(80));
  EXPECT_TRUE(back->admit(81));
  EXPECT_FALSE(SessionWindow::decode("short"));
  EXPECT_FALSE(SessionWindow::decode(std::string(8 + SessionWindow::kWindow / 8 + 1, '\0')));
  // Highest 1 with a hole at timestamp 0.
  std::string bad(8, '\0');
  bad[7] = 1;
  bad.push_back(1);
  EXPECT_FALSE(SessionWindow::decode(bad));
}

// Against a model that remembers every timestamp: the window admits each at most once, admits
// every one newer than everything admitted, and admits a skipped one within the window.
TEST(SessionWindow, AgreesWithAModelOverShuffledStreams) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    SessionWindow w;
    std::set<uint64_t> applied;
    uint64_t next = 1 + rng.uniform(1000);
    std::vector<uint64_t> in_flight;
    for (int step = 0; step < 3000; ++step) {
      if (in_flight.empty() || rng.chance(0.5)) {
        in_flight.push_back(next);
        next += 1 + (rng.chance(0.01) ? rng.uniform(5000) : 0);
      }
      const size_t pick = rng.uniform(in_flight.size());
      const uint64_t t = in_flight[pick];
      if (!rng.chance(0.2)) in_flight.erase(in_flight.begin() + static_cast<long>(pick));
      const uint64_t before = w.highest();
      const bool admitted = w.admit(t);
      if (applied.contains(t)) {
        ASSERT_FALSE(admitted) << t;
      } else if (t > before) {
        ASSERT_TRUE(admitted) << t;
      }
      if (admitted) applied.insert(t);
      if (step % 500 == 0) {
        std::optional<SessionWindow> back = SessionWindow::decode(w.encode());
        ASSERT_TRUE(back);
        w = *back;
      }
    }
  }
}

}  // namespace
}  // namespace synod::kv
