// kv::Store behaviour, on the backend this binary tests (MemBackend or RocksBackend).
#include "kv/store.h"

#include <gtest/gtest.h>

#include "kv/keys.h"
#include "kv/range.h"
#include "test_backend.h"

namespace synod::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::TxnRequest;

etcdserverpb::PutRequest put_req(std::string key, std::string value) {
  etcdserverpb::PutRequest p;
  p.set_key(std::move(key));
  p.set_value(std::move(value));
  return p;
}

etcdserverpb::DeleteRangeRequest del_req(std::string key, std::string end = "") {
  etcdserverpb::DeleteRangeRequest d;
  d.set_key(std::move(key));
  d.set_range_end(std::move(end));
  return d;
}

RangeRequest range_req(std::string key, std::string end = "", int64_t revision = 0) {
  RangeRequest r;
  r.set_key(std::move(key));
  r.set_range_end(std::move(end));
  r.set_revision(revision);
  return r;
}

const std::string kFromKey(1, '\0');

Compare compare(std::string key, Compare::CompareTarget target, Compare::CompareResult result,
                int64_t number, std::string end = "") {
  Compare c;
  c.set_key(std::move(key));
  c.set_range_end(std::move(end));
  c.set_target(target);
  c.set_result(result);
  switch (target) {
    case Compare::VERSION:
      c.set_version(number);
      break;
    case Compare::CREATE:
      c.set_create_revision(number);
      break;
    case Compare::MOD:
      c.set_mod_revision(number);
      break;
    case Compare::LEASE:
      c.set_lease(number);
      break;
    default:
      break;
  }
  return c;
}

Compare compare_value(std::string key, Compare::CompareResult result, std::string value,
                      std::string end = "") {
  Compare c = compare(std::move(key), Compare::VALUE, result, 0, std::move(end));
  c.set_value(std::move(value));
  return c;
}

void add_put(google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>* ops, std::string k,
             std::string v) {
  *ops->Add()->mutable_request_put() = put_req(std::move(k), std::move(v));
}

void add_range(google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>* ops, std::string k) {
  *ops->Add()->mutable_request_range() = range_req(std::move(k));
}

class KV_SUITE(StoreTest) : public ::testing::Test {
 protected:
  Store& store() { return *store_; }

  ApplyResult apply(const synodpb::Request& req) { return store_->apply(++index_, req); }

  etcdserverpb::PutResponse put(std::string key, std::string value) {
    return put(put_req(std::move(key), std::move(value)));
  }
  etcdserverpb::PutResponse put(const etcdserverpb::PutRequest& p) {
    synodpb::Request req;
    *req.mutable_put() = p;
    ApplyResult r = apply(req);
    EXPECT_TRUE(r.ok()) << (r.error() ? r.error()->message : "skipped");
    return r.ok() ? *r.response<etcdserverpb::PutResponse>() : etcdserverpb::PutResponse();
  }
  etcdserverpb::DeleteRangeResponse del(const etcdserverpb::DeleteRangeRequest& d) {
    synodpb::Request req;
    *req.mutable_delete_range() = d;
    ApplyResult r = apply(req);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r.response<etcdserverpb::DeleteRangeResponse>()
                  : etcdserverpb::DeleteRangeResponse();
  }
  etcdserverpb::TxnResponse txn(const TxnRequest& t) {
    synodpb::Request req;
    *req.mutable_txn() = t;
    ApplyResult r = apply(req);
    EXPECT_TRUE(r.ok()) << (r.error() ? r.error()->message : "skipped");
    return r.ok() ? *r.response<etcdserverpb::TxnResponse>() : etcdserverpb::TxnResponse();
  }
  bool txn_succeeds(const Compare& c) {
    TxnRequest t;
    *t.add_compare() = c;
    return txn(t).succeeded();
  }
  ApplyResult compact(int64_t revision) {
    synodpb::Request req;
    req.mutable_compaction()->set_revision(revision);
    return apply(req);
  }
  etcdserverpb::RangeResponse get(const RangeRequest& r) {
    auto resp = store_->range(r);
    EXPECT_TRUE(resp.has_value()) << (resp ? "" : resp.error().message);
    return resp ? *resp : etcdserverpb::RangeResponse();
  }
  std::vector<std::string> keys_of(const etcdserverpb::RangeResponse& resp) {
    std::vector<std::string> out;
    for (const auto& kv : resp.kvs()) out.push_back(kv.key());
    return out;
  }
  std::optional<mvccpb::KeyValue> get_one(const std::string& key, int64_t revision = 0) {
    auto resp = get(range_req(key, "", revision));
    if (resp.kvs_size() == 0) return std::nullopt;
    return resp.kvs(0);
  }
  void restart() {
    store_.reset();
    tb_->reopen();
    store_ = std::make_unique<Store>(tb_->get());
  }
  // Three keys a, b, c written at revisions 2, 3, 4 with values of descending order.
  void put_abc() {
    put("a", "3");
    put("b", "2");
    put("c", "1");
  }

  std::unique_ptr<testing::TestBackend> tb_ = testing::make_test_backend();
  std::unique_ptr<Store> store_ = std::make_unique<Store>(tb_->get());
  uint64_t index_ = 0;
};

// ----- revisions and versions -------------------------------------------------------------

TEST_F(KV_SUITE(StoreTest), EmptyStoreIsAtRevisionOne) {
  EXPECT_EQ(store().revision(), 1);
  EXPECT_EQ(store().compact_revision(), -1);
  EXPECT_EQ(store().applied_index(), 0u);
  auto resp = get(range_req("a", kFromKey));
  EXPECT_EQ(resp.count(), 0);
  EXPECT_EQ(resp.header().revision(), 1);
}

TEST_F(KV_SUITE(StoreTest), PutCreatesARevisionWithCreateModAndVersion) {
  auto resp = put("k", "v");
  EXPECT_EQ(resp.header().revision(), 2);
  EXPECT_EQ(store().revision(), 2);
  auto kv = get_one("k");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->value(), "v");
  EXPECT_EQ(kv->create_revision(), 2);
  EXPECT_EQ(kv->mod_revision(), 2);
  EXPECT_EQ(kv->version(), 1);
}

TEST_F(KV_SUITE(StoreTest), OverwriteKeepsCreateRevisionAndBumpsVersion) {
  put("k", "v1");
  put("other", "x");
  put("k", "v2");
  auto kv = get_one("k");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->create_revision(), 2);
  EXPECT_EQ(kv->mod_revision(), 4);
  EXPECT_EQ(kv->version(), 2);
}

TEST_F(KV_SUITE(StoreTest), PutReturnsThePreviousVersionWhenAsked) {
  put("k", "old");
  auto p = put_req("k", "new");
  p.set_prev_kv(true);
  auto resp = put(p);
  ASSERT_TRUE(resp.has_prev_kv());
  EXPECT_EQ(resp.prev_kv().value(), "old");
  EXPECT_EQ(resp.prev_kv().mod_revision(), 2);
}

TEST_F(KV_SUITE(StoreTest), DeleteResetsVersionAndRecreateStartsOver) {
  put("k", "v1");
  put("k", "v2");
  auto d = del(del_req("k"));
  EXPECT_EQ(d.deleted(), 1);
  EXPECT_EQ(d.header().revision(), 4);
  EXPECT_FALSE(get_one("k"));
  put("k", "v3");
  auto kv = get_one("k");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->create_revision(), 5);
  EXPECT_EQ(kv->version(), 1);
}

TEST_F(KV_SUITE(StoreTest), DeletingNothingDoesNotAdvanceTheRevision) {
  put("k", "v");
  auto d = del(del_req("missing"));
  EXPECT_EQ(d.deleted(), 0);
  EXPECT_EQ(d.header().revision(), 2);
  EXPECT_EQ(store().revision(), 2);
}

TEST_F(KV_SUITE(StoreTest), DeleteRangeCountsAndReturnsPreviousVersions) {
  put_abc();
  auto d = del_req("a", "c");
  d.set_prev_kv(true);
  auto resp = del(d);
  EXPECT_EQ(resp.deleted(), 2);
  ASSERT_EQ(resp.prev_kvs_size(), 2);
  EXPECT_EQ(resp.prev_kvs(0).key(), "a");
  EXPECT_EQ(resp.prev_kvs(1).value(), "2");
  EXPECT_EQ(keys_of(get(range_req("a", kFromKey))), std::vector<std::string>{"c"});
}

// ----- transactions -------------------------------------------------------------------------

TEST_F(KV_SUITE(StoreTest), TxnWritesShareOneRevisionWithIncreasingSubRevisions) {
  TxnRequest t;
  add_put(t.mutable_success(), "x", "1");
  add_put(t.mutable_success(), "y", "2");
  auto resp = txn(t);
  EXPECT_TRUE(resp.succeeded());
  EXPECT_EQ(resp.header().revision(), 2);
  EXPECT_EQ(get_one("x")->mod_revision(), 2);
  EXPECT_EQ(get_one("y")->mod_revision(), 2);
  // The revision log records (2,0) -> x and (2,1) -> y.
  EXPECT_EQ(tb_->get().get(keys::rev_log({2, 0})), "x");
  EXPECT_EQ(tb_->get().get(keys::rev_log({2, 1})), "y");
}

TEST_F(KV_SUITE(StoreTest), ReadInsideAWriteTxnSeesEarlierWrites) {
  put("k", "before");
  TxnRequest t;
  add_range(t.mutable_success(), "k");
  add_put(t.mutable_success(), "k", "after");
  add_range(t.mutable_success(), "k");
  auto resp = txn(t);
  ASSERT_EQ(resp.responses_size(), 3);
  const auto& first = resp.responses(0).response_range();
  const auto& last = resp.responses(2).response_range();
  EXPECT_EQ(first.kvs(0).value(), "before");
  EXPECT_EQ(first.header().revision(), 2);
  EXPECT_EQ(last.kvs(0).value(), "after");
  EXPECT_EQ(last.header().revision(), 3);
  EXPECT_EQ(resp.responses(1).response_put().header().revision(), 3);
}

TEST_F(KV_SUITE(StoreTest), ReadOnlyTxnDoesNotAdvanceTheRevision) {
  put("k", "v");
  TxnRequest t;
  add_range(t.mutable_success(), "k");
  EXPECT_EQ(txn(t).header().revision(), 2);
  EXPECT_EQ(store().revision(), 2);
}

TEST_F(KV_SUITE(StoreTest), FailedCompareRunsTheFailureBranch) {
  TxnRequest t;
  *t.add_compare() = compare("k", Compare::VERSION, Compare::GREATER, 0);
  add_put(t.mutable_success(), "then", "1");
  add_put(t.mutable_failure(), "else", "1");
  auto resp = txn(t);
  EXPECT_FALSE(resp.succeeded());
  EXPECT_FALSE(get_one("then"));
  EXPECT_TRUE(get_one("else"));
}

TEST_F(KV_SUITE(StoreTest), NestedTxnRunsTheBranchItsCompareSelects) {
  put("k", "v");
  TxnRequest inner;
  *inner.add_compare() = compare("k", Compare::VERSION, Compare::EQUAL, 1);
  add_put(inner.mutable_success(), "inner-then", "1");
  add_put(inner.mutable_failure(), "inner-else", "1");
  TxnRequest outer;
  add_put(outer.mutable_success(), "outer", "1");
  *outer.add_success()->mutable_request_txn() = inner;
  auto resp = txn(outer);
  ASSERT_EQ(resp.responses_size(), 2);
  EXPECT_TRUE(resp.responses(1).response_txn().succeeded());
  EXPECT_TRUE(get_one("inner-then"));
  EXPECT_FALSE(get_one("inner-else"));
  EXPECT_EQ(get_one("inner-then")->mod_revision(), get_one("outer")->mod_revision());
}

TEST_F(KV_SUITE(StoreTest), NestedComparesSeeTheStateBeforeTheTxn) {
  TxnRequest inner;
  *inner.add_compare() = compare("k", Compare::VERSION, Compare::EQUAL, 0);  // k absent before
  add_put(inner.mutable_success(), "saw-before", "1");
  TxnRequest outer;
  add_put(outer.mutable_success(), "k", "v");
  *outer.add_success()->mutable_request_txn() = inner;
  txn(outer);
  EXPECT_TRUE(get_one("saw-before"));
}

TEST_F(KV_SUITE(StoreTest), CompareOnVersion) {
  put("k", "v");
  put("k", "v");  // version 2
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::VERSION, Compare::EQUAL, 2)));
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::VERSION, Compare::GREATER, 1)));
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::VERSION, Compare::LESS, 3)));
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::VERSION, Compare::NOT_EQUAL, 1)));
  EXPECT_FALSE(txn_succeeds(compare("k", Compare::VERSION, Compare::EQUAL, 1)));
}

TEST_F(KV_SUITE(StoreTest), CompareOnCreateRevision) {
  put("k", "v");  // created at 2
  put("k", "w");
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::CREATE, Compare::EQUAL, 2)));
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::CREATE, Compare::LESS, 3)));
  EXPECT_FALSE(txn_succeeds(compare("k", Compare::CREATE, Compare::GREATER, 2)));
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::CREATE, Compare::NOT_EQUAL, 3)));
}

TEST_F(KV_SUITE(StoreTest), CompareOnModRevision) {
  put("k", "v");
  put("k", "w");  // mod 3
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::MOD, Compare::EQUAL, 3)));
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::MOD, Compare::GREATER, 2)));
  EXPECT_FALSE(txn_succeeds(compare("k", Compare::MOD, Compare::LESS, 3)));
  EXPECT_FALSE(txn_succeeds(compare("k", Compare::MOD, Compare::NOT_EQUAL, 3)));
}

TEST_F(KV_SUITE(StoreTest), CompareOnValue) {
  put("k", "m");
  EXPECT_TRUE(txn_succeeds(compare_value("k", Compare::EQUAL, "m")));
  EXPECT_TRUE(txn_succeeds(compare_value("k", Compare::GREATER, "a")));
  EXPECT_TRUE(txn_succeeds(compare_value("k", Compare::LESS, "z")));
  EXPECT_TRUE(txn_succeeds(compare_value("k", Compare::NOT_EQUAL, "x")));
  EXPECT_FALSE(txn_succeeds(compare_value("k", Compare::EQUAL, "x")));
}

TEST_F(KV_SUITE(StoreTest), CompareOnLease) {
  put("k", "v");  // no lease: 0
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::LEASE, Compare::EQUAL, 0)));
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::LEASE, Compare::LESS, 5)));
  EXPECT_FALSE(txn_succeeds(compare("k", Compare::LEASE, Compare::GREATER, 0)));
  EXPECT_TRUE(txn_succeeds(compare("k", Compare::LEASE, Compare::NOT_EQUAL, 7)));
}

TEST_F(KV_SUITE(StoreTest), CompareOnMissingKeyUsesZerosButValueFails) {
  EXPECT_TRUE(txn_succeeds(compare("nope", Compare::VERSION, Compare::EQUAL, 0)));
  EXPECT_TRUE(txn_succeeds(compare("nope", Compare::CREATE, Compare::EQUAL, 0)));
  EXPECT_FALSE(txn_succeeds(compare_value("nope", Compare::EQUAL, "")));
  EXPECT_FALSE(txn_succeeds(compare_value("nope", Compare::NOT_EQUAL, "x")));
}

TEST_F(KV_SUITE(StoreTest), CompareOverARangeNeedsEveryKeyToSatisfyIt) {
  put("a", "1");
  put("b", "1");
  put("b", "1");  // b at version 2
  EXPECT_TRUE(txn_succeeds(compare("a", Compare::VERSION, Compare::GREATER, 0, "c")));
  EXPECT_FALSE(txn_succeeds(compare("a", Compare::VERSION, Compare::EQUAL, 1, "c")));
  EXPECT_TRUE(txn_succeeds(compare("a", Compare::VERSION, Compare::EQUAL, 1, "b")));
  EXPECT_TRUE(txn_succeeds(compare_value("a", Compare::EQUAL, "1", kFromKey)));
  EXPECT_FALSE(txn_succeeds(compare("a", Compare::MOD, Compare::LESS, 4, kFromKey)));
}

TEST_F(KV_SUITE(StoreTest), TxnRangeAtACompactedRevisionFailsAndWritesNothing) {
  put("k", "v");
  put("k", "w");
  ASSERT_TRUE(compact(3).ok());
  TxnRequest t;
  add_put(t.mutable_success(), "x", "1");
  *t.add_success()->mutable_request_range() = range_req("k", "", 2);
  synodpb::Request req;
  *req.mutable_txn() = t;
  ApplyResult r = apply(req);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(*r.error(), errors::compacted());
  EXPECT_FALSE(get_one("x"));
}

// ----- ranges -------------------------------------------------------------------------------

TEST_F(KV_SUITE(StoreTest), RangeEndSelectsSingleKeyFromKeyOrInterval) {
  put_abc();
  put("d", "0");
  EXPECT_EQ(keys_of(get(range_req("b"))), std::vector<std::string>{"b"});
  EXPECT_EQ(keys_of(get(range_req("b", kFromKey))), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(keys_of(get(range_req("b", "d"))), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(get(range_req("d", "b")).count(), 0);
}

TEST_F(KV_SUITE(StoreTest), RangeLimitSetsMoreAndCountsEveryKey) {
  put_abc();
  auto r = range_req("a", kFromKey);
  r.set_limit(2);
  auto resp = get(r);
  EXPECT_EQ(keys_of(resp), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(resp.more());
  EXPECT_EQ(resp.count(), 3);
  r.set_limit(3);
  EXPECT_FALSE(get(r).more());
}

TEST_F(KV_SUITE(StoreTest), RangeSortsByEachTargetInEachOrder) {
  put_abc();      // a=3 @2, b=2 @3, c=1 @4
  put("a", "3");  // a: version 2, mod 5
  struct Case {
    RangeRequest::SortTarget target;
    RangeRequest::SortOrder order;
    std::vector<std::string> keys;
  };
  std::vector<Case> cases = {
      {RangeRequest::KEY, RangeRequest::NONE, {"a", "b", "c"}},
      {RangeRequest::KEY, RangeRequest::ASCEND, {"a", "b", "c"}},
      {RangeRequest::KEY, RangeRequest::DESCEND, {"c", "b", "a"}},
      {RangeRequest::VERSION, RangeRequest::ASCEND, {"b", "c", "a"}},
      {RangeRequest::VERSION, RangeRequest::DESCEND, {"a", "b", "c"}},
      {RangeRequest::CREATE, RangeRequest::ASCEND, {"a", "b", "c"}},
      {RangeRequest::CREATE, RangeRequest::DESCEND, {"c", "b", "a"}},
      {RangeRequest::MOD, RangeRequest::ASCEND, {"b", "c", "a"}},
      {RangeRequest::MOD, RangeRequest::DESCEND, {"a", "c", "b"}},
      {RangeRequest::VALUE, RangeRequest::ASCEND, {"c", "b", "a"}},
      {RangeRequest::VALUE, RangeRequest::DESCEND, {"a", "b", "c"}},
      {RangeRequest::VALUE, RangeRequest::NONE, {"c", "b", "a"}},  // non-KEY target: ascend
  };
  for (const Case& c : cases) {
    auto r = range_req("a", kFromKey);
    r.set_sort_target(c.target);
    r.set_sort_order(c.order);
    EXPECT_EQ(keys_of(get(r)), c.keys) << "target " << c.target << " order " << c.order;
  }
}

TEST_F(KV_SUITE(StoreTest), RangeSortAppliesBeforeTheLimit) {
  put_abc();
  auto r = range_req("a", kFromKey);
  r.set_sort_target(RangeRequest::VALUE);
  r.set_sort_order(RangeRequest::ASCEND);  // etcd: with order NONE the limit cuts before sorting
  r.set_limit(1);
  auto resp = get(r);
  EXPECT_EQ(keys_of(resp), std::vector<std::string>{"c"});
  EXPECT_TRUE(resp.more());
}

TEST_F(KV_SUITE(StoreTest), RangeKeysOnlyDropsValues) {
  put("k", "value");
  auto r = range_req("k");
  r.set_keys_only(true);
  auto resp = get(r);
  ASSERT_EQ(resp.kvs_size(), 1);
  EXPECT_EQ(resp.kvs(0).value(), "");
  EXPECT_EQ(resp.kvs(0).mod_revision(), 2);
}

TEST_F(KV_SUITE(StoreTest), RangeCountOnlyReturnsNoKeys) {
  put_abc();
  auto r = range_req("a", kFromKey);
  r.set_count_only(true);
  auto resp = get(r);
  EXPECT_EQ(resp.count(), 3);
  EXPECT_EQ(resp.kvs_size(), 0);
  EXPECT_FALSE(resp.more());
}

TEST_F(KV_SUITE(StoreTest), RangeFiltersOnModAndCreateRevisions) {
  put_abc();      // created 2, 3, 4
  put("a", "3");  // a mod 5
  auto r = range_req("a", kFromKey);
  r.set_min_mod_revision(4);
  EXPECT_EQ(keys_of(get(r)), (std::vector<std::string>{"a", "c"}));
  r = range_req("a", kFromKey);
  r.set_max_mod_revision(4);
  EXPECT_EQ(keys_of(get(r)), (std::vector<std::string>{"b", "c"}));
  r = range_req("a", kFromKey);
  r.set_min_create_revision(3);
  EXPECT_EQ(keys_of(get(r)), (std::vector<std::string>{"b", "c"}));
  r = range_req("a", kFromKey);
  r.set_max_create_revision(3);
  auto resp = get(r);
  EXPECT_EQ(keys_of(resp), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(resp.count(), 3);  // etcd counts before filtering
}

TEST_F(KV_SUITE(StoreTest), RangeAtAPastRevisionSeesThatRevision) {
  put("k", "v1");                      // 2
  put("k", "v2");                      // 3
  del(del_req("k"));                   // 4
  put("k", "v3");                      // 5
  put(std::string("k\0", 2), "zero");  // 6
  EXPECT_EQ(get_one("k", 2)->value(), "v1");
  EXPECT_EQ(get_one("k", 3)->value(), "v2");
  EXPECT_FALSE(get_one("k", 4));
  EXPECT_EQ(get_one("k", 5)->version(), 1);
  auto resp = get(range_req("k", kFromKey, 5));
  EXPECT_EQ(resp.count(), 1);
  EXPECT_EQ(resp.header().revision(), 6);  // the header carries the current revision
  EXPECT_EQ(get(range_req("k", kFromKey, 6)).count(), 2);
  auto r = range_req("a", kFromKey, 3);
  r.set_limit(1);
  EXPECT_EQ(get(r).kvs(0).value(), "v2");
}

TEST_F(KV_SUITE(StoreTest), RangeAtAFutureRevisionFails) {
  put("k", "v");
  auto resp = store().range(range_req("k", "", 3));
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error(), errors::future_revision());
  EXPECT_EQ(resp.error().grpc_code, 11);
}

TEST_F(KV_SUITE(StoreTest), RangeAtACompactedRevisionFails) {
  put("k", "v1");
  put("k", "v2");
  put("k", "v3");
  ASSERT_TRUE(compact(3).ok());
  auto resp = store().range(range_req("k", "", 2));
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error(), errors::compacted());
  EXPECT_EQ(get_one("k", 3)->value(), "v2");  // the compact revision itself stays readable
}

TEST_F(KV_SUITE(StoreTest), RangeWithoutAKeyFails) {
  auto resp = store().range(range_req(""));
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error(), errors::empty_key());
}

// ----- compaction ---------------------------------------------------------------------------

TEST_F(KV_SUITE(StoreTest), CompactionDropsHistoryButKeepsTheLatest) {
  put("k", "v1");        // 2
  put("k", "v2");        // 3
  put("gone", "x");      // 4
  del(del_req("gone"));  // 5
  put("k", "v3");        // 6
  std::string before = store().image();
  auto r = compact(5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.response<etcdserverpb::CompactionResponse>()->header().revision(), 6);
  EXPECT_EQ(store().compact_revision(), 5);
  EXPECT_EQ(get_one("k", 5)->value(), "v2");
  EXPECT_EQ(get_one("k")->value(), "v3");
  EXPECT_FALSE(get_one("gone", 5));
  EXPECT_LT(store().image().size(), before.size());
  // Only k@3 (newest at or below 5) and k@6 remain in the history; gone's tombstone went too.
  int versions = 0;
  keys::Bounds h = keys::table(keys::kHistory);
  tb_->get().scan(h.begin, h.end, [&](std::string_view, std::string_view) {
    ++versions;
    return true;
  });
  EXPECT_EQ(versions, 2);
}

struct VisitedRevision {
  int64_t main;
  int64_t sub;
  std::string key;
  std::string value;
  bool tombstone;
  bool operator==(const VisitedRevision&) const = default;
};

std::vector<VisitedRevision> visit_all(const Store& store) {
  std::vector<VisitedRevision> out;
  store.for_each_revision([&](const Store::RevisionEntry& e) {
    EXPECT_EQ(e.kv.mod_revision(), e.rev.main);
    out.push_back({e.rev.main, e.rev.sub, e.kv.key(), e.kv.value(), e.tombstone});
  });
  return out;
}

TEST_F(KV_SUITE(StoreTest), ForEachRevisionVisitsEveryVersionInRevisionOrder) {
  put("b", "1");  // 2
  TxnRequest t;
  add_put(t.mutable_success(), "a", "2");
  add_put(t.mutable_success(), "c", "3");
  txn(t);             // 3 (subs 0, 1)
  del(del_req("b"));  // 4
  put("a", "5");      // 5
  std::vector<VisitedRevision> want = {{2, 0, "b", "1", false},
                                       {3, 0, "a", "2", false},
                                       {3, 1, "c", "3", false},
                                       {4, 0, "b", "", true},
                                       {5, 0, "a", "5", false}};
  EXPECT_EQ(visit_all(store()), want);
}

TEST_F(KV_SUITE(StoreTest), ForEachRevisionAfterCompactionKeepsTheLatestBelowIt) {
  put("k", "v1");        // 2
  put("z", "z1");        // 3
  put("k", "v2");        // 4
  put("gone", "x");      // 5
  del(del_req("gone"));  // 6
  put("k", "v3");        // 7
  ASSERT_TRUE(compact(6).ok());
  // Below the compaction point: z@3 and k@4 (revision order, not key order); gone is gone.
  std::vector<VisitedRevision> want = {
      {3, 0, "z", "z1", false}, {4, 0, "k", "v2", false}, {7, 0, "k", "v3", false}};
  EXPECT_EQ(visit_all(store()), want);
}

TEST_F(KV_SUITE(StoreTest), ForEachRevisionOnAnEmptyStoreVisitsNothing) {
  EXPECT_TRUE(visit_all(store()).empty());
}

TEST_F(KV_SUITE(StoreTest), CompactionAtOrBelowTheCompactRevisionFails) {
  put("k", "v1");
  put("k", "v2");
  ASSERT_TRUE(compact(2).ok());
  EXPECT_EQ(*compact(2).error(), errors::compacted());
  EXPECT_EQ(*compact(1).error(), errors::compacted());
}

TEST_F(KV_SUITE(StoreTest), CompactionBeyondTheCurrentRevisionFails) {
  put("k", "v");
  EXPECT_EQ(*compact(3).error(), errors::future_revision());
  EXPECT_EQ(store().compact_revision(), -1);
}

// ----- apply-time errors --------------------------------------------------------------------

TEST_F(KV_SUITE(StoreTest), IgnoreValueKeepsTheValueAndFailsOnAMissingKey) {
  synodpb::Request req;
  req.mutable_put()->set_key("k");
  req.mutable_put()->set_ignore_value(true);
  ApplyResult r = apply(req);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(*r.error(), errors::key_not_found());
  put("k", "kept");
  ASSERT_TRUE(apply(req).ok());
  EXPECT_EQ(get_one("k")->value(), "kept");
  EXPECT_EQ(get_one("k")->version(), 2);
}

TEST_F(KV_SUITE(StoreTest), PutWithALeaseFailsUntilLeasesExist) {
  synodpb::Request req;
  *req.mutable_put() = put_req("k", "v");
  req.mutable_put()->set_lease(42);
  ApplyResult r = apply(req);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(*r.error(), errors::lease_not_found());
  EXPECT_EQ(r.error()->grpc_code, 5);
}

TEST_F(KV_SUITE(StoreTest), AnErrorChangesNothingButAdvancesTheAppliedIndex) {
  put("k", "v");
  uint32_t hash = store().hash_kv(0)->hash;
  TxnRequest t;
  add_put(t.mutable_success(), "x", "1");
  add_put(t.mutable_success(), "k", "w");
  t.mutable_success(1)->mutable_request_put()->set_lease(9);
  synodpb::Request req;
  *req.mutable_txn() = t;
  ApplyResult r = apply(req);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(*r.error(), errors::lease_not_found());
  EXPECT_EQ(store().applied_index(), 2u);
  EXPECT_EQ(store().revision(), 2);
  EXPECT_EQ(store().hash_kv(0)->hash, hash);
  EXPECT_FALSE(get_one("x"));
}

// ----- applied index, restart, snapshots ----------------------------------------------------

TEST_F(KV_SUITE(StoreTest), ReapplyingAnAppliedIndexIsANoOp) {
  synodpb::Request req;
  *req.mutable_put() = put_req("k", "v");
  ASSERT_TRUE(store().apply(5, req).ok());
  ApplyResult again = store().apply(5, req);
  EXPECT_TRUE(again.skipped);
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(store().apply(4, req).skipped);
  EXPECT_EQ(store().revision(), 2);
  EXPECT_EQ(get_one("k")->version(), 1);
}

TEST_F(KV_SUITE(StoreTest), AdvanceAppliedMovesOnlyForward) {
  EXPECT_TRUE(store().advance_applied(3));
  EXPECT_FALSE(store().advance_applied(3));
  EXPECT_EQ(store().applied_index(), 3u);
  EXPECT_EQ(store().revision(), 1);
}

TEST_F(KV_SUITE(StoreTest), RestartReloadsRevisionsAppliedIndexAndData) {
  put("k", "v1");
  put("k", "v2");
  ASSERT_TRUE(compact(2).ok());
  tb_->get().sync();
  restart();
  EXPECT_EQ(store().applied_index(), 3u);
  EXPECT_EQ(store().revision(), 3);
  EXPECT_EQ(store().compact_revision(), 2);
  EXPECT_EQ(get_one("k")->value(), "v2");
  synodpb::Request req;
  *req.mutable_put() = put_req("k", "dup");
  EXPECT_TRUE(store().apply(3, req).skipped);  // a replayed entry is not applied twice
}

synodpb::Request grant_req(int64_t id, int64_t ttl) {
  synodpb::Request r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(ttl);
  return r;
}

synodpb::Request revoke_req(int64_t id) {
  synodpb::Request r;
  r.mutable_lease_revoke()->set_id(id);
  return r;
}

TEST_F(KV_SUITE(StoreTest), GrantCreatesALeaseWithoutARevision) {
  ApplyResult r = apply(grant_req(7, 30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.response<etcdserverpb::LeaseGrantResponse>()->id(), 7);
  EXPECT_EQ(r.response<etcdserverpb::LeaseGrantResponse>()->ttl(), 30);
  EXPECT_EQ(store().revision(), 1);
  EXPECT_EQ(store().lease_ids(), std::vector<int64_t>{7});
  EXPECT_EQ(*apply(grant_req(7, 5)).error(), errors::lease_exists());
  EXPECT_EQ(*apply(grant_req(8, kMaxLeaseTtlSeconds + 1)).error(), errors::lease_ttl_too_large());
  EXPECT_EQ(store().lease(7)->ttl, 30);
}

TEST_F(KV_SUITE(StoreTest), PutAttachesKeysToALeaseAndRevokeDeletesThemInOneRevision) {
  ASSERT_TRUE(apply(grant_req(7, 30)).ok());
  auto with_lease = [](std::string k, int64_t lease) {
    etcdserverpb::PutRequest p = put_req(std::move(k), "v");
    p.set_lease(lease);
    return p;
  };
  put(with_lease("a", 7));  // 2
  put(with_lease("b", 7));  // 3
  put("c", "v");            // 4
  put(with_lease("d", 7));  // 5
  put("d", "v2");           // 6: a put without the lease detaches d
  EXPECT_EQ(store().lease(7)->keys, (std::vector<std::string>{"a", "b"}));
  std::vector<mvccpb::Event> events;
  ApplyResult r = store().apply(++index_, revoke_req(7), &events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(store().revision(), 7);
  EXPECT_EQ(r.response<etcdserverpb::LeaseRevokeResponse>()->header().revision(), 7);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[0].kv().mod_revision(), 7);
  EXPECT_EQ(events[1].kv().key(), "b");
  EXPECT_FALSE(get_one("a"));
  EXPECT_TRUE(get_one("c"));
  EXPECT_TRUE(get_one("d"));
  EXPECT_FALSE(store().lease(7));
  EXPECT_EQ(*apply(revoke_req(7)).error(), errors::lease_not_found());
  synodpb::Request late;
  *late.mutable_put() = with_lease("x", 7);
  EXPECT_EQ(*apply(late).error(), errors::lease_not_found());
}

TEST_F(KV_SUITE(StoreTest), LeaseAttachmentsSurviveARestart) {
  ASSERT_TRUE(apply(grant_req(7, 30)).ok());
  etcdserverpb::PutRequest p = put_req("a", "v");
  p.set_lease(7);
  put(p);
  tb_->get().sync();
  restart();
  EXPECT_EQ(store().lease(7)->keys, std::vector<std::string>{"a"});
  ASSERT_TRUE(apply(revoke_req(7)).ok());
  EXPECT_FALSE(get_one("a"));
}

synodpb::Request fenced_req(std::string lock, int64_t token, std::string key, std::string v) {
  synodpb::Request r;
  r.mutable_fenced_put()->set_lock(std::move(lock));
  r.mutable_fenced_put()->set_token(token);
  *r.mutable_fenced_put()->mutable_put() = put_req(std::move(key), std::move(v));
  return r;
}

// Fencing: only the holder's token (its lock key's create revision) may write; a former
// holder's older token is refused, and so is any token while nobody holds the lock.
TEST_F(KV_SUITE(StoreTest), FencedPutAcceptsOnlyTheCurrentHoldersToken) {
  EXPECT_EQ(*apply(fenced_req("L", 1, "data", "x")).error(), errors::lock_not_held("L"));
  put("L/a", "");  // 2: holder a, token 2
  put("L/b", "");  // 3: b waits
  put("Lz", "");   // outside the lock's keys
  ApplyResult ok = apply(fenced_req("L", 2, "data", "from-a"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(get_one("data")->value(), "from-a");
  del(del_req("L/a"));  // a's lease expired: b holds, token 3
  EXPECT_EQ(*apply(fenced_req("L", 2, "data", "stale")).error(), errors::stale_token(2, 3));
  EXPECT_EQ(errors::stale_token(2, 3).message,
            "synod: fencing token 2 is older than the lock holder's (3)");
  ASSERT_TRUE(apply(fenced_req("L", 3, "data", "from-b")).ok());
  EXPECT_EQ(get_one("data")->value(), "from-b");
  EXPECT_EQ(*apply(fenced_req("", 3, "data", "x")).error(), errors::lock_name_missing());
}

// A fenced txn: the whole transaction runs only with the holder's token.
TEST_F(KV_SUITE(StoreTest), FencedTxnRunsOnlyWithTheHoldersToken) {
  put("L/a", "");  // 2: holder, token 2
  put("L/b", "");  // 3
  auto fenced = [](int64_t token) {
    synodpb::Request r;
    r.mutable_fenced_txn()->set_lock("L");
    r.mutable_fenced_txn()->set_token(token);
    auto* op = r.mutable_fenced_txn()->mutable_txn()->add_success()->mutable_request_put();
    op->set_key("data");
    op->set_value("t" + std::to_string(token));
    return r;
  };
  EXPECT_EQ(*apply(fenced(3)).error(), errors::stale_token(3, 2));
  ApplyResult ok = apply(fenced(2));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok.response<etcdserverpb::TxnResponse>()->succeeded());
  del(del_req("L/a"));  // 5: b holds, token 3
  EXPECT_EQ(*apply(fenced(2)).error(), errors::stale_token(2, 3));
  ASSERT_TRUE(apply(fenced(3)).ok());
  EXPECT_EQ(get_one("data")->value(), "t3");
}

// The key index (create revision and version of each live key) is rebuilt from the backend on
// a restart: a put after it continues the key's history instead of starting it over.
TEST_F(KV_SUITE(StoreTest), PutAfterRestartContinuesTheKeysVersion) {
  put("k", "v1");
  put("k", "v2");
  tb_->get().sync();
  restart();
  put("k", "v3");
  std::optional<mvccpb::KeyValue> kv = get_one("k");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->version(), 3);
  EXPECT_EQ(kv->create_revision(), 2);
  EXPECT_EQ(kv->mod_revision(), 4);
}

// ...and replaced on restore: keys of the image continue, keys only the old state had start
// over.
TEST_F(KV_SUITE(StoreTest), PutAfterRestoreFollowsTheImagesVersions) {
  put("a", "1");
  put("a", "2");
  std::string image = store().image();
  auto other_backend = testing::make_test_backend();
  Store other(other_backend->get());
  synodpb::Request junk;
  *junk.mutable_put() = put_req("junk", "x");
  other.apply(1, junk);
  ASSERT_TRUE(other.restore(image));
  synodpb::Request again;
  *again.mutable_put() = put_req("a", "3");
  ASSERT_TRUE(other.apply(other.applied_index() + 1, again).ok());
  *again.mutable_put() = put_req("junk", "y");
  ASSERT_TRUE(other.apply(other.applied_index() + 1, again).ok());
  auto a = other.range(range_req("a"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->kvs_size(), 1);
  EXPECT_EQ(a->kvs(0).version(), 3);
  EXPECT_EQ(a->kvs(0).create_revision(), 2);
  auto j = other.range(range_req("junk"));
  ASSERT_TRUE(j);
  ASSERT_EQ(j->kvs_size(), 1);
  EXPECT_EQ(j->kvs(0).version(), 1);
  EXPECT_EQ(j->kvs(0).create_revision(), j->kvs(0).mod_revision());
}

// A delete, then a put of the same key in a later txn: the index forgets the deleted version.
TEST_F(KV_SUITE(StoreTest), PutAfterDeleteStartsANewGeneration) {
  put("k", "v1");
  put("k", "v2");
  del(del_req("k"));
  put("k", "v3");
  std::optional<mvccpb::KeyValue> kv = get_one("k");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->version(), 1);
  EXPECT_EQ(kv->create_revision(), kv->mod_revision());
}

TEST_F(KV_SUITE(StoreTest), RestoreOfAnImageRoundTrips) {
  put_abc();
  del(del_req("b"));
  synodpb::Request member;
  member.mutable_member_put()->set_id(7);
  member.mutable_member_put()->set_name("n7");
  ASSERT_TRUE(apply(member).ok());
  std::string image = store().image();
  auto hash = store().hash_kv(0);

  auto other_backend = testing::make_test_backend();
  Store other(other_backend->get());
  synodpb::Request junk;
  *junk.mutable_put() = put_req("junk", "x");
  other.apply(1, junk);
  ASSERT_TRUE(other.restore(image));
  EXPECT_EQ(other.revision(), store().revision());
  EXPECT_EQ(other.applied_index(), store().applied_index());
  EXPECT_EQ(other.image(), image);
  EXPECT_EQ(other.hash_kv(0)->hash, hash->hash);
  ASSERT_EQ(other.members().size(), 1u);
  EXPECT_EQ(other.members()[0].name(), "n7");
  EXPECT_EQ(other.range(range_req("a", "", 3))->kvs(0).value(), "3");
}

TEST_F(KV_SUITE(StoreTest), RestoreRejectsACorruptedImageAndKeepsItsState) {
  put("k", "v");
  std::string image = store().image();
  put("k", "w");
  std::string state = store().image();
  std::string flipped = image;
  flipped[flipped.size() / 2] ^= 0x01;
  EXPECT_FALSE(store().restore(flipped));
  EXPECT_FALSE(store().restore(image.substr(0, image.size() - 1)));
  EXPECT_FALSE(store().restore(""));
  EXPECT_FALSE(store().restore("SYNODKV1 not an image at all"));
  EXPECT_EQ(store().image(), state);
  EXPECT_EQ(get_one("k")->value(), "w");
}

// ----- hashes and members -------------------------------------------------------------------

TEST_F(KV_SUITE(StoreTest), HashKvIsEqualForEqualHistoriesAndDiffersOtherwise) {
  auto twin_backend = testing::make_test_backend();
  Store twin(twin_backend->get());
  synodpb::Request a, b;
  *a.mutable_put() = put_req("k", "1");
  *b.mutable_put() = put_req("k", "2");
  store().apply(1, a);
  twin.apply(1, a);
  EXPECT_EQ(store().hash_kv(0)->hash, twin.hash_kv(0)->hash);
  store().apply(2, a);
  twin.apply(2, b);
  EXPECT_NE(store().hash_kv(0)->hash, twin.hash_kv(0)->hash);
  // Up to revision 2 the histories agree.
  EXPECT_EQ(store().hash_kv(2)->hash, twin.hash_kv(2)->hash);
  EXPECT_EQ(store().hash_kv(2)->revision, 3);
  EXPECT_EQ(store().hash_kv(9).error(), errors::future_revision());
}

TEST_F(KV_SUITE(StoreTest), MembersAreAddedUpdatedAndRemoved) {
  synodpb::Request req;
  req.mutable_member_put()->set_id(2);
  req.mutable_member_put()->add_peer_urls("http://b:2380");
  ASSERT_TRUE(apply(req).ok());
  req.mutable_member_put()->set_id(1);
  auto r = apply(req);
  ASSERT_EQ(r.response<MembersResponse>()->members.size(), 2u);
  req.mutable_member_put()->set_is_learner(true);
  apply(req);
  EXPECT_TRUE(store().members()[0].is_learner());
  synodpb::Request remove;
  remove.set_member_remove(1);
  ASSERT_TRUE(apply(remove).ok());
  ASSERT_EQ(store().members().size(), 1u);
  EXPECT_EQ(store().members()[0].id(), 2u);
  EXPECT_EQ(*apply(remove).error(), errors::member_not_found());
  EXPECT_EQ(store().revision(), 1);  // membership is not a KV revision
}

}  // namespace
}  // namespace synod::kv

// ----- client sessions (a request ordered twice by a Byzantine fault tolerant engine) --------

namespace synod::kv {
namespace {

TEST_F(KV_SUITE(StoreTest), AClientsRequestOrderedAgainTakesEffectOnce) {
  synodpb::Request first;
  *first.mutable_put() = put_req("r", "old");
  synodpb::Request second;
  *second.mutable_put() = put_req("r", "new");
  const ClientStamp a1{"client-a", 41};
  const ClientStamp a2{"client-a", 42};
  ASSERT_TRUE(store().apply(1, first, nullptr, &a1).ok());
  ASSERT_TRUE(store().apply(2, second, nullptr, &a2).ok());
  // The first again, later in the log (a replay): nothing changes but the applied index.
  const int64_t revision = store().revision();
  ApplyResult again = store().apply(3, first, nullptr, &a1);
  EXPECT_TRUE(again.duplicate);
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(store().applied_index(), 3u);
  EXPECT_EQ(store().revision(), revision);
  EXPECT_EQ(get_one("r")->value(), "new");
  // Another client's timestamps are its own.
  const ClientStamp b1{"client-b", 41};
  EXPECT_TRUE(store().apply(4, first, nullptr, &b1).ok());
  EXPECT_EQ(store().session_highest("client-a"), 42u);
  EXPECT_EQ(store().session_highest("client-b"), 41u);
  EXPECT_EQ(store().session_highest("client-c"), 0u);
  // Without a stamp (Raft, Multi-Paxos) every entry applies.
  EXPECT_TRUE(store().apply(5, first).ok());
}

TEST_F(KV_SUITE(StoreTest), SessionsSurviveRestartsAndTravelInImages) {
  synodpb::Request req;
  *req.mutable_put() = put_req("r", "1");
  const ClientStamp s{"client", 7};
  ASSERT_TRUE(store().apply(1, req, nullptr, &s).ok());
  restart();
  EXPECT_TRUE(store().apply(2, req, nullptr, &s).duplicate);
  auto other_backend = testing::make_test_backend();
  Store other(other_backend->get());
  ASSERT_TRUE(other.restore(store().image()));
  EXPECT_EQ(other.session_highest("client"), 7u);
  EXPECT_TRUE(other.apply(3, req, nullptr, &s).duplicate);
  const ClientStamp next{"client", 8};
  EXPECT_TRUE(other.apply(4, req, nullptr, &next).ok());
}

// ----- revision stamps (a sharded cluster's timestamps) ---------------------------------------

TEST_F(KV_SUITE(StoreTest), AStampedWriteTakesItsStampAsRevision) {
  put("a", "1");  // 2
  synodpb::Request req;
  *req.mutable_put() = put_req("b", "2");
  req.set_revision_stamp(100);
  ASSERT_TRUE(apply(req).ok());
  EXPECT_EQ(store().revision(), 100);
  EXPECT_EQ(get_one("b")->mod_revision(), 100);
  EXPECT_EQ(get_one("b")->create_revision(), 100);
  // A stamp at or below the store's revision: the next revision, as unstamped.
  *req.mutable_put() = put_req("c", "3");
  req.set_revision_stamp(50);
  ASSERT_TRUE(apply(req).ok());
  EXPECT_EQ(store().revision(), 101);
  // Reads between revisions see the state at the newest one below.
  EXPECT_EQ(get_one("b", 99), std::nullopt);
  EXPECT_EQ(get_one("a", 99)->value(), "1");
  restart();
  EXPECT_EQ(store().revision(), 101);
}

TEST_F(KV_SUITE(StoreTest), AStampAloneMovesTheRevisionOnWithoutAWrite) {
  put("a", "1");  // 2
  synodpb::Request advance;
  advance.set_revision_stamp(40);
  ASSERT_TRUE(apply(advance).ok());
  EXPECT_EQ(store().revision(), 40);
  EXPECT_EQ(get_one("a")->mod_revision(), 2);
  // Not past the revision, or without a stamp: an empty request, refused.
  advance.set_revision_stamp(30);
  EXPECT_EQ(apply(advance).error()->message, errors::empty_request().message);
  EXPECT_EQ(apply(synodpb::Request()).error()->message, errors::empty_request().message);
  EXPECT_EQ(store().revision(), 40);
  EXPECT_EQ(put("b", "2").header().revision(), 41);
}

// ----- merging the ranges of several stores ------------------------------------------------------

etcdserverpb::RangeResponse part(std::vector<std::tuple<std::string, std::string, int64_t>> kvs,
                                 int64_t revision, bool more = false) {
  etcdserverpb::RangeResponse r;
  r.mutable_header()->set_revision(revision);
  r.set_count(static_cast<int64_t>(kvs.size()) + (more ? 1 : 0));
  r.set_more(more);
  for (auto& [k, v, mod] : kvs) {
    mvccpb::KeyValue* kv = r.add_kvs();
    kv->set_key(k);
    kv->set_value(v);
    kv->set_mod_revision(mod);
  }
  return r;
}

TEST(MergeRanges, KeysComeInKeyOrderCutToTheLimitWithCountsSummed) {
  RangeRequest req = range_req("a", "z");
  req.set_limit(3);
  std::vector<etcdserverpb::RangeResponse> parts;
  parts.push_back(part({{"b", "1", 5}, {"e", "2", 9}}, 9));
  parts.push_back(part({{"a", "3", 7}, {"c", "4", 3}}, 12));
  parts.push_back(part({}, 4));
  etcdserverpb::RangeResponse r = merge_ranges(req, std::move(parts));
  std::vector<std::string> keys;
  for (const auto& kv : r.kvs()) keys.push_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r.count(), 4);
  EXPECT_TRUE(r.more());
  EXPECT_EQ(r.header().revision(), 12);
}

TEST(MergeRanges, ASortTargetOrdersAcrossPartsAndTiesStayInKeyOrder) {
  RangeRequest req = range_req("a", "z");
  req.set_sort_target(RangeRequest::VALUE);
  req.set_sort_order(RangeRequest::DESCEND);
  std::vector<etcdserverpb::RangeResponse> parts;
  parts.push_back(part({{"d", "x", 1}, {"b", "m", 2}}, 2));
  parts.push_back(part({{"c", "x", 3}, {"a", "a", 4}}, 4));
  etcdserverpb::RangeResponse r = merge_ranges(req, std::move(parts));
  std::vector<std::string> keys;
  for (const auto& kv : r.kvs()) keys.push_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"c", "d", "b", "a"}));
  EXPECT_FALSE(r.more());
}

TEST(MergeRanges, AnyPartWithMoreMakesMore) {
  RangeRequest req = range_req("a", "z");
  req.set_limit(5);
  std::vector<etcdserverpb::RangeResponse> parts;
  parts.push_back(part({{"a", "1", 1}}, 1, /*more=*/true));
  parts.push_back(part({{"b", "1", 2}}, 2));
  etcdserverpb::RangeResponse r = merge_ranges(req, std::move(parts));
  EXPECT_EQ(r.kvs_size(), 2);
  EXPECT_TRUE(r.more());
  EXPECT_EQ(r.count(), 3);
}

}  // namespace
}  // namespace synod::kv
