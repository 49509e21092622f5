// kv::recipe against a real kv::Store: the steps of the lock and semaphore recipes, read back
// as the server's services and the simulator's clients read them.
#include <gtest/gtest.h>

#include "kv/recipe.h"
#include "kv/store.h"
#include "test_backend.h"

namespace synod::kv {
namespace {

class RecipeTest : public ::testing::Test {
 protected:
  RecipeTest() : tb_(testing::make_test_backend()), store_(tb_->get()) {}
  ApplyResult apply(synodpb::Request r) { return store_.apply(++index_, r); }
  void grant(int64_t lease) {
    synodpb::Request r;
    r.mutable_lease_grant()->set_id(lease);
    r.mutable_lease_grant()->set_ttl(10);
    ASSERT_TRUE(apply(r).ok());
  }
  void revoke(int64_t lease) {
    synodpb::Request r;
    r.mutable_lease_revoke()->set_id(lease);
    ASSERT_TRUE(apply(r).ok());
  }
  recipe::Contended contend(int64_t lease, int64_t permits = 0) {
    synodpb::Request r;
    *r.mutable_txn() = recipe::contend_txn("lock", lease, "");
    ApplyResult res = apply(r);
    EXPECT_TRUE(res.ok());
    auto c = recipe::read_contended(*res.response<etcdserverpb::TxnResponse>(), "", permits);
    EXPECT_TRUE(c);
    return *c;
  }
  recipe::Wait wait(int64_t lease, int64_t my_revision, int64_t permits = 0) {
    auto got = store_.range(recipe::predecessors("lock", my_revision, permits));
    EXPECT_TRUE(got);
    return recipe::read_predecessors(*got, "lock", lease, permits);
  }
  std::unique_ptr<testing::TestBackend> tb_;
  Store store_;
  uint64_t index_ = 0;
};

TEST_F(RecipeTest, ContenderKeysAreNamedByTheLeaseInHex) {
  EXPECT_EQ(recipe::contender_key("lock", 0x694d7a3b2c1d0e0f), "lock/694d7a3b2c1d0e0f");
  EXPECT_EQ(recipe::contender_key("lock", 0xabc), "lock/abc");
}

TEST_F(RecipeTest, TheFirstContenderHoldsAndTheSecondWaitsForIt) {
  grant(0xa);
  grant(0xb);
  const recipe::Contended a = contend(0xa);
  EXPECT_TRUE(a.first);
  const recipe::Contended b = contend(0xb);
  EXPECT_FALSE(b.first);
  EXPECT_GT(b.my_revision, a.my_revision);
  const recipe::Wait w = wait(0xb, b.my_revision);
  EXPECT_FALSE(w.held);
  EXPECT_EQ(w.watch_key, "lock/a");
  revoke(0xa);
  EXPECT_TRUE(wait(0xb, b.my_revision).held);
}

TEST_F(RecipeTest, ContendingAgainFindsTheSameKeyAndRevision) {
  grant(0xa);
  const recipe::Contended first = contend(0xa);
  const recipe::Contended again = contend(0xa);  // a retried txn
  EXPECT_EQ(again.my_revision, first.my_revision);
  EXPECT_TRUE(again.first);
}

TEST_F(RecipeTest, AWaiterWhoseLeaseExpiredIsToldItsKeyIsGone) {
  grant(0xa);
  grant(0xb);
  contend(0xa);
  const recipe::Contended b = contend(0xb);
  revoke(0xb);
  revoke(0xa);
  EXPECT_TRUE(wait(0xb, b.my_revision).gone);  // not "held": it has no key
}

TEST_F(RecipeTest, ASemaphoreAdmitsPermitsHoldersAndWatchesThePrefix) {
  for (int64_t l : {0xa, 0xb, 0xc}) grant(l);
  int64_t rev[3];
  for (int i = 0; i < 3; ++i) rev[i] = contend(0xa + i, 2).my_revision;
  EXPECT_TRUE(wait(0xa, rev[0], 2).held);
  EXPECT_TRUE(wait(0xb, rev[1], 2).held);
  const recipe::Wait third = wait(0xc, rev[2], 2);
  EXPECT_FALSE(third.held);
  EXPECT_EQ(third.watch_key, "lock/");
  EXPECT_EQ(third.watch_end, "lock0");
  revoke(0xa);
  EXPECT_TRUE(wait(0xc, rev[2], 2).held);
}

TEST_F(RecipeTest, ASemaphoreRefusesADifferentPermitCount) {
  synodpb::Request r;
  *r.mutable_txn() = recipe::permits_txn("sem", 2);
  ApplyResult first = apply(r);
  EXPECT_FALSE(recipe::check_permits(*first.response<etcdserverpb::TxnResponse>(), "sem", 2));
  ApplyResult same = apply(r);
  EXPECT_FALSE(recipe::check_permits(*same.response<etcdserverpb::TxnResponse>(), "sem", 2));
  *r.mutable_txn() = recipe::permits_txn("sem", 3);
  ApplyResult other = apply(r);
  auto refused = recipe::check_permits(*other.response<etcdserverpb::TxnResponse>(), "sem", 3);
  ASSERT_TRUE(refused);
  EXPECT_EQ(*refused, "synod: semaphore sem has 2 permits, not 3");
}

}  // namespace
}  // namespace synod::kv
