#include "kv/validate.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace synod::kv {
namespace {

using etcdserverpb::RequestOp;
using google::protobuf::RepeatedPtrField;
using Ops = RepeatedPtrField<RequestOp>;

std::optional<Error> validate_ops(const etcdserverpb::TxnRequest& req, int max_txn_ops);

std::optional<Error> validate_op(const RequestOp& op, int max_txn_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return validate(op.request_range());
    case RequestOp::kRequestPut:
      return validate(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return validate(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return validate_ops(op.request_txn(), max_txn_ops);
    default:
      return errors::key_not_found();  // etcd's answer to an empty op
  }
}

std::optional<Error> validate_ops(const etcdserverpb::TxnRequest& req, int max_txn_ops) {
  int ops = std::max({req.compare_size(), req.success_size(), req.failure_size()});
  if (ops > max_txn_ops) return errors::too_many_ops();
  for (const etcdserverpb::Compare& c : req.compare()) {
    if (c.key().empty()) return errors::empty_key();
  }
  for (const Ops* branch : {&req.success(), &req.failure()}) {
    for (const RequestOp& op : *branch) {
      if (std::optional<Error> e = validate_op(op, max_txn_ops - ops)) return e;
    }
  }
  return std::nullopt;
}

// Deleted intervals [begin, end); an empty end is unbounded. A deleted single key k is
// [k, k + "\0"). etcd passes range_end "\0" to its interval tree as a literal (an inverted
// interval that overlaps nothing); Synod treats it as "every key >= key", which it means.
struct Interval {
  std::string begin;
  std::string end;
};

bool intersects(const std::vector<Interval>& dels, const std::string& key) {
  return std::any_of(dels.begin(), dels.end(), [&](const Interval& iv) {
    return iv.begin <= key && (iv.end.empty() || key < iv.end);
  });
}

Interval delete_interval(const etcdserverpb::DeleteRangeRequest& d) {
  if (d.range_end().empty()) return {d.key(), d.key() + std::string(1, '\0')};
  if (d.range_end() == std::string(1, '\0')) return {d.key(), ""};
  return {d.key(), d.range_end()};
}

struct Writes {
  std::set<std::string> puts;
  std::vector<Interval> dels;
};

// etcd's checkIntervals: a put may not share a key with another put or a delete of the same
// branch, nested txns included; the two branches of a nested txn exclude each other, so the
// same key may be put in both.
std::optional<Error> check_intervals(const Ops& ops, Writes& out) {
  for (const RequestOp& op : ops) {
    if (op.has_request_delete_range())
      out.dels.push_back(delete_interval(op.request_delete_range()));
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_txn()) continue;
    Writes then_w, else_w;
    if (auto e = check_intervals(op.request_txn().success(), then_w)) return e;
    if (auto e = check_intervals(op.request_txn().failure(), else_w)) return e;
    for (const std::string& k : then_w.puts) {
      if (out.puts.count(k) || intersects(out.dels, k)) return errors::duplicate_key();
      out.puts.insert(k);
    }
    for (const std::string& k : else_w.puts) {
      if (out.puts.count(k) && !then_w.puts.count(k)) return errors::duplicate_key();
      if (intersects(out.dels, k)) return errors::duplicate_key();
      out.puts.insert(k);
    }
    out.dels.insert(out.dels.end(), then_w.dels.begin(), then_w.dels.end());
    out.dels.insert(out.dels.end(), else_w.dels.begin(), else_w.dels.end());
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_put()) continue;
    const std::string& k = op.request_put().key();
    if (out.puts.count(k) || intersects(out.dels, k)) return errors::duplicate_key();
    out.puts.insert(k);
  }
  return std::nullopt;
}

}  // namespace

std::optional<Error> validate(const etcdserverpb::RangeRequest& req) {
  if (req.key().empty()) return errors::empty_key();
  return std::nullopt;
}

std::optional<Error> validate(const etcdserverpb::PutRequest& req) {
  if (req.key().empty()) return errors::empty_key();
  if (req.ignore_value() && !req.value().empty()) return errors::value_provided();
  if (req.ignore_lease() && req.lease() != 0) return errors::lease_provided();
  return std::nullopt;
}

std::optional<Error> validate(const etcdserverpb::DeleteRangeRequest& req) {
  if (req.key().empty()) return errors::empty_key();
  return std::nullopt;
}

std::optional<Error> validate(const etcdserverpb::TxnRequest& req, int max_txn_ops) {
  if (std::optional<Error> e = validate_ops(req, max_txn_ops)) return e;
  // Interval checks come after the op checks, as in etcd, to bound their cost.
  for (const Ops* branch : {&req.success(), &req.failure()}) {
    Writes writes;
    if (std::optional<Error> e = check_intervals(*branch, writes)) return e;
  }
  return std::nullopt;
}

}  // namespace synod::kv
