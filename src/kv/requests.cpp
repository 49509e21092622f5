#include "kv/requests.h"

#include <cassert>
#include <vector>

#include "kv/range.h"

namespace synod::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;
using mvccpb::KeyValue;
using Ops = google::protobuf::RepeatedPtrField<RequestOp>;

template <typename T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

bool compare_kv(const Compare& c, const KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case Compare::VALUE:
      result = three_way(kv.value(), c.value());  // an unset target compares with ""
      break;
    case Compare::CREATE:
      result = three_way(kv.create_revision(), c.create_revision());
      break;
    case Compare::MOD:
      result = three_way(kv.mod_revision(), c.mod_revision());
      break;
    case Compare::VERSION:
      result = three_way(kv.version(), c.version());
      break;
    case Compare::LEASE:
      result = three_way(kv.lease(), c.lease());
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return true;  // etcd: an unknown result holds
  }
}

// A compare holds only if it holds for every key of its range. With no key, VALUE fails (no
// way to tell a missing value from an empty one) and the others compare a zero KeyValue.
bool compare_holds(const BatchView& view, const Compare& c) {
  std::vector<KeyValue> kvs =
      read_keys(view, c.key(), c.range_end(), std::nullopt, /*fetch_limit=*/0).kvs;
  if (kvs.empty()) return c.target() != Compare::VALUE && compare_kv(c, KeyValue());
  for (const KeyValue& kv : kvs) {
    if (!compare_kv(c, kv)) return false;
  }
  return true;
}

// etcd's txnPath: whether each txn on the executed path succeeded, in pre-order. All compares
// see the state before the txn, nested ones included.
void compare_path(const BatchView& view, const TxnRequest& req, std::vector<bool>& path) {
  bool ok = true;
  for (const Compare& c : req.compare()) {
    if (!compare_holds(view, c)) {
      ok = false;
      break;
    }
  }
  path.push_back(ok);
  for (const RequestOp& op : ok ? req.success() : req.failure()) {
    if (op.has_request_txn()) compare_path(view, op.request_txn(), path);
  }
}

// Walks the branches the path selects.
struct PathCursor {
  const std::vector<bool>& path;
  size_t next = 0;
  const Ops& branch(const TxnRequest& req) {
    assert(next < path.size());
    return path[next++] ? req.success() : req.failure();
  }
};

std::optional<Error> check_ops(const WriteTxn& txn, const TxnRequest& req, PathCursor& cursor,
                               ReadRevisions revs) {
  for (const RequestOp& op : cursor.branch(req)) {
    std::optional<Error> e;
    if (op.has_request_txn()) e = check_ops(txn, op.request_txn(), cursor, revs);
    if (op.has_request_put()) e = check_put(txn, op.request_put());
    if (op.has_request_range()) e = check_range_revision(op.request_range().revision(), revs);
    if (e) return e;
  }
  return std::nullopt;
}

void run_ops(WriteTxn& txn, const TxnRequest& req, PathCursor& cursor, int64_t compact_revision,
             TxnResponse& resp) {
  const Ops& ops = cursor.branch(req);
  resp.set_succeeded(cursor.path[cursor.next - 1]);
  for (const RequestOp& op : ops) {
    etcdserverpb::ResponseOp* out = resp.add_responses();
    switch (op.request_case()) {
      case RequestOp::kRequestRange: {
        ReadRevisions revs{txn.read_revision(), compact_revision};
        auto range = execute_range(txn.view(), op.request_range(), revs);
        assert(range.has_value());  // check_ops refused what could fail
        *out->mutable_response_range() = std::move(range).value();
        break;
      }
      case RequestOp::kRequestPut:
        *out->mutable_response_put() = apply_put(txn, op.request_put());
        break;
      case RequestOp::kRequestDeleteRange:
        *out->mutable_response_delete_range() = apply_delete_range(txn, op.request_delete_range());
        break;
      case RequestOp::kRequestTxn:
        // etcd leaves a nested txn's header empty.
        run_ops(txn, op.request_txn(), cursor, compact_revision, *out->mutable_response_txn());
        break;
      default:
        break;  // validate() refuses empty ops
    }
  }
}

}  // namespace

std::optional<Error> check_put(const WriteTxn& txn, const etcdserverpb::PutRequest& req) {
  if ((req.ignore_value() || req.ignore_lease()) && !txn.current(req.key())) {
    return errors::key_not_found();
  }
  if (req.lease() != 0 && !txn.lease_exists(req.lease())) return errors::lease_not_found();
  return std::nullopt;
}

etcdserverpb::PutResponse apply_put(WriteTxn& txn, const etcdserverpb::PutRequest& req) {
  etcdserverpb::PutResponse resp;
  std::optional<KeyValue> prev;
  if (req.ignore_value() || req.ignore_lease() || req.prev_kv()) prev = txn.current(req.key());
  assert(prev || !(req.ignore_value() || req.ignore_lease()));
  std::string value = req.ignore_value() ? prev->value() : req.value();
  int64_t lease = req.ignore_lease() ? prev->lease() : req.lease();
  if (req.prev_kv() && prev) *resp.mutable_prev_kv() = *prev;
  txn.put(req.key(), std::move(value), lease);
  resp.mutable_header()->set_revision(txn.end_revision());
  return resp;
}

etcdserverpb::DeleteRangeResponse apply_delete_range(WriteTxn& txn,
                                                     const etcdserverpb::DeleteRangeRequest& req) {
  etcdserverpb::DeleteRangeResponse resp;
  std::vector<KeyValue> deleted = txn.delete_range(req.key(), req.range_end());
  resp.set_deleted(static_cast<int64_t>(deleted.size()));
  if (req.prev_kv()) {
    for (KeyValue& kv : deleted) *resp.add_prev_kvs() = std::move(kv);
  }
  // etcd: a delete that removed nothing reports the txn's revision as it stands.
  resp.mutable_header()->set_revision(txn.read_revision());
  return resp;
}

bool compares_hold(const BatchView& view, const TxnRequest& req) {
  for (const Compare& c : req.compare()) {
    if (!compare_holds(view, c)) return false;
  }
  return true;
}

Expected<TxnResponse, Error> apply_txn(WriteTxn& txn, const TxnRequest& req,
                                       int64_t compact_revision) {
  assert(!txn.changed());
  std::vector<bool> path;
  compare_path(txn.view(), req, path);
  PathCursor check_cursor{path};
  ReadRevisions revs{txn.begin_revision(), compact_revision};
  if (std::optional<Error> e = check_ops(txn, req, check_cursor, revs)) return Unexpected{*e};

  TxnResponse resp;
  PathCursor run_cursor{path};
  run_ops(txn, req, run_cursor, compact_revision, resp);
  assert(run_cursor.next == path.size());
  resp.mutable_header()->set_revision(txn.end_revision());
  return resp;
}

}  // namespace synod::kv
