// kv::Store's part in cross-shard transactions: a participant's prepare (locks and its vote),
// its precommit (three-phase commit only), the coordinator group's decision, a participant's
// resolve (the chosen branch, the locks released), and the refusal of ordinary requests that
// touch a held key. Two- or three-phase commit with the decision durable in a replicated group
// (docs/transactions.md); every step is a log entry, applied deterministically, and idempotent:
// the same step applied again returns what it returned the first time.
#include <algorithm>
#include <cassert>
#include <limits>

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

// What a transaction's part holds while it is prepared, if the part has the shape a part may
// have: no nested txn, no compare over a range, no range at a past revision, no put that ignores
// its value or lease (nothing that could fail when the branch runs at resolve, long after the
// vote). Single keys are held exclusively; a range read holds its range against writes, a range
// delete against everything; a put's lease is pinned (its revoke waits for the resolve).
bool part_locks(const TxnRequest& part, PartLocks& out) {
  for (const etcdserverpb::Compare& c : part.compare()) {
    if (!c.range_end().empty()) return false;
    out.keys.push_back(c.key());
  }
  for (const auto* branch : {&part.success(), &part.failure()}) {
    for (const RequestOp& op : *branch) {
      switch (op.request_case()) {
        case RequestOp::kRequestRange: {
          const etcdserverpb::RangeRequest& r = op.request_range();
          if (r.revision() != 0) return false;
          if (r.range_end().empty()) {
            out.keys.push_back(r.key());
          } else {
            out.ranges.push_back({r.key(), r.range_end(), false});
          }
          break;
        }
        case RequestOp::kRequestPut: {
          const etcdserverpb::PutRequest& put = op.request_put();
          if (put.ignore_lease() || put.ignore_value()) return false;
          out.keys.push_back(put.key());
          if (put.lease() != 0) out.leases.push_back(put.lease());
          break;
        }
        case RequestOp::kRequestDeleteRange: {
          const etcdserverpb::DeleteRangeRequest& d = op.request_delete_range();
          if (d.range_end().empty()) {
            out.keys.push_back(d.key());
          } else {
            out.ranges.push_back({d.key(), d.range_end(), true});
          }
          break;
        }
        default:
          return false;
      }
    }
  }
  return true;
}

// Whether [begin, end) (etcd's range_end: "\0" means every key from begin on) holds `key`.
bool span_holds(std::string_view begin, std::string_view end, std::string_view key) {
  if (key < begin) return false;
  return end == std::string_view("\0", 1) || key < end;
}

// Whether two ranges in etcd's form share a key.
bool spans_meet(std::string_view b1, std::string_view e1, std::string_view b2,
                std::string_view e2) {
  const std::string_view open("\0", 1);
  const bool below1 = e1 == open || b2 < e1;  // b2 lies below range 1's end
  const bool below2 = e2 == open || b1 < e2;
  return below1 && below2;
}

TxnDecided decided(const synodpb::TxnDecision& d) {
  return TxnDecided{
      d.commit(), d.commit() && d.succeeded(), {}, d.commit() ? d.commit_revision() : 0};
}

}  // namespace

void Store::load_locks() {
  locks_.clear();
  const keys::Bounds table = keys::table(keys::kLock);
  backend_.scan(table.begin, table.end, [&](std::string_view k, std::string_view v) {
    locks_.emplace(std::string(k.substr(1)), std::string(v));
    return true;
  });
  range_locks_.clear();
  lease_pins_.clear();
  prepare_revisions_.clear();
  for (const synodpb::TxnIntent& intent : intents()) {
    PartLocks holds;
    if (!part_locks(intent.prepare().part(), holds)) records::corrupted("transaction intent");
    holds.prepare_revision = intent.prepare_revision();
    hold_changes_.emplace_back(intent.prepare().txn(), std::move(holds), true);
  }
  apply_hold_changes();
}

int64_t Store::lowest_prepare_revision() const {
  int64_t lowest = std::numeric_limits<int64_t>::max();
  for (const auto& [txn, revision] : prepare_revisions_) lowest = std::min(lowest, revision);
  return lowest;
}

void Store::apply_hold_changes() {
  for (auto& [id, holds, added] : hold_changes_) {
    if (added && holds.prepare_revision > 0) prepare_revisions_[id] = holds.prepare_revision;
    if (!added) prepare_revisions_.erase(id);
    if (added) {
      for (HeldRange& r : holds.ranges) range_locks_.push_back({std::move(r), id});
      for (int64_t lease : holds.leases) ++lease_pins_[lease];
      continue;
    }
    std::erase_if(range_locks_, [&](const RangeHold& h) { return h.txn == id; });
    for (int64_t lease : holds.leases) {
      auto it = lease_pins_.find(lease);
      if (it != lease_pins_.end() && --it->second == 0) lease_pins_.erase(it);
    }
  }
  hold_changes_.clear();
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
    return TxnVote{true, intent.compares_hold(), {}, intent.prepare_revision()};
  }
  if (auto e = validate(req.part())) return *e;
  PartLocks holds;
  // At least one key or range: a prepared transaction always holds some (holding()).
  if (!part_locks(req.part(), holds) || (holds.keys.empty() && holds.ranges.empty())) {
    return errors::bad_transaction_part();
  }
  // No-wait: anything another transaction holds that this part would hold refuses the vote.
  auto other = [&](const std::string& holder) { return holder != req.txn(); };
  for (const std::string& key : holds.keys) {
    auto it = locks_.find(key);
    if (it != locks_.end() && other(it->second)) {
      return TxnVote{false, false, "a key is held by another transaction"};
    }
    for (const RangeHold& h : range_locks_) {
      if (other(h.txn) && span_holds(h.range.begin, h.range.end, key)) {
        return TxnVote{false, false, "a key is in a range held by another transaction"};
      }
    }
  }
  for (const HeldRange& r : holds.ranges) {
    for (auto it = locks_.lower_bound(r.begin);
         it != locks_.end() && span_holds(r.begin, r.end, it->first); ++it) {
      if (other(it->second)) return TxnVote{false, false, "a key is held by another transaction"};
    }
    for (const RangeHold& h : range_locks_) {
      if (other(h.txn) && spans_meet(r.begin, r.end, h.range.begin, h.range.end)) {
        return TxnVote{false, false, "a range is held by another transaction"};
      }
    }
  }
  // A put's lease must be there when the branch runs; pinned from here on, it will be.
  for (int64_t lease : holds.leases) {
    if (!txn.lease_exists(lease)) return errors::lease_not_found();
  }
  synodpb::TxnIntent intent;
  *intent.mutable_prepare() = req;
  intent.set_compares_hold(compares_hold(txn.view(), req.part()));
  if (txn.stamped()) {
    // The prepare takes its stamp as a revision of its own, with nothing written at it: every
    // later entry here is above it, and the part's writes go at or above it. (A stamp the
    // group has passed is no revision of its own: the vote then has none, and the parts
    // write at their groups' revisions.)
    txn.advance();
    intent.set_prepare_revision(txn.end_revision());
    holds.prepare_revision = txn.end_revision();
  }
  txn.view().put(row(keys::kIntent, req.txn()), intent.SerializeAsString());
  for (const std::string& key : holds.keys) {
    txn.view().put(row(keys::kLock, key), req.txn());
    lock_changes_.emplace_back(key, req.txn());
  }
  hold_changes_.emplace_back(req.txn(), std::move(holds), true);
  return TxnVote{true, intent.compares_hold(), {}, intent.prepare_revision()};
}

ApplyResult::Outcome Store::apply_txn_decide(const synodpb::TxnDecision& req, WriteTxn& txn) {
  if (req.txn().empty()) return errors::bad_transaction_part();
  // The first decision stands.
  synodpb::TxnDecision stands = req;
  if (const std::optional<std::string> bytes = backend_.get(row(keys::kTxnDecision, req.txn()))) {
    if (!stands.ParseFromString(*bytes)) records::corrupted("transaction decision");
  } else {
    stands.clear_resolve_here();
    txn.view().put(row(keys::kTxnDecision, req.txn()), stands.SerializeAsString());
  }
  if (!req.resolve_here()) return decided(stands);
  // This group's part, carried out with the decision that stands: after the decision is
  // recorded, in the same entry, so never before it is durable.
  stands.set_at(req.at());
  return apply_txn_resolve(stands, txn);
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
    PartLocks holds;
    const bool shaped = part_locks(part, holds);
    assert(shaped);
    (void)shaped;
    if (req.commit()) {
      // The branch every participant's compares chose, run on this group's keys: its ops
      // cannot fail (part_locks' shape; its leases pinned since the prepare). At the decision's
      // commit revision, if it has one: no write here since the prepare touched these keys,
      // so each key's versions still rise.
      if (req.commit_revision() > 0 && req.commit_revision() >= intent.prepare_revision() &&
          intent.prepare_revision() > 0) {
        txn.write_at(req.commit_revision());
      }
      TxnRequest branch;
      *branch.mutable_success() = req.succeeded() ? part.success() : part.failure();
      auto resp = apply_txn(txn, branch, compact_revision_);
      assert(resp);
      if (resp) out.response = std::move(resp).value();
    }
    txn.view().del(intent_row);
    for (const std::string& key : holds.keys) {
      txn.view().del(row(keys::kLock, key));
      lock_changes_.emplace_back(key, std::nullopt);
    }
    hold_changes_.emplace_back(req.txn(), std::move(holds), false);
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
    intent.set_commit_revision(req.commit_revision());
    txn.view().put(intent_row, intent.SerializeAsString());
  }
  return TxnDecided{true, intent.succeeded(), {}, intent.commit_revision()};
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
  for (const auto* ids : {&req.txns(), &req.decisions()}) {
    for (const std::string& id : *ids) {
      if (id.empty()) return errors::bad_transaction_part();
    }
  }
  for (const std::string& id : req.txns()) {
    if (backend_.get(row(keys::kIntent, id))) continue;  // prepared (again) since: kept
    txn.view().del(row(keys::kTxnOutcome, id));
  }
  for (const std::string& id : req.decisions()) {
    if (backend_.get(row(keys::kIntent, id))) continue;  // this group's own part still held
    txn.view().del(row(keys::kTxnDecision, id));
  }
  return std::monostate{};
}

bool Store::held(std::string_view key, std::string_view range_end, bool writing) const {
  if (range_end.empty()) {
    if (locks_.contains(key)) return true;
  } else {
    auto it = locks_.lower_bound(key);
    if (it != locks_.end() && span_holds(key, range_end, it->first)) return true;
  }
  for (const RangeHold& h : range_locks_) {
    if (!writing && !h.range.write) continue;  // a read's range: other reads go on
    const bool meets = range_end.empty() ? span_holds(h.range.begin, h.range.end, key)
                                         : spans_meet(key, range_end, h.range.begin, h.range.end);
    if (meets) return true;
  }
  return false;
}

bool Store::ops_locked(const TxnRequest& t) const {
  for (const etcdserverpb::Compare& c : t.compare()) {
    if (held(c.key(), c.range_end(), false)) return true;
  }
  for (const auto* branch : {&t.success(), &t.failure()}) {
    for (const RequestOp& op : *branch) {
      switch (op.request_case()) {
        case RequestOp::kRequestRange:
          if (held(op.request_range().key(), op.request_range().range_end(), false)) return true;
          break;
        case RequestOp::kRequestPut:
          if (held(op.request_put().key(), "", true)) return true;
          break;
        case RequestOp::kRequestDeleteRange:
          if (held(op.request_delete_range().key(), op.request_delete_range().range_end(), true)) {
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
      locked = held(req.put().key(), "", true);
      break;
    case synodpb::Request::kDeleteRange:
      locked = held(req.delete_range().key(), req.delete_range().range_end(), true);
      break;
    case synodpb::Request::kTxn:
      locked = ops_locked(req.txn());
      break;
    case synodpb::Request::kFencedPut:
      locked = held(req.fenced_put().put().key(), "", true);
      break;
    case synodpb::Request::kFencedTxn:
      locked = ops_locked(req.fenced_txn().txn());
      break;
    case synodpb::Request::kLeaseRevoke: {
      // Revoking deletes the lease's keys; a prepared put may attach one more.
      locked = lease_pins_.contains(req.lease_revoke().id());
      auto it = lease_keys_.find(req.lease_revoke().id());
      if (it == lease_keys_.end()) break;
      for (const std::string& key : it->second) locked = locked || held(key, "", true);
      break;
    }
    default:
      break;
  }
  if (locked) return errors::locked_by_transaction();
  return std::nullopt;
}

}  // namespace synod::kv
