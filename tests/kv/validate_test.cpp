// Pre-proposal validation with etcd 3.4's rules and texts (v3rpc/key.go).
#include "kv/validate.h"

#include <gtest/gtest.h>

#include "test_backend.h"

namespace synod::kv {
namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using Ops = google::protobuf::RepeatedPtrField<RequestOp>;

void add_put(Ops* ops, const std::string& key) {
  ops->Add()->mutable_request_put()->set_key(key);
}
void add_del(Ops* ops, const std::string& key, const std::string& end = "") {
  auto* d = ops->Add()->mutable_request_delete_range();
  d->set_key(key);
  d->set_range_end(end);
}

TEST(KV_SUITE(ValidateTest), RequestsWithoutAKeyAreRefused) {
  EXPECT_EQ(validate(etcdserverpb::RangeRequest()), errors::empty_key());
  EXPECT_EQ(validate(etcdserverpb::PutRequest()), errors::empty_key());
  EXPECT_EQ(validate(etcdserverpb::DeleteRangeRequest()), errors::empty_key());
  TxnRequest t;
  t.add_compare();
  EXPECT_EQ(validate(t), errors::empty_key());
  TxnRequest nested;
  add_put(nested.add_success()->mutable_request_txn()->mutable_failure(), "");
  EXPECT_EQ(validate(nested), errors::empty_key());
  EXPECT_EQ(errors::empty_key().grpc_code, 3);
}

TEST(KV_SUITE(ValidateTest), PutWithIgnoreFlagsRefusesAValueOrLease) {
  etcdserverpb::PutRequest p;
  p.set_key("k");
  p.set_ignore_value(true);
  p.set_value("v");
  EXPECT_EQ(validate(p), errors::value_provided());
  p.clear_value();
  p.set_ignore_lease(true);
  p.set_lease(3);
  EXPECT_EQ(validate(p), errors::lease_provided());
}

TEST(KV_SUITE(ValidateTest), TooManyOpsInABranchAreRefused) {
  TxnRequest t;
  for (int i = 0; i < 4; ++i) add_put(t.mutable_success(), "k" + std::to_string(i));
  EXPECT_EQ(validate(t, 4), std::nullopt);
  EXPECT_EQ(validate(t, 3), errors::too_many_ops());
  TxnRequest big;
  for (int i = 0; i < kDefaultMaxTxnOps + 1; ++i) add_put(big.mutable_failure(), std::to_string(i));
  EXPECT_EQ(validate(big), errors::too_many_ops());
}

TEST(KV_SUITE(ValidateTest), NestedTxnsShareTheOpBudget) {
  TxnRequest inner;
  add_put(inner.mutable_success(), "a");
  add_put(inner.mutable_success(), "b");
  TxnRequest outer;
  *outer.add_success()->mutable_request_txn() = inner;
  add_put(outer.mutable_success(), "c");
  EXPECT_EQ(validate(outer, 4), std::nullopt);
  EXPECT_EQ(validate(outer, 3), errors::too_many_ops());  // 3 - 2 left for the inner txn's 2
}

TEST(KV_SUITE(ValidateTest), AnEmptyOpIsRefusedAsKeyNotFound) {
  TxnRequest t;
  t.add_success();
  EXPECT_EQ(validate(t), errors::key_not_found());
}

TEST(KV_SUITE(ValidateTest), TwoPutsOfOneKeyInABranchAreDuplicates) {
  TxnRequest t;
  add_put(t.mutable_success(), "k");
  add_put(t.mutable_success(), "k");
  EXPECT_EQ(validate(t), errors::duplicate_key());
}

TEST(KV_SUITE(ValidateTest), APutInsideADeletedRangeIsADuplicate) {
  TxnRequest t;
  add_del(t.mutable_success(), "a", "c");
  add_put(t.mutable_success(), "b");
  EXPECT_EQ(validate(t), errors::duplicate_key());
  TxnRequest point;
  add_del(point.mutable_failure(), "k");
  add_put(point.mutable_failure(), "k");
  EXPECT_EQ(validate(point), errors::duplicate_key());
  TxnRequest outside;
  add_del(outside.mutable_success(), "a", "c");
  add_put(outside.mutable_success(), "c");
  EXPECT_EQ(validate(outside), std::nullopt);
}

TEST(KV_SUITE(ValidateTest), WritesInDifferentBranchesDoNotConflict) {
  TxnRequest t;
  add_put(t.mutable_success(), "k");
  add_put(t.mutable_failure(), "k");
  EXPECT_EQ(validate(t), std::nullopt);
}

TEST(KV_SUITE(ValidateTest), NestedTxnPutsConflictWithTheOuterBranch) {
  TxnRequest outer;
  add_put(outer.mutable_success(), "k");
  add_put(outer.add_success()->mutable_request_txn()->mutable_success(), "k");
  EXPECT_EQ(validate(outer), errors::duplicate_key());
  TxnRequest deleted;
  add_del(deleted.mutable_success(), "a", "z");
  add_put(deleted.add_success()->mutable_request_txn()->mutable_failure(), "k");
  EXPECT_EQ(validate(deleted), errors::duplicate_key());
}

TEST(KV_SUITE(ValidateTest), NestedThenAndElseMayPutTheSameKey) {
  TxnRequest inner;
  add_put(inner.mutable_success(), "k");
  add_put(inner.mutable_failure(), "k");
  TxnRequest outer;
  *outer.add_success()->mutable_request_txn() = inner;
  EXPECT_EQ(validate(outer), std::nullopt);
}

}  // namespace
}  // namespace synod::kv
