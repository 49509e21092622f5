// kv::Store's part in cross-shard transactions: prepare (locks, vote), decide (the first
// decision stands), resolve (the chosen branch runs, locks go), ordinary requests refused on
// held keys, and every step idempotent and durable across a restart and an image restore.
#include <gtest/gtest.h>

#include "kv/keys.h"
#include "kv/store.h"
#include "test_backend.h"

namespace synod::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::TxnRequest;

class KV_SUITE(StoreTxnTest) : public ::testing::Test {
 protected:
  ApplyResult apply(const synodpb::Request& req) { return store_->apply(++index_, req); }

  void put(const std::string& key, const std::string& value) {
    synodpb::Request req;
    req.mutable_put()->set_key(key);
    req.mutable_put()->set_value(value);
    ASSERT_TRUE(apply(req).ok());
  }
  static synodpb::Request put_request(const std::string& key, const std::string& value) {
    synodpb::Request req;
    req.mutable_put()->set_key(key);
    req.mutable_put()->set_value(value);
    return req;
  }
  ApplyResult put_result(const std::string& key, const std::string& value) {
    return apply(put_request(key, value));
  }
  // A request as a sharded group's leader stamps it.
  static synodpb::Request stamped(synodpb::Request req, int64_t stamp) {
    req.set_revision_stamp(stamp);
    return req;
  }
  std::optional<std::string> get(const std::string& key) {
    etcdserverpb::RangeRequest r;
    r.set_key(key);
    auto resp = store_->range(r);
    EXPECT_TRUE(resp.has_value()) << (resp ? "" : resp.error().message);
    if (!resp || resp->kvs().empty()) return std::nullopt;
    return resp->kvs(0).value();
  }
  // A transfer's part on one group: if `key`'s value is `expect`, set it to `to`, else read it.
  static TxnRequest part(const std::string& key, const std::string& expect, const std::string& to) {
    TxnRequest t;
    Compare* c = t.add_compare();
    c->set_key(key);
    c->set_target(Compare::VALUE);
    c->set_result(Compare::EQUAL);
    c->set_value(expect);
    auto* p = t.add_success()->mutable_request_put();
    p->set_key(key);
    p->set_value(to);
    t.add_failure()->mutable_request_range()->set_key(key);
    return t;
  }
  static synodpb::Request prepare_request(const std::string& txn, const TxnRequest& p) {
    synodpb::Request req;
    req.mutable_txn_prepare()->set_txn(txn);
    req.mutable_txn_prepare()->set_coordinator(1);
    *req.mutable_txn_prepare()->mutable_part() = p;
    return req;
  }
  TxnVote prepare(const std::string& txn, const TxnRequest& p) {
    ApplyResult r = apply(prepare_request(txn, p));
    EXPECT_TRUE(r.ok()) << (r.error() ? r.error()->message : "skipped");
    return r.ok() ? *r.response<TxnVote>() : TxnVote{};
  }
  TxnDecided step(bool resolve, const std::string& txn, bool commit, bool succeeded,
                  bool resolve_here = false) {
    synodpb::Request req;
    synodpb::TxnDecision* d = resolve ? req.mutable_txn_resolve() : req.mutable_txn_decide();
    d->set_txn(txn);
    d->set_commit(commit);
    d->set_succeeded(succeeded);
    d->set_resolve_here(resolve_here);
    ApplyResult r = apply(req);
    EXPECT_TRUE(r.ok()) << (r.error() ? r.error()->message : "skipped");
    return r.ok() ? *r.response<TxnDecided>() : TxnDecided{};
  }
  ApplyResult precommit_result(const std::string& txn, bool succeeded) {
    synodpb::Request req;
    req.mutable_txn_precommit()->set_txn(txn);
    req.mutable_txn_precommit()->set_commit(true);
    req.mutable_txn_precommit()->set_succeeded(succeeded);
    return apply(req);
  }
  TxnDecided precommit(const std::string& txn, bool succeeded) {
    ApplyResult r = precommit_result(txn, succeeded);
    EXPECT_TRUE(r.ok()) << (r.error() ? r.error()->message : "skipped");
    return r.ok() ? *r.response<TxnDecided>() : TxnDecided{};
  }
  TxnDecided decide(const std::string& txn, bool commit, bool succeeded) {
    return step(false, txn, commit, succeeded);
  }
  TxnDecided resolve(const std::string& txn, bool commit, bool succeeded) {
    return step(true, txn, commit, succeeded);
  }
  void restart() {
    store_.reset();
    tb_->reopen();
    store_ = std::make_unique<Store>(tb_->get());
  }

  std::unique_ptr<testing::TestBackend> tb_ = testing::make_test_backend();
  std::unique_ptr<Store> store_ = std::make_unique<Store>(tb_->get());
  uint64_t index_ = 0;
};

TEST_F(KV_SUITE(StoreTxnTest), APreparedKeyIsHeldUntilTheCommitRunsTheBranch) {
  put("a", "10");
  const TxnVote vote = prepare("t1", part("a", "10", "7"));
  EXPECT_TRUE(vote.prepared);
  EXPECT_TRUE(vote.compares_hold);
  EXPECT_EQ(store_->locks().size(), 1u);
  EXPECT_EQ(store_->intents().size(), 1u);
  // Held: neither written nor read by anyone else.
  ApplyResult refused = put_result("a", "99");
  ASSERT_NE(refused.error(), nullptr);
  EXPECT_EQ(*refused.error(), errors::locked_by_transaction());
  etcdserverpb::RangeRequest r;
  r.set_key("a");
  EXPECT_FALSE(store_->range(r).has_value());
  r.set_key("0");
  r.set_range_end("z");
  EXPECT_FALSE(store_->range(r).has_value());  // a range over it too
  put("b", "1");                               // other keys are free
  const int64_t before = store_->revision();
  const TxnDecided done = resolve("t1", true, true);
  EXPECT_TRUE(done.commit);
  EXPECT_EQ(done.response.responses_size(), 1);
  EXPECT_EQ(store_->revision(), before + 1);
  EXPECT_EQ(get("a"), "7");
  EXPECT_TRUE(store_->locks().empty());
  EXPECT_TRUE(store_->intents().empty());
}

// With revision stamps (a sharded cluster): a prepare takes its stamp as a revision; while the
// part is held the store's history is final only below it; the commit writes at the decision's
// commit revision even though the group's revision has passed it, and the revision stays.
TEST_F(KV_SUITE(StoreTxnTest), AStampedPartCommitsAtTheDecisionsRevisionBelowTheGroups) {
  ASSERT_TRUE(apply(stamped(put_request("a", "10"), 10)).ok());
  const synodpb::Request prep = prepare_request("t1", part("a", "10", "7"));
  ApplyResult voted = apply(stamped(prep, 20));
  ASSERT_TRUE(voted.ok());
  EXPECT_EQ(voted.response<TxnVote>()->revision, 20);
  EXPECT_EQ(store_->revision(), 20);
  EXPECT_EQ(store_->resolved_revision(), 19);
  const synodpb::Request put_b = put_request("b", "1");
  ASSERT_TRUE(apply(stamped(put_b, 30)).ok());
  EXPECT_EQ(store_->revision(), 30);
  EXPECT_EQ(store_->resolved_revision(), 19);  // held: a commit may still come at 20..
  // Applied again (a retried step): the same vote, with its revision.
  EXPECT_EQ(apply(stamped(prep, 40)).response<TxnVote>()->revision, 20);
  EXPECT_EQ(store_->revision(), 30);

  synodpb::Request commit;
  commit.mutable_txn_resolve()->set_txn("t1");
  commit.mutable_txn_resolve()->set_commit(true);
  commit.mutable_txn_resolve()->set_succeeded(true);
  commit.mutable_txn_resolve()->set_commit_revision(25);
  std::vector<mvccpb::Event> events;
  ApplyResult done = store_->apply(++index_, stamped(commit, 50), &events);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(store_->revision(), 30);  // does not go back
  EXPECT_EQ(store_->resolved_revision(), 30);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv().mod_revision(), 25);
  EXPECT_EQ(events[0].kv().version(), 2);
  etcdserverpb::RangeRequest r;
  r.set_key("a");
  EXPECT_EQ(store_->range(r)->kvs(0).mod_revision(), 25);
  for (auto [at, want] : {std::pair<int64_t, const char*>{24, "10"}, {25, "7"}, {30, "7"}}) {
    r.set_revision(at);
    EXPECT_EQ(store_->range(r)->kvs(0).value(), want) << "at " << at;
  }
  // The next write goes above the group's revision, not the commit's.
  ApplyResult after = apply(put_b);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(store_->revision(), 31);
  // A restart keeps the prepare revision of a part still held.
  ASSERT_TRUE(apply(stamped(prepare_request("t2", part("c", "", "1")), 40)).ok());
  EXPECT_EQ(store_->resolved_revision(), 39);
  restart();
  EXPECT_EQ(store_->revision(), 40);
  EXPECT_EQ(store_->resolved_revision(), 39);
}

// A compaction stops below a prepared part's revision (the part may still write there); a store
// replaced by an image without the part forgets it.
TEST_F(KV_SUITE(StoreTxnTest), APreparedPartBoundsCompactionAndGoesWithARestore) {
  ASSERT_TRUE(apply(stamped(put_request("a", "10"), 10)).ok());
  ASSERT_TRUE(apply(stamped(put_request("a", "10"), 12)).ok());
  ASSERT_TRUE(apply(stamped(prepare_request("t1", part("a", "10", "7")), 20)).ok());
  ASSERT_TRUE(apply(stamped(put_request("b", "1"), 30)).ok());
  synodpb::Request compact;
  compact.mutable_compaction()->set_revision(30);
  ASSERT_TRUE(apply(compact).ok());
  EXPECT_EQ(store_->compact_revision(), 19);
  ASSERT_TRUE(apply(compact).ok());  // again: nothing more to do until the part resolves
  EXPECT_EQ(store_->compact_revision(), 19);

  std::unique_ptr<testing::TestBackend> other_backend = testing::make_test_backend();
  Store other(other_backend->get());
  ASSERT_TRUE(store_->restore(other.image()));
  EXPECT_TRUE(store_->intents().empty());
  EXPECT_EQ(store_->resolved_revision(), store_->revision());
}

TEST_F(KV_SUITE(StoreTxnTest), APrecommitIsRecordedInTheIntentAndSurvivesARestart) {
  put("a", "10");
  const int64_t before = store_->revision();
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).prepared);
  const TxnDecided pre = precommit("t1", /*succeeded=*/true);
  EXPECT_TRUE(pre.commit);
  EXPECT_TRUE(pre.succeeded);
  EXPECT_EQ(store_->revision(), before);  // nothing written yet; the key still held
  EXPECT_EQ(store_->locks().size(), 1u);
  restart();
  ASSERT_EQ(store_->intents().size(), 1u);
  EXPECT_TRUE(store_->intents()[0].precommitted());
  EXPECT_TRUE(store_->intents()[0].succeeded());
  // Again, even with another `succeeded`: what was recorded first.
  EXPECT_TRUE(precommit("t1", false).succeeded);
  EXPECT_TRUE(resolve("t1", true, true).commit);
  EXPECT_EQ(get("a"), "7");
}

TEST_F(KV_SUITE(StoreTxnTest), APrecommitAfterTheOutcomeAnswersTheOutcome) {
  put("a", "10");
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).prepared);
  EXPECT_FALSE(resolve("t1", false, false).commit);  // a resolver aborted it first
  const TxnDecided pre = precommit("t1", true);
  EXPECT_FALSE(pre.commit);
  EXPECT_TRUE(store_->intents().empty());
  EXPECT_EQ(get("a"), "10");
}

TEST_F(KV_SUITE(StoreTxnTest), APrecommitWithoutAPrepareOrToAbortIsRefused) {
  ApplyResult never = precommit_result("t9", true);
  ASSERT_NE(never.error(), nullptr);
  EXPECT_EQ(*never.error(), errors::bad_transaction_part());
  put("a", "10");
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).prepared);
  synodpb::Request req;
  req.mutable_txn_precommit()->set_txn("t1");  // commit = false: not a precommit
  ApplyResult bad = apply(req);
  ASSERT_NE(bad.error(), nullptr);
  EXPECT_FALSE(store_->intents()[0].precommitted());
}

TEST_F(KV_SUITE(StoreTxnTest), OldOutcomesAreForgottenButDecisionsAndHeldOnesKept) {
  auto step_at = [&](bool resolve, const std::string& txn, int64_t at) {
    synodpb::Request req;
    synodpb::TxnDecision* d = resolve ? req.mutable_txn_resolve() : req.mutable_txn_decide();
    d->set_txn(txn);
    d->set_commit(false);
    d->set_at(at);
    ASSERT_TRUE(apply(req).ok());
  };
  put("a", "10");
  put("b", "20");
  step_at(false, "old", 1000);  // a decision, long ago: kept (another part may need it)
  step_at(true, "old", 1000);   // and its outcome here: forgotten
  step_at(true, "new", 9000);
  EXPECT_TRUE(prepare("held", part("a", "10", "7")).prepared);
  step_at(false, "held", 1000);  // decided long ago, and still prepared here
  step_at(true, "untimed", 0);   // a record without a time stays
  EXPECT_EQ(store_->settled_txns(5000, 100), std::vector<std::string>{"old"});
  EXPECT_TRUE(store_->settled_txns(5000, 0).empty());
  synodpb::Request forget;
  forget.mutable_txn_forget()->add_txns("old");
  forget.mutable_txn_forget()->add_txns("held");
  const int64_t revision = store_->revision();
  ASSERT_TRUE(apply(forget).ok());
  EXPECT_EQ(store_->revision(), revision);  // no key changed
  EXPECT_TRUE(store_->decision("old").has_value());
  EXPECT_TRUE(store_->decision("held").has_value());
  restart();
  EXPECT_TRUE(store_->settled_txns(5000, 100).empty());
  // A prepare that comes after its outcome went is a new one here; aborted, it writes nothing.
  EXPECT_TRUE(prepare("old", part("b", "20", "21")).prepared);
  EXPECT_FALSE(resolve("old", false, false).commit);
  EXPECT_EQ(get("b"), "20");
}

// A decision goes when its coordinator names it (every part resolved), unless this group's own
// part is still prepared.
TEST_F(KV_SUITE(StoreTxnTest), ADecisionIsForgottenWhenNamedAndNoPartHereIsHeld) {
  put("a", "10");
  decide("done", true, true);
  EXPECT_TRUE(prepare("held", part("a", "10", "7")).prepared);
  decide("held", true, true);
  synodpb::Request forget;
  forget.mutable_txn_forget()->add_decisions("done");
  forget.mutable_txn_forget()->add_decisions("held");
  const int64_t revision = store_->revision();
  ASSERT_TRUE(apply(forget).ok());
  EXPECT_EQ(store_->revision(), revision);
  EXPECT_FALSE(store_->decision("done").has_value());
  ASSERT_TRUE(store_->decision("held").has_value());
  EXPECT_TRUE(store_->decision("held")->commit);
  forget.mutable_txn_forget()->add_decisions("");
  EXPECT_NE(apply(forget).error(), nullptr);  // an empty ID: refused, nothing forgotten
  EXPECT_TRUE(store_->decision("held").has_value());
}

TEST_F(KV_SUITE(StoreTxnTest), TheFailureBranchRunsWhenSomeParticipantsComparesFailed) {
  put("a", "10");
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).compares_hold);
  const TxnDecided done = resolve("t1", true, /*succeeded=*/false);
  EXPECT_FALSE(done.succeeded);
  ASSERT_EQ(done.response.responses_size(), 1);
  EXPECT_EQ(done.response.responses(0).response_range().kvs(0).value(), "10");
  EXPECT_EQ(get("a"), "10");
}

TEST_F(KV_SUITE(StoreTxnTest), AnAbortWritesNothingAndReleasesTheKeys) {
  put("a", "10");
  const int64_t before = store_->revision();
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).prepared);
  EXPECT_FALSE(resolve("t1", false, false).commit);
  EXPECT_EQ(store_->revision(), before);
  EXPECT_EQ(get("a"), "10");
  put("a", "11");
}

TEST_F(KV_SUITE(StoreTxnTest), AKeyHeldByOneTransactionRefusesAnothersPrepare) {
  put("a", "10");
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).prepared);
  const TxnVote second = prepare("t2", part("a", "10", "8"));
  EXPECT_FALSE(second.prepared);
  EXPECT_FALSE(second.reason.empty());
  EXPECT_EQ(store_->intents().size(), 1u);
}

TEST_F(KV_SUITE(StoreTxnTest), EveryStepAppliedAgainReturnsWhatItReturnedFirst) {
  put("a", "10");
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).compares_hold);
  put("b", "x");
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).compares_hold);  // the same vote
  EXPECT_EQ(store_->intents().size(), 1u);
  EXPECT_TRUE(resolve("t1", true, true).commit);
  EXPECT_EQ(get("a"), "7");
  const int64_t after = store_->revision();
  // A second resolve (even one saying otherwise) changes nothing and reports what was done.
  const TxnDecided again = resolve("t1", false, false);
  EXPECT_TRUE(again.commit);
  EXPECT_EQ(store_->revision(), after);
}

TEST_F(KV_SUITE(StoreTxnTest), TheFirstDecisionStands) {
  EXPECT_FALSE(store_->decision("t1").has_value());
  EXPECT_FALSE(decide("t1", false, false).commit);   // a resolver aborted it first
  const TxnDecided late = decide("t1", true, true);  // the coordinator's commit comes too late
  EXPECT_FALSE(late.commit);
  ASSERT_TRUE(store_->decision("t1").has_value());
  EXPECT_FALSE(store_->decision("t1")->commit);
  EXPECT_TRUE(decide("t2", true, true).succeeded);
}

TEST_F(KV_SUITE(StoreTxnTest), ADecisionCarriesOutItsGroupsPartWithTheDecisionThatStands) {
  put("a", "10");
  put("b", "20");
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).prepared);
  const int64_t before = store_->revision();
  const TxnDecided done = step(false, "t1", true, true, /*resolve_here=*/true);
  EXPECT_TRUE(done.commit);
  EXPECT_EQ(done.response.responses_size(), 1);  // the part's answer, as a resolve's
  EXPECT_EQ(get("a"), "7");
  EXPECT_EQ(store_->revision(), before + 1);
  EXPECT_TRUE(store_->locks().empty());
  EXPECT_TRUE(store_->intents().empty());
  ASSERT_TRUE(store_->decision("t1").has_value());
  EXPECT_TRUE(store_->decision("t1")->commit);
  // Applied again (a retried step): the same decision, nothing written twice.
  EXPECT_TRUE(step(false, "t1", true, true, true).commit);
  EXPECT_EQ(store_->revision(), before + 1);

  // A resolver aborted the transaction first: the coordinator's commit carries out the abort.
  EXPECT_TRUE(prepare("t2", part("b", "20", "0")).prepared);
  EXPECT_FALSE(decide("t2", false, false).commit);
  const TxnDecided late = step(false, "t2", true, true, true);
  EXPECT_FALSE(late.commit);
  EXPECT_EQ(get("b"), "20");
  EXPECT_TRUE(store_->locks().empty());
  restart();
  EXPECT_FALSE(store_->decision("t2")->commit);
  EXPECT_TRUE(store_->decision("t1")->commit);
}

TEST_F(KV_SUITE(StoreTxnTest), AResolveBeforeItsPrepareRefusesThePrepare) {
  put("a", "10");
  EXPECT_FALSE(resolve("t1", false, false).commit);
  const TxnVote vote = prepare("t1", part("a", "10", "7"));
  EXPECT_FALSE(vote.prepared);
  EXPECT_TRUE(store_->locks().empty());
}

TEST_F(KV_SUITE(StoreTxnTest), APartOfTheWrongShapeIsRefusedAndChangesNothing) {
  put("a", "10");
  TxnRequest ranged = part("a", "10", "7");
  ranged.mutable_compare(0)->set_range_end("b");
  synodpb::Request req;
  req.mutable_txn_prepare()->set_txn("t1");
  *req.mutable_txn_prepare()->mutable_part() = ranged;
  ApplyResult r = apply(req);
  ASSERT_NE(r.error(), nullptr);
  EXPECT_EQ(*r.error(), errors::bad_transaction_part());
  TxnRequest ignoring = part("a", "10", "7");
  ignoring.mutable_success(0)->mutable_request_put()->set_ignore_lease(true);
  *req.mutable_txn_prepare()->mutable_part() = ignoring;
  EXPECT_NE(apply(req).error(), nullptr);
  TxnRequest past = part("a", "10", "7");
  past.mutable_failure(0)->mutable_request_range()->set_revision(1);
  *req.mutable_txn_prepare()->mutable_part() = past;
  EXPECT_NE(apply(req).error(), nullptr);
  TxnRequest leased = part("a", "10", "7");
  leased.mutable_success(0)->mutable_request_put()->set_lease(5);  // no such lease
  *req.mutable_txn_prepare()->mutable_part() = leased;
  ApplyResult no_lease = apply(req);
  ASSERT_NE(no_lease.error(), nullptr);
  EXPECT_EQ(*no_lease.error(), errors::lease_not_found());
  req.mutable_txn_prepare()->clear_part();  // no key at all
  EXPECT_NE(apply(req).error(), nullptr);
  req.mutable_txn_prepare()->set_txn("");
  EXPECT_NE(apply(req).error(), nullptr);
  EXPECT_TRUE(store_->locks().empty());
  EXPECT_FALSE(store_->holding());
  EXPECT_TRUE(store_->intents().empty());
}

// A part that reads a range (a lock's contenders) holds the range against writes and other
// transactions; plain reads of it go on. The resolve answers with the range's keys.
TEST_F(KV_SUITE(StoreTxnTest), ARangeReadHoldsItsRangeAgainstWritesAndOtherTransactions) {
  put("r/a", "1");
  TxnRequest reader;
  auto* rr = reader.add_success()->mutable_request_range();
  rr->set_key("r/");
  rr->set_range_end("r0");
  EXPECT_TRUE(prepare("t1", reader).prepared);
  EXPECT_TRUE(store_->holding());
  EXPECT_TRUE(store_->locks().empty());  // no single key held
  EXPECT_EQ(get("r/a"), "1");            // reads go on
  ApplyResult refused = put_result("r/b", "2");
  ASSERT_NE(refused.error(), nullptr);
  EXPECT_EQ(*refused.error(), errors::locked_by_transaction());
  put("s", "1");  // outside the range
  TxnRequest writer = part("r/c", "", "3");
  EXPECT_FALSE(prepare("t2", writer).prepared);  // a key in the held range
  EXPECT_FALSE(prepare("t3", reader).prepared);  // the same range
  TxnRequest from_key;
  auto* fk = from_key.add_success()->mutable_request_delete_range();
  fk->set_key("q");
  fk->set_range_end(std::string(1, '\0'));  // every key from "q" on
  EXPECT_FALSE(prepare("t4", from_key).prepared);
  const TxnDecided done = resolve("t1", true, true);
  ASSERT_EQ(done.response.responses_size(), 1);
  ASSERT_EQ(done.response.responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(done.response.responses(0).response_range().kvs(0).key(), "r/a");
  EXPECT_FALSE(store_->holding());
  put("r/b", "2");
}

// A part that deletes a range holds it against everything until the resolve, which deletes it.
TEST_F(KV_SUITE(StoreTxnTest), ARangeDeleteHoldsItsRangeAgainstReadsAndWrites) {
  put("d/a", "1");
  put("d/b", "2");
  TxnRequest del;
  auto* d = del.add_success()->mutable_request_delete_range();
  d->set_key("d/");
  d->set_range_end("d0");
  d->set_prev_kv(true);
  EXPECT_TRUE(prepare("t1", del).prepared);
  etcdserverpb::RangeRequest r;
  r.set_key("d/a");
  EXPECT_FALSE(store_->range(r).has_value());
  EXPECT_NE(put_result("d/c", "3").error(), nullptr);
  restart();  // held ranges come back from the intents
  EXPECT_TRUE(store_->holding());
  EXPECT_NE(put_result("d/c", "3").error(), nullptr);
  auto other_backend = testing::make_test_backend();
  Store other(other_backend->get());
  ASSERT_TRUE(other.restore(store_->image()));
  EXPECT_TRUE(other.holding());
  const TxnDecided done = resolve("t1", true, true);
  ASSERT_EQ(done.response.responses_size(), 1);
  EXPECT_EQ(done.response.responses(0).response_delete_range().deleted(), 2);
  EXPECT_EQ(done.response.responses(0).response_delete_range().prev_kvs_size(), 2);
  EXPECT_EQ(get("d/a"), std::nullopt);
  put("d/c", "3");
}

// A put's lease is pinned from the prepare: its revoke is refused until the resolve has
// attached the key, and then deletes it.
TEST_F(KV_SUITE(StoreTxnTest), APutsLeaseCannotBeRevokedWhileThePartIsPrepared) {
  synodpb::Request grant;
  grant.mutable_lease_grant()->set_id(7);
  grant.mutable_lease_grant()->set_ttl(60);
  ASSERT_TRUE(apply(grant).ok());
  TxnRequest leased = part("l", "", "v");
  leased.mutable_success(0)->mutable_request_put()->set_lease(7);
  EXPECT_TRUE(prepare("t1", leased).prepared);
  synodpb::Request revoke;
  revoke.mutable_lease_revoke()->set_id(7);
  ApplyResult refused = apply(revoke);
  ASSERT_NE(refused.error(), nullptr);
  EXPECT_EQ(*refused.error(), errors::locked_by_transaction());
  EXPECT_TRUE(resolve("t1", true, true).commit);
  EXPECT_EQ(get("l"), "v");
  ASSERT_TRUE(apply(revoke).ok());
  EXPECT_EQ(get("l"), std::nullopt);
}

TEST_F(KV_SUITE(StoreTxnTest), LocksIntentsAndDecisionsSurviveARestartAndAnImage) {
  put("a", "10");
  EXPECT_TRUE(prepare("t1", part("a", "10", "7")).prepared);
  decide("t9", true, true);
  restart();
  EXPECT_EQ(store_->locks().size(), 1u);
  EXPECT_NE(put_result("a", "1").error(), nullptr);
  const std::string image = store_->image();
  auto other_backend = testing::make_test_backend();
  Store other(other_backend->get());
  ASSERT_TRUE(other.restore(image));
  EXPECT_EQ(other.locks().size(), 1u);
  EXPECT_EQ(other.intents().size(), 1u);
  ASSERT_TRUE(other.decision("t9").has_value());
  EXPECT_TRUE(other.decision("t9")->commit);
  EXPECT_TRUE(resolve("t1", true, true).commit);
  EXPECT_EQ(get("a"), "7");
}

}  // namespace
}  // namespace synod::kv
