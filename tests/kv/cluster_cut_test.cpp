// Consistent cuts over groups (kv::Store's cut records, kv::ClusterCut): a marker records a
// group's state once; a step carrying a newer epoch records it before applying (Lai and Yang's
// rule); a decision in flight at the cut is found as channel state and delivered; and a bank
// total over the cut holds only if it is (the planted bug that skips it is caught).
#include <gtest/gtest.h>

#include "kv/cluster_cut.h"
#include "kv/mem_backend.h"
#include "kv/store.h"

namespace synod::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::TxnRequest;

// One group: a store and its log index.
struct Group {
  MemBackend backend;
  Store store{backend};
  uint64_t index = 0;

  ApplyResult apply(const synodpb::Request& r) { return store.apply(++index, r); }
  void put(const std::string& key, const std::string& value) {
    synodpb::Request r;
    r.mutable_put()->set_key(key);
    r.mutable_put()->set_value(value);
    ASSERT_TRUE(apply(r).ok());
  }
};

// An account's part of a transfer: if `key` holds `expect`, it becomes `to`.
TxnRequest part(const std::string& key, const std::string& expect, const std::string& to) {
  TxnRequest t;
  Compare* c = t.add_compare();
  c->set_key(key);
  c->set_target(Compare::VALUE);
  c->set_result(Compare::EQUAL);
  c->set_value(expect);
  auto* p = t.add_success()->mutable_request_put();
  p->set_key(key);
  p->set_value(to);
  return t;
}

synodpb::Request prepare(const std::string& txn, const TxnRequest& p, uint64_t epoch = 0) {
  synodpb::Request r;
  r.mutable_txn_prepare()->set_txn(txn);
  r.mutable_txn_prepare()->set_coordinator(1);
  *r.mutable_txn_prepare()->mutable_part() = p;
  r.set_cut_epoch(epoch);
  return r;
}

synodpb::Request decision(bool resolve, const std::string& txn, bool commit, uint64_t epoch = 0) {
  synodpb::Request r;
  synodpb::TxnDecision* d = resolve ? r.mutable_txn_resolve() : r.mutable_txn_decide();
  d->set_txn(txn);
  d->set_commit(commit);
  d->set_succeeded(commit);
  r.set_cut_epoch(epoch);
  return r;
}

synodpb::Request marker(uint64_t epoch) {
  synodpb::Request r;
  r.set_cut_marker(epoch);
  r.set_cut_epoch(epoch);
  return r;
}

int64_t total(const std::vector<mvccpb::KeyValue>& keys) {
  int64_t sum = 0;
  for (const mvccpb::KeyValue& kv : keys) sum += std::stoll(kv.value());
  return sum;
}

TEST(ClusterCutTest, AMarkerRecordsTheStateBeforeItOncePerEpoch) {
  Group g;
  g.put("a", "1");
  ApplyResult r = g.apply(marker(7));
  ASSERT_TRUE(r.cut.has_value());
  EXPECT_EQ(r.cut->epoch, 7u);
  EXPECT_EQ(r.cut_epoch, 7u);
  g.put("a", "2");
  EXPECT_FALSE(g.apply(marker(7)).cut.has_value());  // the same cut again: already recorded
  EXPECT_FALSE(g.apply(marker(5)).cut.has_value());  // an older one: superseded
  EXPECT_EQ(g.store.cut_epoch(), 7u);
  // The record is the store as it was at the marker.
  MemBackend b;
  Store recorded(b);
  ASSERT_TRUE(recorded.restore(r.cut->image));
  etcdserverpb::RangeRequest get;
  get.set_key("a");
  EXPECT_EQ(recorded.range(get).value().kvs(0).value(), "1");
  // The epoch survives a restart.
  Store reopened(g.backend);
  EXPECT_EQ(reopened.cut_epoch(), 7u);
}

// A step sent after its cause's cut reaches a group that has not recorded that cut: the group
// records it first, so the cut never holds the effect without the cause.
TEST(ClusterCutTest, AStepCarryingANewerEpochRecordsTheCutBeforeApplying) {
  Group g;
  g.put("b", "100");
  ASSERT_TRUE(g.apply(prepare("t1", part("b", "100", "130"))).ok());
  ApplyResult r = g.apply(decision(true, "t1", true, /*epoch=*/9));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.cut.has_value());
  EXPECT_EQ(r.cut->epoch, 9u);
  EXPECT_FALSE(g.apply(marker(9)).cut.has_value());  // the marker, late: nothing more
  MemBackend b;
  Store recorded(b);
  ASSERT_TRUE(recorded.restore(r.cut->image));
  ASSERT_EQ(recorded.intents().size(), 1u);  // the part, still prepared in the cut
  etcdserverpb::RangeRequest get;
  get.set_key("b");
  get.set_serializable(true);
  EXPECT_EQ(g.store.range(get).value().kvs(0).value(), "130");
}

// A transfer of 30 from a (group 1, the coordinator) to b (group 2). Group 1 decided and
// resolved its part before its cut; group 2's resolve comes after its cut: the decision is in
// flight on the channel 1 -> 2 at the cut.
class BankCut : public ::testing::Test {
 protected:
  void SetUp() override {
    g1.put("a", "100");
    g2.put("b", "100");
    ASSERT_TRUE(g1.apply(prepare("t", part("a", "100", "70"))).ok());
    ASSERT_TRUE(g2.apply(prepare("t", part("b", "100", "130"))).ok());
    ASSERT_TRUE(g1.apply(decision(false, "t", true)).ok());
    ASSERT_TRUE(g1.apply(decision(true, "t", true)).ok());
    ApplyResult c1 = g1.apply(marker(3));
    ApplyResult c2 = g2.apply(marker(3));
    ASSERT_TRUE(c1.cut && c2.cut);
    ASSERT_TRUE(g2.apply(decision(true, "t", true, 3)).ok());
    images = {{0, Group().store.image()}, {1, c1.cut->image}, {2, c2.cut->image}};
  }

  Group g1, g2;
  std::map<uint32_t, std::string> images;
};

TEST_F(BankCut, TheDecisionInFlightIsChannelStateAndDeliveringItKeepsTheTotal) {
  Expected<ClusterCut, std::string> cut = ClusterCut::load(images);
  ASSERT_TRUE(cut.has_value()) << cut.error();
  ASSERT_EQ(cut->channel_state().size(), 1u);
  EXPECT_EQ(cut->channel_state()[0], (ChannelMessage{1, 2, "t", true, true}));
  EXPECT_EQ(cut->undecided(), 0u);
  cut->settle();
  EXPECT_EQ(total(cut->data_keys()), 200);
  for (const auto& [group, store] : cut->stores()) EXPECT_TRUE(store->intents().empty());
}

TEST_F(BankCut, ThePlantedBugThatIgnoresMessagesInFlightLosesMoney) {
  Expected<ClusterCut, std::string> cut = ClusterCut::load(images);
  ASSERT_TRUE(cut.has_value());
  cut->settle(ClusterCutBugs{.ignore_in_flight = true});
  EXPECT_EQ(total(cut->data_keys()), 170);  // b's credit was in flight; the cut dropped it
}

// Decided nowhere at the cut: settled as a resolver of the restored cluster would, the same for
// every part (three-phase commit's precommitted parts commit, the others abort).
TEST(ClusterCutTest, UndecidedTransactionsSettleAlikeInEveryGroup) {
  Group g1, g2;
  g1.put("a", "100");
  g2.put("b", "100");
  ASSERT_TRUE(g1.apply(prepare("p", part("a", "100", "90"))).ok());
  ASSERT_TRUE(g2.apply(prepare("p", part("b", "100", "110"))).ok());
  synodpb::Request pc;
  pc.mutable_txn_precommit()->set_txn("p");
  pc.mutable_txn_precommit()->set_commit(true);
  pc.mutable_txn_precommit()->set_succeeded(true);
  ASSERT_TRUE(g2.apply(pc).ok());
  std::map<uint32_t, std::string> images{{1, g1.store.image()}, {2, g2.store.image()}};
  Expected<ClusterCut, std::string> cut = ClusterCut::load(images);
  ASSERT_TRUE(cut.has_value());
  EXPECT_TRUE(cut->channel_state().empty());
  EXPECT_EQ(cut->undecided(), 1u);
  cut->settle();
  std::vector<mvccpb::KeyValue> keys = cut->data_keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].value(), "90");
  EXPECT_EQ(keys[1].value(), "110");
}

TEST(ClusterCutTest, AnImageThatDoesNotLoadIsNamed) {
  Expected<ClusterCut, std::string> cut = ClusterCut::load({{4, "not an image"}});
  ASSERT_FALSE(cut.has_value());
  EXPECT_NE(cut.error().find("group 4"), std::string::npos);
}

}  // namespace
}  // namespace synod::kv
