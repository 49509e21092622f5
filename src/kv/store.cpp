#include "kv/store.h"

#include <algorithm>
#include <cassert>
#include <functional>
#include <map>
#include <set>

#include "kv/compaction.h"
#include "kv/crc32c.h"
#include "kv/image.h"
#include "kv/keys.h"
#include "kv/mem_backend.h"
#include "kv/range.h"
#include "kv/records.h"
#include "kv/requests.h"
#include "kv/sessions.h"
#include "kv/write_txn.h"

namespace synod::kv {
namespace {

std::optional<uint64_t> read_u64(const Store::Lookup& lookup, std::string_view key,
                                 bool& malformed) {
  std::optional<std::string> bytes = lookup(key);
  if (!bytes) return std::nullopt;
  std::optional<uint64_t> v = keys::decode_u64(*bytes);
  if (!v) malformed = true;
  return v;
}

Store::Lookup lookup_in(const std::map<std::string, std::string, std::less<>>& map) {
  return [&map](std::string_view key) -> std::optional<std::string> {
    auto it = map.find(key);
    if (it == map.end()) return std::nullopt;
    return it->second;
  };
}

template <typename Message>
bool parses(std::string_view bytes) {
  Message m;
  return m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

// A revision a store can hold: revisions start at 1, and keys order revisions as unsigned
// numbers, which matches their order only when both parts are non-negative.
bool valid_revision(const keys::Revision& rev, int64_t revision) {
  return rev.main >= 1 && rev.sub >= 0 && rev.main <= revision;
}

// Why an image's records could not be a store's, or nullopt. The store trusts its own tables
// (records::corrupted stops the member on a bad one: that is a broken disk), but an image comes
// from a peer, so everything load() and the reads decode is checked here before it replaces
// anything.
std::optional<std::string> image_defect(const ImageEntries& entries, int64_t revision,
                                        int64_t compact_revision) {
  std::set<std::string_view> history_keys;
  for (const auto& [k, v] : entries)
    if (k[0] == keys::kHistory) history_keys.insert(k);
  MemBackend auth_tables;
  WriteBatch auth_batch;
  for (const auto& [k, v] : entries) {
    switch (k[0]) {
      case keys::kCurrent:
        if (!parses<mvccpb::KeyValue>(v)) return "current key value";
        break;
      case keys::kHistory: {
        const std::optional<keys::HistoryKey> parsed = keys::parse_history(k);
        if (!parsed || !valid_revision(parsed->rev, revision)) return "history key";
        if (v.empty() || (v[0] != records::kPutTag && v[0] != records::kDeleteTag) ||
            !parses<mvccpb::KeyValue>(std::string_view(v).substr(1))) {
          return "history value";
        }
        break;
      }
      case keys::kRevLog: {
        // Compaction drops the log up to the compacted revision.
        const std::optional<keys::Revision> rev = keys::parse_rev_log(k);
        if (!rev || !valid_revision(*rev, revision) || rev->main <= compact_revision)
          return "revision log key";
        if (!history_keys.contains(keys::history(v, *rev)))
          return "revision log entry without history";
        break;
      }
      case keys::kLease:
        if (!parses<synodpb::Lease>(v)) return "lease";
        break;
      case keys::kMember:
        if (!parses<synodpb::Member>(v)) return "member";
        break;
      case keys::kMeta:
        if ((k == keys::kMetaLessorEpoch || k == keys::kMetaCutEpoch) && !keys::decode_u64(v)) {
          return "epoch";
        }
        break;
      case keys::kAuth:
        auth_batch.put(k, v);
        break;
      case keys::kSession:
        if (!SessionWindow::decode(v)) return "client session";
        break;
      case keys::kIntent:
        if (!parses<synodpb::TxnIntent>(v)) return "transaction intent";
        break;
      case keys::kLock:
        if (v.empty() || k.size() < 2) return "transaction lock";
        break;
      case keys::kTxnOutcome:
      case keys::kTxnDecision:
        if (!parses<synodpb::TxnDecision>(v)) return "transaction decision";
        break;
      default:
        return "unknown table";
    }
  }
  auth_tables.write(std::move(auth_batch));
  std::string why;
  if (!AuthStore::decode(auth_tables, &why)) return why;
  return std::nullopt;
}

std::string encode_i64(int64_t v) {
  return keys::encode_u64(static_cast<uint64_t>(v));
}

}  // namespace

Store::Store(Backend& backend, int max_txn_ops) : backend_(backend), max_txn_ops_(max_txn_ops) {
  assert(max_txn_ops > 0);
  load();
}

std::optional<Store::Meta> Store::parse_meta(const Lookup& lookup) {
  bool malformed = false;
  Meta meta;
  if (auto v = read_u64(lookup, keys::kMetaAppliedIndex, malformed)) meta.applied_index = *v;
  if (auto v = read_u64(lookup, keys::kMetaRevision, malformed)) {
    meta.revision = static_cast<int64_t>(*v);
  }
  if (auto v = read_u64(lookup, keys::kMetaCompactRevision, malformed)) {
    meta.compact_revision = static_cast<int64_t>(*v);
  }
  // Compacted: never (-1), or at a revision the store has reached.
  if (malformed || meta.revision < 1 ||
      (meta.compact_revision != -1 &&
       (meta.compact_revision < 1 || meta.compact_revision > meta.revision))) {
    return std::nullopt;
  }
  return meta;
}

void Store::load() {
  std::optional<Meta> meta = parse_meta([this](std::string_view key) { return backend_.get(key); });
  if (!meta) records::corrupted("store metadata");
  applied_index_ = meta->applied_index;
  revision_ = meta->revision;
  compact_revision_ = meta->compact_revision;
  cut_epoch_ = 0;
  if (std::optional<std::string> v = backend_.get(keys::kMetaCutEpoch)) {
    std::optional<uint64_t> epoch = keys::decode_u64(*v);
    if (!epoch) records::corrupted("cut epoch");
    cut_epoch_ = *epoch;
  }
  auth_ = AuthStore::load(backend_);
  rebuild_index();
  load_locks();
  check_invariants();
}

void Store::rebuild_index() {
  index_.clear();
  lease_keys_.clear();
  const keys::Bounds table = keys::table(keys::kCurrent);
  backend_.scan(table.begin, table.end, [&](std::string_view k, std::string_view v) {
    const std::string_view user_key = k.substr(1);
    const mvccpb::KeyValue kv = records::decode_kv(user_key, v);
    if (kv.lease() != 0) lease_keys_[kv.lease()].insert(std::string(user_key));
    index_.set(user_key,
               KeyMeta{kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()});
    return true;
  });
}

void Store::check_invariants() const {
  assert(revision_ >= 1);
  assert(compact_revision_ == -1 || (compact_revision_ >= 1 && compact_revision_ <= revision_));
}

uint64_t Store::session_highest(std::string_view client) const {
  std::string key(1, keys::kSession);
  key += client;
  const std::optional<std::string> bytes = backend_.get(key);
  if (!bytes) return 0;
  const std::optional<SessionWindow> w = SessionWindow::decode(*bytes);
  return w ? w->highest() : 0;
}

ApplyResult Store::apply(uint64_t raft_index, const synodpb::Request& req,
                         std::vector<mvccpb::Event>* events, const ClientStamp* once) {
  if (raft_index <= applied_index_) {
    return ApplyResult{.skipped = true, .outcome = {}, .cut_epoch = cut_epoch_};
  }
  // A consistent cut (Chandy and Lamport's marker, Lai and Yang's rule for a message sent after
  // its sender's cut): the state before this entry is recorded once per cut, and the epoch
  // moves on in the same write as the entry.
  std::optional<CutRecord> cut;
  const uint64_t wanted = std::max(req.cut_epoch(), req.has_cut_marker() ? req.cut_marker() : 0);
  if (wanted > cut_epoch_) cut = CutRecord{wanted, revision_, image()};
  std::optional<std::pair<std::string, std::string>> session;
  if (once != nullptr) {
    std::string key(1, keys::kSession);
    key += once->client;
    const std::optional<std::string> bytes = backend_.get(key);
    std::optional<SessionWindow> w = bytes ? SessionWindow::decode(*bytes) : SessionWindow();
    if (!w) records::corrupted("client session");
    if (!w->admit(once->timestamp)) {
      advance_applied(raft_index);
      return ApplyResult{
          .skipped = false, .duplicate = true, .outcome = {}, .cut_epoch = cut_epoch_};
    }
    session.emplace(std::move(key), w->encode());
  }
  WriteTxn txn(backend_, revision_, &index_, req.revision_stamp());
  const size_t events_before = events != nullptr ? events->size() : 0;
  txn.record_events(events);
  int64_t compact_revision = compact_revision_;
  lock_changes_.clear();
  hold_changes_.clear();
  ApplyResult result{.skipped = false, .outcome = execute(req, txn, compact_revision)};
  assert(!result.error() || (lock_changes_.empty() && hold_changes_.empty()));
  // A refused request writes nothing but still consumes its log index.
  assert(!result.error() || (txn.view().empty() && compact_revision == compact_revision_));
  if (result.error() && events != nullptr) events->resize(events_before);
  txn.view().put(std::string(keys::kMetaAppliedIndex), keys::encode_u64(raft_index));
  if (session) txn.view().put(std::move(session->first), std::move(session->second));
  if (cut) txn.view().put(std::string(keys::kMetaCutEpoch), keys::encode_u64(cut->epoch));
  if (txn.changed()) {
    txn.view().put(std::string(keys::kMetaRevision), encode_i64(txn.end_revision()));
  }
  backend_.write(txn.view().take_batch());
  for (const auto& [key, meta] : txn.index_changes()) {
    const KeyMeta* old = index_.find(key);
    const int64_t old_lease = old != nullptr ? old->lease : 0;
    const int64_t new_lease = meta ? meta->lease : 0;
    if (old_lease != new_lease) {
      if (old_lease != 0) {
        auto it = lease_keys_.find(old_lease);
        if (it != lease_keys_.end()) {
          it->second.erase(key);
          if (it->second.empty()) lease_keys_.erase(it);
        }
      }
      if (new_lease != 0) lease_keys_[new_lease].insert(key);
    }
    if (meta) {
      index_.set(key, *meta);
    } else {
      index_.erase(key);
    }
  }
  for (auto& [key, holder] : lock_changes_) {
    if (holder) {
      locks_[key] = std::move(*holder);
    } else {
      locks_.erase(key);
    }
  }
  lock_changes_.clear();
  apply_hold_changes();
  applied_index_ = raft_index;
  revision_ = txn.end_revision();
  compact_revision_ = compact_revision;
  if (cut) cut_epoch_ = cut->epoch;
  result.cut_epoch = cut_epoch_;
  result.cut = std::move(cut);
  check_invariants();
  return result;
}

bool Store::advance_applied(uint64_t raft_index) {
  if (raft_index <= applied_index_) return false;
  WriteBatch batch;
  batch.put(std::string(keys::kMetaAppliedIndex), keys::encode_u64(raft_index));
  backend_.write(std::move(batch));
  applied_index_ = raft_index;
  return true;
}

ApplyResult::Outcome Store::execute(const synodpb::Request& req, WriteTxn& txn,
                                    int64_t& compact_revision) {
  if (auto e = authorize(req)) return *e;
  if (holding()) {
    if (auto e = check_locks(req)) return *e;
  }
  switch (req.op_case()) {
    case synodpb::Request::kPut: {
      const etcdserverpb::PutRequest& put = req.put();
      if (auto e = validate(put)) return *e;
      // Top-level puts check the lease first (etcd's applierV3backend.Put).
      if (put.lease() != 0 && !txn.lease_exists(put.lease())) return errors::lease_not_found();
      if (auto e = check_put(txn, put)) return *e;
      return apply_put(txn, put);
    }
    case synodpb::Request::kDeleteRange:
      if (auto e = validate(req.delete_range())) return *e;
      return apply_delete_range(txn, req.delete_range());
    case synodpb::Request::kTxn: {
      if (auto e = validate(req.txn())) return *e;
      auto resp = apply_txn(txn, req.txn(), compact_revision_);
      if (!resp) return resp.error();
      return std::move(resp).value();
    }
    case synodpb::Request::kCompaction:
      return apply_compaction(req.compaction(), txn, compact_revision);
    case synodpb::Request::kMemberPut:
    case synodpb::Request::kMemberRemove:
      return apply_member(req, txn);
    case synodpb::Request::kFencedPut:
      return apply_fenced_put(req.fenced_put(), txn);
    case synodpb::Request::kFencedTxn:
      return apply_fenced_txn(req.fenced_txn(), txn);
    case synodpb::Request::kLeaseGrant:
      return apply_lease_grant(req.lease_grant(), txn);
    case synodpb::Request::kLeaseRevoke:
      // An expiry decided by a leader of an earlier term than the newest lessor epoch: that
      // leader did not know the renewals made since (it may have been deposed long before its
      // revoke was chosen). The current leader decides again from its own deadlines.
      if (req.expiry_epoch() != 0 && req.expiry_epoch() < lessor_epoch()) {
        return errors::lease_not_found();
      }
      return apply_lease_revoke(req.lease_revoke(), txn);
    case synodpb::Request::kLessorEpoch:
      if (req.lessor_epoch() > lessor_epoch()) {
        txn.view().put(std::string(keys::kMetaLessorEpoch), keys::encode_u64(req.lessor_epoch()));
      }
      return std::monostate{};
    case synodpb::Request::kAuth:
      if (auto e = auth_.apply(req.auth(), txn.view())) return *e;
      return AuthApplied{};
    case synodpb::Request::kTxnPrepare:
      return apply_txn_prepare(req.txn_prepare(), txn);
    case synodpb::Request::kTxnDecide:
      return apply_txn_decide(req.txn_decide(), txn);
    case synodpb::Request::kTxnResolve:
      return apply_txn_resolve(req.txn_resolve(), txn);
    case synodpb::Request::kTxnPrecommit:
      return apply_txn_precommit(req.txn_precommit(), txn);
    case synodpb::Request::kTxnForget:
      return apply_txn_forget(req.txn_forget(), txn);
    case synodpb::Request::kCutMarker:
      return std::monostate{};  // recorded by apply()
    case synodpb::Request::OP_NOT_SET:
      // A stamp alone: the revision moves on to it, with no write (a sharded group's watchers
      // then know that nothing below it is still to come).
      if (req.revision_stamp() <= txn.begin_revision()) return errors::empty_request();
      txn.advance();
      return std::monostate{};
    default:
      return errors::empty_request();
  }
}

std::optional<Error> Store::authorize(const synodpb::Request& req) const {
  if (!auth_.enabled() || req.internal()) return std::nullopt;
  const Caller caller{req.auth_user(), req.auth_revision()};
  // A fenced request reads its lock's contenders, "<lock>/" and below.
  auto lock_readable = [&](const std::string& lock) {
    std::string end = lock + "0";  // '/' + 1
    return auth_.check(caller, lock + "/", end, Access::kRead);
  };
  switch (req.op_case()) {
    case synodpb::Request::kPut:
      return authorize_put(caller, req.put());
    case synodpb::Request::kDeleteRange: {
      const etcdserverpb::DeleteRangeRequest& del = req.delete_range();
      if (auto e = auth_.check(caller, del.key(), del.range_end(), Access::kWrite)) return e;
      if (del.prev_kv()) return auth_.check(caller, del.key(), del.range_end(), Access::kRead);
      return std::nullopt;
    }
    case synodpb::Request::kTxn:
      return authorize_txn(caller, req.txn());
    case synodpb::Request::kFencedPut:
      if (auto e = lock_readable(req.fenced_put().lock())) return e;
      return authorize_put(caller, req.fenced_put().put());
    case synodpb::Request::kFencedTxn:
      if (auto e = lock_readable(req.fenced_txn().lock())) return e;
      return authorize_txn(caller, req.fenced_txn().txn());
    case synodpb::Request::kLeaseRevoke:
      // An expiry is the leader's decision, not a caller's.
      if (req.expiry_epoch() != 0) return std::nullopt;
      return authorize_lease(caller, req.lease_revoke().id());
    case synodpb::Request::kAuth:
      if (req.auth().has_login()) return std::nullopt;
      return auth_.check_admin(caller);
    default:
      return std::nullopt;  // compaction, leases granted, members: as etcd, not checked here
  }
}

std::optional<Error> Store::authorize_put(const Caller& caller,
                                          const etcdserverpb::PutRequest& put) const {
  if (auto e = auth_.check(caller, put.key(), "", Access::kWrite)) return e;
  // Attaching a lease to a key lets its revoker delete the key, so the caller must be able to
  // write every key already on the lease (etcd's checkLeasePuts).
  if (put.lease() != 0) {
    if (auto e = authorize_lease(caller, put.lease())) return e;
  }
  if (put.prev_kv()) return auth_.check(caller, put.key(), "", Access::kRead);
  return std::nullopt;
}

std::optional<Error> Store::authorize_txn(const Caller& caller,
                                          const etcdserverpb::TxnRequest& txn) const {
  for (const etcdserverpb::Compare& c : txn.compare()) {
    if (auto e = auth_.check(caller, c.key(), c.range_end(), Access::kRead)) return e;
  }
  for (const auto* ops : {&txn.success(), &txn.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      std::optional<Error> e;
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestRange:
          e = auth_.check(caller, op.request_range().key(), op.request_range().range_end(),
                          Access::kRead);
          break;
        case etcdserverpb::RequestOp::kRequestPut:
          e = authorize_put(caller, op.request_put());
          break;
        case etcdserverpb::RequestOp::kRequestDeleteRange: {
          const etcdserverpb::DeleteRangeRequest& del = op.request_delete_range();
          e = auth_.check(caller, del.key(), del.range_end(), Access::kWrite);
          if (!e && del.prev_kv())
            e = auth_.check(caller, del.key(), del.range_end(), Access::kRead);
          break;
        }
        case etcdserverpb::RequestOp::kRequestTxn:
          e = authorize_txn(caller, op.request_txn());
          break;
        default:
          break;
      }
      if (e) return e;
    }
  }
  return std::nullopt;
}

std::optional<Error> Store::authorize_lease(const Caller& caller, int64_t lease) const {
  if (caller.revision == 0) return errors::user_empty();
  auto it = lease_keys_.find(lease);
  if (it == lease_keys_.end()) return std::nullopt;
  for (const std::string& key : it->second) {
    if (auto e = auth_.check(caller, key, "", Access::kWrite)) return e;
  }
  return std::nullopt;
}

ApplyResult::Outcome Store::apply_compaction(const etcdserverpb::CompactionRequest& req,
                                             WriteTxn& txn, int64_t& compact_revision) {
  // etcd's updateCompactRev: at or below the last compaction, or beyond the present, fails.
  if (req.revision() <= compact_revision_) return errors::compacted();
  if (req.revision() > revision_) return errors::future_revision();
  // Not past a prepared cross-shard part (a sharded group): it may still write below the
  // group's revision, and history there must stay whole. The cluster's compaction revision is
  // kept by the metadata group; this group just keeps a little more history.
  const int64_t at = std::min(req.revision(), resolved_revision());
  if (at > compact_revision_) {
    compact_history(txn.view(), at);
    txn.view().put(std::string(keys::kMetaCompactRevision), encode_i64(at));
    compact_revision = at;
  }
  etcdserverpb::CompactionResponse resp;
  resp.mutable_header()->set_revision(revision_);
  return resp;
}

// The holder is the live key under "<lock>/" with the smallest create revision (etcd's
// concurrency.Mutex); the put applies only with exactly its token.
std::optional<Error> Store::check_fence(const std::string& lock, int64_t token,
                                        const WriteTxn& txn) const {
  if (lock.empty()) return errors::lock_name_missing();
  const std::string prefix = lock + "/";
  std::string end = prefix;
  end.back() = static_cast<char>('/' + 1);
  const KeyScan contenders = read_keys(txn.view(), prefix, end, std::nullopt, 0);
  if (contenders.kvs.empty()) return errors::lock_not_held(lock);
  int64_t holder = contenders.kvs.front().create_revision();
  for (const mvccpb::KeyValue& kv : contenders.kvs) holder = std::min(holder, kv.create_revision());
  if (token != holder) return errors::stale_token(token, holder);
  return std::nullopt;
}

ApplyResult::Outcome Store::apply_fenced_put(const synodpb::FencedPutRequest& req, WriteTxn& txn) {
  if (auto e = validate(req.put())) return *e;
  if (auto e = check_fence(req.lock(), req.token(), txn)) return *e;
  const etcdserverpb::PutRequest& put = req.put();
  if (put.lease() != 0 && !txn.lease_exists(put.lease())) return errors::lease_not_found();
  if (auto e = check_put(txn, put)) return *e;
  return apply_put(txn, put);
}

ApplyResult::Outcome Store::apply_fenced_txn(const synodpb::FencedTxnRequest& req, WriteTxn& txn) {
  if (auto e = validate(req.txn())) return *e;
  if (auto e = check_fence(req.lock(), req.token(), txn)) return *e;
  auto resp = apply_txn(txn, req.txn(), compact_revision_);
  if (!resp) return resp.error();
  return std::move(resp).value();
}

ApplyResult::Outcome Store::apply_lease_grant(const etcdserverpb::LeaseGrantRequest& req,
                                              WriteTxn& txn) {
  if (req.id() == 0) return errors::lease_not_found();  // the proposer always picks one
  if (req.ttl() > kMaxLeaseTtlSeconds) return errors::lease_ttl_too_large();
  if (txn.lease_exists(req.id())) return errors::lease_exists();
  synodpb::Lease lease;
  lease.set_id(req.id());
  lease.set_ttl(req.ttl());
  txn.view().put(keys::lease(req.id()), lease.SerializeAsString());
  etcdserverpb::LeaseGrantResponse resp;
  resp.mutable_header()->set_revision(revision_);
  resp.set_id(req.id());
  resp.set_ttl(req.ttl());
  return resp;
}

// Every key attached to the lease is deleted in this one write (one revision, a delete event
// per key), then the lease itself.
ApplyResult::Outcome Store::apply_lease_revoke(const etcdserverpb::LeaseRevokeRequest& req,
                                               WriteTxn& txn) {
  if (!txn.lease_exists(req.id())) return errors::lease_not_found();
  auto it = lease_keys_.find(req.id());
  if (it != lease_keys_.end()) {
    for (const std::string& key : it->second) txn.delete_range(key, "");
  }
  txn.view().del(keys::lease(req.id()));
  etcdserverpb::LeaseRevokeResponse resp;
  resp.mutable_header()->set_revision(txn.end_revision());
  return resp;
}

uint64_t Store::lessor_epoch() const {
  std::optional<std::string> v = backend_.get(keys::kMetaLessorEpoch);
  if (!v) return 0;
  std::optional<uint64_t> epoch = keys::decode_u64(*v);
  if (!epoch) records::corrupted("lessor epoch");
  return *epoch;
}

std::vector<int64_t> Store::lease_ids() const {
  std::vector<int64_t> out;
  const keys::Bounds table = keys::table(keys::kLease);
  backend_.scan(table.begin, table.end, [&](std::string_view, std::string_view v) {
    synodpb::Lease l;
    if (!l.ParseFromArray(v.data(), static_cast<int>(v.size()))) records::corrupted("lease");
    out.push_back(l.id());
    return true;
  });
  return out;
}

std::optional<LeaseInfo> Store::lease(int64_t id) const {
  std::optional<std::string> v = backend_.get(keys::lease(id));
  if (!v) return std::nullopt;
  synodpb::Lease l;
  if (!l.ParseFromString(*v)) records::corrupted("lease");
  LeaseInfo info{.id = l.id(), .ttl = l.ttl(), .keys = {}};
  auto it = lease_keys_.find(id);
  if (it != lease_keys_.end()) info.keys.assign(it->second.begin(), it->second.end());
  return info;
}

ApplyResult::Outcome Store::apply_member(const synodpb::Request& req, WriteTxn& txn) {
  if (req.has_member_put()) {
    txn.view().put(keys::member(req.member_put().id()), req.member_put().SerializeAsString());
  } else {
    std::string key = keys::member(req.member_remove());
    if (!txn.view().get(key)) return errors::member_not_found();
    txn.view().del(std::move(key));
  }
  MembersResponse resp;
  keys::Bounds table = keys::table(keys::kMember);
  txn.view().scan(table.begin, table.end, [&](std::string_view, std::string_view v) {
    synodpb::Member& m = resp.members.emplace_back();
    if (!m.ParseFromArray(v.data(), static_cast<int>(v.size()))) records::corrupted("member");
    return true;
  });
  return resp;
}

Expected<etcdserverpb::RangeResponse, Error> Store::range(
    const etcdserverpb::RangeRequest& req) const {
  if (auto e = validate(req)) return Unexpected{*e};
  if (holding() && held(req.key(), req.range_end(), false)) {
    return Unexpected{errors::locked_by_transaction()};
  }
  BatchView view(backend_);
  return execute_range(view, req, ReadRevisions{revision_, compact_revision_});
}

std::optional<Error> Store::validate(const etcdserverpb::RangeRequest& req) const {
  return kv::validate(req);
}
std::optional<Error> Store::validate(const etcdserverpb::PutRequest& req) const {
  return kv::validate(req);
}
std::optional<Error> Store::validate(const etcdserverpb::DeleteRangeRequest& req) const {
  return kv::validate(req);
}
std::optional<Error> Store::validate(const etcdserverpb::TxnRequest& req) const {
  return kv::validate(req, max_txn_ops_);
}

Expected<HashKVResult, Error> Store::hash_kv(int64_t revision) const {
  if (revision > 0 && revision < compact_revision_) return Unexpected{errors::compacted()};
  if (revision > revision_) return Unexpected{errors::future_revision()};
  if (revision <= 0) revision = revision_;
  uint32_t crc = crc32c("history");
  keys::Bounds history = keys::table(keys::kHistory);
  backend_.scan(history.begin, history.end, [&](std::string_view k, std::string_view v) {
    std::optional<keys::HistoryKey> parsed = keys::parse_history(k);
    if (!parsed) records::corrupted("history key");
    if (parsed->rev.main <= revision) crc = crc32c_extend(crc32c_extend(crc, k), v);
    return true;
  });
  return HashKVResult{.hash = crc, .compact_revision = compact_revision_, .revision = revision_};
}

std::vector<synodpb::Member> Store::members() const {
  std::vector<synodpb::Member> out;
  keys::Bounds table = keys::table(keys::kMember);
  backend_.scan(table.begin, table.end, [&](std::string_view, std::string_view v) {
    synodpb::Member& m = out.emplace_back();
    if (!m.ParseFromArray(v.data(), static_cast<int>(v.size()))) records::corrupted("member");
    return true;
  });
  return out;
}

void Store::for_each_event(int64_t from, int64_t to,
                           const std::function<bool(const mvccpb::Event& event)>& visit) const {
  if (from > to) return;
  const std::string begin = keys::rev_log({std::max<int64_t>(from, 1), 0});
  const std::string end = keys::rev_log({to + 1, 0});
  mvccpb::Event event;
  backend_.scan(begin, end, [&](std::string_view k, std::string_view user_key) {
    std::optional<keys::Revision> rev = keys::parse_rev_log(k);
    if (!rev) records::corrupted("revision log key");
    std::optional<std::string> value = backend_.get(keys::history(user_key, *rev));
    if (!value) records::corrupted("revision log entry without history");
    event.set_type(records::is_tombstone(*value) ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
    *event.mutable_kv() = records::decode_history(user_key, *value);
    return visit(event);
  });
}

void Store::for_each_revision(const std::function<void(const RevisionEntry& entry)>& visit) const {
  // Versions at or below the compaction point have no revision-log entry any more (compaction
  // drops the log there), so they are found in the history and put in revision order here.
  std::vector<keys::HistoryKey> compacted;
  if (compact_revision_ > 0) {
    keys::Bounds history = keys::table(keys::kHistory);
    backend_.scan(history.begin, history.end, [&](std::string_view k, std::string_view) {
      std::optional<keys::HistoryKey> parsed = keys::parse_history(k);
      if (!parsed) records::corrupted("history key");
      if (parsed->rev.main <= compact_revision_) compacted.push_back(std::move(*parsed));
      return true;
    });
    std::sort(compacted.begin(), compacted.end(),
              [](const keys::HistoryKey& a, const keys::HistoryKey& b) { return a.rev < b.rev; });
  }
  auto emit = [&](std::string_view user_key, keys::Revision rev) {
    std::optional<std::string> value = backend_.get(keys::history(user_key, rev));
    if (!value) records::corrupted("revision log entry without history");
    mvccpb::KeyValue kv = records::decode_history(user_key, *value);
    visit(RevisionEntry{.rev = rev, .kv = kv, .tombstone = records::is_tombstone(*value)});
  };
  for (const keys::HistoryKey& h : compacted) emit(h.user_key, h.rev);
  // Above the compaction point the revision log lists every version in revision order.
  keys::Bounds log = keys::table(keys::kRevLog);
  keys::Revision last{};
  backend_.scan(log.begin, log.end, [&](std::string_view k, std::string_view user_key) {
    std::optional<keys::Revision> rev = keys::parse_rev_log(k);
    if (!rev) records::corrupted("revision log key");
    assert(rev->main > compact_revision_ && last < *rev);
    last = *rev;
    emit(user_key, *rev);
    return true;
  });
}

std::string Store::image() const {
  return encode_image(backend_);
}

bool Store::restore(std::string_view image) {
  std::optional<ImageEntries> entries = decode_image(image);
  if (!entries) return false;
  std::map<std::string, std::string, std::less<>> meta;
  for (const auto& [k, v] : *entries) {
    bool known = !k.empty() && std::find(keys::kAllTables.begin(), keys::kAllTables.end(), k[0]) !=
                                   keys::kAllTables.end();
    if (!known) return false;
    if (k[0] == keys::kMeta) meta.emplace(k, v);
  }
  const std::optional<Meta> parsed = parse_meta(lookup_in(meta));
  if (!parsed || image_defect(*entries, parsed->revision, parsed->compact_revision)) return false;

  WriteBatch batch;
  for (char table : keys::kAllTables) {
    keys::Bounds b = keys::table(table);
    batch.delete_range(b.begin, b.end);
  }
  for (auto& [k, v] : *entries) batch.put(std::move(k), std::move(v));
  backend_.write(std::move(batch));
  load();
  return true;
}

}  // namespace synod::kv
