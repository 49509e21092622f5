// kv::Lessor: expiry decided by the leader alone, renewals, retried revokes, and the extension
// a new leader gives every lease.
#include <gtest/gtest.h>

#include "kv/lessor.h"
#include "test_backend.h"

namespace synod::kv {
namespace {

constexpr int64_t kSecond = 1'000'000;

class LessorTest : public ::testing::Test {
 protected:
  LessorTest() : tb_(testing::make_test_backend()), store_(tb_->get()) {}
  void grant(int64_t id, int64_t ttl) {
    synodpb::Request r;
    r.mutable_lease_grant()->set_id(id);
    r.mutable_lease_grant()->set_ttl(ttl);
    ASSERT_TRUE(store_.apply(++index_, r).ok());
    lessor_.on_grant(id, ttl, now_);
  }
  // Becomes leader of `term` and has its lessor epoch applied.
  void lead(uint64_t term, int64_t at) {
    lessor_.set_leader(true, term, store_, at);
    ASSERT_TRUE(lessor_.epoch_due(store_, at));
    synodpb::Request r;
    r.set_lessor_epoch(term);
    ASSERT_TRUE(store_.apply(++index_, r).ok());
  }
  std::unique_ptr<testing::TestBackend> tb_;
  Store store_;
  Lessor lessor_{kSecond / 2, 3 * kSecond};  // extension 0.5 s, retry after 3 s
  uint64_t index_ = 0;
  int64_t now_ = 100 * kSecond;
};

TEST_F(LessorTest, OnlyTheLeaderRevokesAndOnlyOnceItExpired) {
  grant(7, 2);
  EXPECT_TRUE(lessor_.due_revokes(store_, now_ + 3 * kSecond, 10).empty());  // a follower: never
  lead(5, now_);
  EXPECT_TRUE(lessor_.due_revokes(store_, now_ + 2 * kSecond, 10).empty());  // 2 s + 0.5 s extension
  EXPECT_EQ(lessor_.due_revokes(store_, now_ + 2 * kSecond + kSecond / 2, 10), std::vector<int64_t>{7});
}

TEST_F(LessorTest, ARenewalPushesTheDeadline) {
  grant(7, 2);
  lead(5, now_);
  EXPECT_EQ(lessor_.renew(7, store_, now_ + 2 * kSecond), 2);
  EXPECT_TRUE(lessor_.due_revokes(store_, now_ + 3 * kSecond, 10).empty());
  EXPECT_EQ(lessor_.due_revokes(store_, now_ + 4 * kSecond, 10), std::vector<int64_t>{7});
}

TEST_F(LessorTest, AnExpiredOrUnknownLeaseIsNotRenewed) {
  grant(7, 1);
  lead(5, now_);
  EXPECT_EQ(lessor_.renew(7, store_, now_ + 2 * kSecond), 0);  // expired, revoke on its way
  EXPECT_EQ(lessor_.renew(99, store_, now_), 0);
  EXPECT_FALSE(lessor_.deadline(7, now_ + 2 * kSecond));
}

TEST_F(LessorTest, ARevokeThatDoesNotApplyIsProposedAgainAfterTheRetryInterval) {
  grant(7, 1);
  lead(5, now_);
  const int64_t late = now_ + 2 * kSecond;
  EXPECT_EQ(lessor_.due_revokes(store_, late, 10).size(), 1u);
  EXPECT_TRUE(lessor_.due_revokes(store_, late + kSecond, 10).empty());
  EXPECT_EQ(lessor_.due_revokes(store_, late + 3 * kSecond, 10).size(), 1u);
  lessor_.on_revoke(7);
  EXPECT_TRUE(lessor_.due_revokes(store_, late + 10 * kSecond, 10).empty());
}

TEST_F(LessorTest, ANewLeaderStartsEveryLeaseAfreshPlusTheExtension) {
  grant(7, 2);
  // Granted long ago as a follower saw it; the old leader's renewals are unknown here.
  lead(5, now_ + 60 * kSecond);
  EXPECT_TRUE(lessor_.due_revokes(store_, now_ + 62 * kSecond, 10).empty());
  EXPECT_EQ(lessor_.due_revokes(store_, now_ + 62 * kSecond + kSecond / 2, 10).size(), 1u);
}

// Regression: a paused leader woke, was deposed and was handed leadership back before its next
// tick, so the lessor never saw it as a follower; it kept the deadlines it had before the pause
// and revoked leases the interim leader had renewed (simulator seed 40009790 --workload lock).
TEST_F(LessorTest, LeadingANewTermIsAPromotionEvenWithoutAFollowerCallBetween) {
  grant(7, 2);
  lead(5, now_);
  lead(7, now_ + 60 * kSecond);  // leader again, two terms later
  EXPECT_TRUE(lessor_.due_revokes(store_, now_ + 62 * kSecond, 10).empty());
  EXPECT_EQ(lessor_.due_revokes(store_, now_ + 62 * kSecond + kSecond / 2, 10).size(), 1u);
}

TEST_F(LessorTest, RevokesPerCallAreBounded) {
  for (int64_t id = 1; id <= 5; ++id) grant(id, 1);
  lead(5, now_);
  EXPECT_EQ(lessor_.due_revokes(store_, now_ + 5 * kSecond, 3), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(lessor_.due_revokes(store_, now_ + 5 * kSecond, 3), (std::vector<int64_t>{4, 5}));
}

TEST_F(LessorTest, ANewLeaderRenewsAndRevokesOnlyOnceItsEpochApplied) {
  grant(7, 1);
  lessor_.set_leader(true, 5, store_, now_);
  EXPECT_FALSE(lessor_.serving(store_));
  EXPECT_TRUE(lessor_.due_revokes(store_, now_ + 10 * kSecond, 10).empty());
  EXPECT_TRUE(lessor_.epoch_due(store_, now_));
  EXPECT_FALSE(lessor_.epoch_due(store_, now_ + kSecond));     // proposed, not yet applied
  EXPECT_TRUE(lessor_.epoch_due(store_, now_ + 3 * kSecond));  // lost: proposed again
  synodpb::Request r;
  r.set_lessor_epoch(5);
  ASSERT_TRUE(store_.apply(++index_, r).ok());
  EXPECT_TRUE(lessor_.serving(store_));
  EXPECT_FALSE(lessor_.epoch_due(store_, now_ + 10 * kSecond));
  EXPECT_EQ(lessor_.due_revokes(store_, now_ + 10 * kSecond, 10), std::vector<int64_t>{7});
}

TEST_F(LessorTest, AnExpiryDecidedByALeaderOfAnEarlierEpochChangesNothing) {
  // A deposed leader's revoke, chosen after a later leader's epoch: that leader may have renewed
  // the lease since. A revoke of the current epoch, and a client's revoke, apply.
  grant(7, 10);
  grant(8, 10);
  lead(6, now_);
  synodpb::Request stale;
  stale.mutable_lease_revoke()->set_id(7);
  stale.set_expiry_epoch(5);
  EXPECT_FALSE(store_.apply(++index_, stale).ok());
  EXPECT_TRUE(store_.lease(7).has_value());
  synodpb::Request current = stale;
  current.set_expiry_epoch(6);
  EXPECT_TRUE(store_.apply(++index_, current).ok());
  EXPECT_FALSE(store_.lease(7).has_value());
  synodpb::Request client;
  client.mutable_lease_revoke()->set_id(8);
  EXPECT_TRUE(store_.apply(++index_, client).ok());
  EXPECT_FALSE(store_.lease(8).has_value());
  // An epoch never goes back.
  synodpb::Request older;
  older.set_lessor_epoch(4);
  EXPECT_TRUE(store_.apply(++index_, older).ok());
  EXPECT_EQ(store_.lessor_epoch(), 6u);
}

}  // namespace
}  // namespace synod::kv
