// kv::Store's part in cross-shard transactions: a participant's prepare (locks and its vote),
// its precommit (three-phase commit only), the coordinator group's decision, a participant's
// resolve (the chosen branch, the locks released), and the refusal of ordinary requests that
// touch a held key. Two- or three-phase commit with the decision durable in a replicated group
// (docs/transactions.md); every step is a log entry, applied deterministically, and idempotent:
// the same step applied again returns what it returned the first time.
#include <algorithm>
#include <cassert>

#include "kv/batch_view.h"
#include "kv/keys.h"
#include "kv/records.h"
#include "kv/requests.h"
#include "kv/store.h"
#include "kv/validate.h"

namespace synod::kv {

namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

std::string row(char table, std::string_view id) {
  std::string key(1, table);
  key += id;
  return key;
}

// The keys a transaction's part touches, if it has the shape a part may have: single keys
// (no range_end), no nested txn, no lease on a put (nothing that could fail when the branch
// runs at resolve, long after the vote), no range at a past revision.
bool part_keys(const TxnRequest& part, std::vector<std::string>& keys) {
  for (const etcdserverpb::Compare& c : part.compare()) {
    if (!c.range_end().empty()) return false;
    keys.push_back(c.key());
  }
  for (const auto* branch : {&part.success(), &part.failure()}) {
    for (const RequestOp& op : *branch) {
      switch (op.request_case()) {
        case RequestOp::kRequestRange:
          if (!op.request_range().range_end().empty() || op.request_range().revision() != 0) {
            return false;
          }
          keys.push_back(op.request_range().key());
          break;
        case RequestOp::kRequestPut: {
          const etcdserverpb::PutRequest& put = op.request_put();
          if (put.lease() != 0 || put.ignore_lease() || put.ignore_value()) return false;
          keys.push_back(put.key());
          break;
        }
        case RequestOp::kRequestDeleteRange:
          if (!op.request_delete_range().range_end().empty()) return false;
          keys.push_back(op.request_delete_range().key());
          break;
        default:
          return false;
      }
    }
  }
  return true;
}

TxnDecided decided(const synodpb::TxnDecision& d) {
  return TxnDecided{d.commit(), d.commit() && d.succeeded(), {}};
}

}  // namespace

void Store::load_locks() {
  locks_.clear();
  const keys::Bounds table = keys::table(keys::kLock);
  backend_.scan(table.begin, table.end, [&](std::string_view k, std::string_view v) {
    locks_.emplace(std::string(k.substr(1)), std::string(v));
    return true;
  });
}

std::vector<synodpb::TxnIntent> Store::intents() const {
  std::vector<synodpb::TxnIntent> out;
  const keys::Bounds table = keys::table(keys::kIntent);
  backend_.scan(table.begin, table.end, [&](std::string_view, std::string_view v) {
    synodpb::TxnIntent intent;
    if (!intent.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      records::corrupted("transaction intent");
    }
    out.push_back(std::move(intent));
    return true;
  });
  return out;
}

std::optional<TxnDecided> Store::decision(std::string_view txn) const {
  const std::optional<std::string> bytes = backend_.get(row(keys::kTxnDecision, txn));
  if (!bytes) return std::nullopt;
  synodpb::TxnDecision d;
  if (!d.ParseFromString(*bytes)) records::corrupted("transaction decision");
  return decided(d);
}

ApplyResult::Outcome Store::apply_txn_prepare(const synodpb::TxnPrepare& req, WriteTxn& txn) {
  if (req.txn().empty()) return errors::bad_transaction_part();
  // Resolved here before its prepare arrived (a resolver aborted it): it cannot prepare now.
  if (backend_.get(row(keys::kTxnOutcome, req.txn()))) {
    return TxnVote{false, false, "the transaction was resolved here before it prepared"};
  }
  // Prepared already: the same vote again.
  if (const std::optional<std::string> bytes = backend_.get(row(keys::kIntent, req.txn()))) {
    synodpb::TxnIntent intent;
    if (!intent.ParseFromString(*bytes)) records::corrupted("transaction intent");
    return TxnVote{true, intent.compares_hold(), {}};
  }
  if (auto e = validate(req.part())) return *e;
  std::vector<std::string> keys;
  // At least one key: a prepared transaction always holds some (locks() tells whether any is).
  if (!part_keys(req.part(), keys) || keys.empty()) return errors::bad_transaction_part();
  for (const std::string& key : keys) {
    auto it = locks_.find(key);
    if (it != locks_.end() && it->second != req.txn()) {
      return TxnVote{false, false, "a key is held by another transaction"};
    }
  }
  synodpb::TxnIntent intent;
  *intent.mutable_prepare() = req;
  intent.set_compares_hold(compares_hold(txn.view(), req.part()));
  txn.view().put(row(keys::kIntent, req.txn()), intent.SerializeAsString());
  for (const std::string& key : keys) {
    txn.view().put(row(keys::kLock, key), req.txn());
    lock_changes_.emplace_back(key, req.txn());
  }
  return TxnVote{true, intent.compares_hold(), {}};
}

ApplyResult::Outcome Store::apply_txn_decide(const synodpb::TxnDecision& req, WriteTxn& txn) {
  if (req.txn().empty()) return errors::bad_transaction_part();
  if (std::optional<TxnDecided> stands = decision(req.txn())) return *stands;
  txn.view().put(row(keys::kTxnDecision, req.txn()), req.SerializeAsString());
  return decided(req);
}

ApplyResult::Outcome Store::apply_txn_resolve(const synodpb::TxnDecision& req, WriteTxn& txn) {
  if (req.txn().empty()) return errors::bad_transaction_part();
  const std::string outcome_row = row(keys::kTxnOutcome, req.txn());
  if (const std::optional<std::string> bytes = backend_.get(outcome_row)) {
    synodpb::TxnDecision done;
    if (!done.ParseFromString(*bytes)) records::corrupted("transaction outcome");
    return decided(done);  // carried out before
  }
  TxnDecided out = decided(req);
  const std::string intent_row = row(keys::kIntent, req.txn());
  if (const std::optional<std::string> bytes = backend_.get(intent_row)) {
    synodpb::TxnIntent intent;
    if (!intent.ParseFromString(*bytes)) records::corrupted("transaction intent");
    const TxnRequest& part = intent.prepare().part();
    std::vector<std::string> keys;
    const bool shaped = part_keys(part, keys);
    assert(shaped);
    (void)shaped;
    if (req.commit()) {
      // The branch every participant's compares chose, run on this group's keys: its ops
      // cannot fail (part_keys' shape).
      TxnRequest branch;
      *branch.mutable_success() = req.succeeded() ? part.success() : part.failure();
      auto resp = apply_txn(txn, branch, compact_revision_);
      assert(resp);
      if (resp) out.response = std::move(resp).value();
    }
    txn.view().del(intent_row);
    for (const std::string& key : keys) {
      txn.view().del(row(keys::kLock, key));
      lock_changes_.emplace_back(key, std::nullopt);
    }
  }
  txn.view().put(outcome_row, req.SerializeAsString());
  return out;
}

ApplyResult::Outcome Store::apply_txn_precommit(const synodpb::TxnDecision& req, WriteTxn& txn) {
  if (req.txn().empty() || !req.commit()) return errors::bad_transaction_part();
  // Settled here already (a resolver may have aborted it): the outcome, not a precommit.
  if (const std::optional<std::string> bytes = backend_.get(row(keys::kTxnOutcome, req.txn()))) {
    synodpb::TxnDecision done;
    if (!done.ParseFromString(*bytes)) records::corrupted("transaction outcome");
    return decided(done);
  }
  const std::string intent_row = row(keys::kIntent, req.txn());
  const std::optional<std::string> bytes = backend_.get(intent_row);
  if (!bytes) return errors::bad_transaction_part();  // never prepared here
  synodpb::TxnIntent intent;
  if (!intent.ParseFromString(*bytes)) records::corrupted("transaction intent");
  if (!intent.precommitted()) {
    intent.set_precommitted(true);
    intent.set_succeeded(req.succeeded());
    txn.view().put(intent_row, intent.SerializeAsString());
  }
  return TxnDecided{true, intent.succeeded(), {}};
}

std::vector<std::string> Store::settled_txns(int64_t before_ms, size_t max) const {
  std::vector<std::string> out;
  for (char table : {keys::kTxnOutcome}) {
    const keys::Bounds bounds = keys::table(table);
    backend_.scan(bounds.begin, bounds.end, [&](std::string_view k, std::string_view v) {
      if (out.size() >= max) return false;
      synodpb::TxnDecision d;
      if (!d.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
        records::corrupted("transaction record");
      }
      const std::string id(k.substr(1));
      // A record with no time (made before records carried one) is never forgotten.
      if (d.at() <= 0 || d.at() >= before_ms) return true;
      if (backend_.get(row(keys::kIntent, id))) return true;  // still prepared here
      if (out.empty() || out.back() != id) out.push_back(id);
      return true;
    });
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

ApplyResult::Outcome Store::apply_txn_forget(const synodpb::TxnForget& req, WriteTxn& txn) {
  for (const std::string& id : req.txns()) {
    if (id.empty()) return errors::bad_transaction_part();
  }
  for (const std::string& id : req.txns()) {
    if (backend_.get(row(keys::kIntent, id))) continue;  // prepared (again) since: kept
    txn.view().del(row(keys::kTxnOutcome, id));
  }
  return std::monostate{};
}

bool Store::range_locked(std::string_view key, std::string_view range_end) const {
  if (range_end.empty()) return locks_.contains(key);
  auto it = locks_.lower_bound(key);
  if (it == locks_.end()) return false;
  if (range_end == std::string_view("\0", 1)) return true;  // from key on
  return it->first < range_end;
}

bool Store::ops_locked(const TxnRequest& t) const {
  for (const etcdserverpb::Compare& c : t.compare()) {
    if (range_locked(c.key(), c.range_end())) return true;
  }
  for (const auto* branch : {&t.success(), &t.failure()}) {
    for (const RequestOp& op : *branch) {
      switch (op.request_case()) {
        case RequestOp::kRequestRange:
          if (range_locked(op.request_range().key(), op.request_range().range_end())) return true;
          break;
        case RequestOp::kRequestPut:
          if (locks_.contains(op.request_put().key())) return true;
          break;
        case RequestOp::kRequestDeleteRange:
          if (range_locked(op.request_delete_range().key(),
                           op.request_delete_range().range_end())) {
            return true;
          }
          break;
        case RequestOp::kRequestTxn:
          if (ops_locked(op.request_txn())) return true;
          break;
        default:
          break;
      }
    }
  }
  return false;
}

std::optional<Error> Store::check_locks(const synodpb::Request& req) const {
  bool locked = false;
  switch (req.op_case()) {
    case synodpb::Request::kPut:
      locked = locks_.contains(req.put().key());
      break;
    case synodpb::Request::kDeleteRange:
      locked = range_locked(req.delete_range().key(), req.delete_range().range_end());
      break;
    case synodpb::Request::kTxn:
      locked = ops_locked(req.txn());
      break;
    case synodpb::Request::kFencedPut:
      locked = locks_.contains(req.fenced_put().put().key());
      break;
    case synodpb::Request::kFencedTxn:
      locked = ops_locked(req.fenced_txn().txn());
      break;
    case synodpb::Request::kLeaseRevoke: {
      // Revoking deletes the lease's keys.
      auto it = lease_keys_.find(req.lease_revoke().id());
      if (it == lease_keys_.end()) break;
      for (const std::string& key : it->second) locked = locked || locks_.contains(key);
      break;
    }
    default:
      break;
  }
  if (locked) return errors::locked_by_transaction();
  return std::nullopt;
}

}  // namespace synod::kv
