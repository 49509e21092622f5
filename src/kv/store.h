// kv::Store: Synod's MVCC key-value state machine, with etcd 3.4's semantics.
//
// The store applies committed Raft entries (synodpb::Request) and serves reads at the current or
// a past revision. Its whole state lives in a kv::Backend (layout in keys.h); the object itself
// caches the applied index, two revisions and an index of the live keys' metadata (KeyIndex,
// about 70 bytes per key, rebuilt from the backend on load), so a put reads nothing from the
// backend.
//
// Determinism: no threads, clocks, files or randomness. Replicas that apply the same entries
// from the same image hold byte-identical backends and equal hash_kv().
//
// Thread-safety: none. The caller serializes every call; reads (const methods) may run together
// only if no apply/restore runs meanwhile (the server holds a reader-writer lock).
//
// Durability: each apply() is one atomic backend write carrying the data and the applied index,
// so after a crash the store is exactly at some applied index and the Raft log replays from
// there. apply() does not sync; the Raft WAL is the durability source.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "kv/auth_store.h"
#include "kv/backend.h"
#include "kv/errors.h"
#include "kv/expected.h"
#include "kv/key_index.h"
#include "kv/keys.h"
#include "kv/validate.h"
#include "synodpb/request.pb.h"

namespace synod::kv {

class WriteTxn;

// The answer to a member_put or member_remove: the membership after the change, by id.
struct MembersResponse {
  std::vector<synodpb::Member> members;
};

// The answer to an auth request that applied (the responses carry nothing but a header).
struct AuthApplied {};

// Who sent a request and its number (raft::ClientOp): see Store::apply.
struct ClientStamp {
  std::string_view client;
  uint64_t timestamp = 0;
};

// A participant group's vote on a cross-shard transaction's prepare.
struct TxnVote {
  bool prepared = false;       // its keys are locked for the transaction; false: it cannot commit
  bool compares_hold = false;  // prepared: this group's compares held
  std::string reason;          // not prepared: why
  int64_t revision = 0;        // prepared: the prepare's revision (its stamp), 0 if unstamped
};

// The decision that stands for a transaction (txn_decide in the coordinator group), or the one
// a participant carried out (txn_resolve), with the responses of the branch it ran.
struct TxnDecided {
  bool commit = false;
  bool succeeded = false;
  etcdserverpb::TxnResponse response;  // resolve, committed here just now: the branch's ops
  int64_t commit_revision = 0;         // commit: the revision every part writes at (0: its own)
};

// What a prepared cross-shard transaction's part holds in its group (store_txn.cpp): single
// keys, held against every other request; ranges in etcd's form (range_end "\0": from begin
// on), a read's held against writes and a delete's against everything; and the leases its puts
// attach keys to, whose revoke waits for the part's resolve.
struct HeldRange {
  std::string begin;
  std::string end;
  bool write = false;
};
struct PartLocks {
  std::vector<std::string> keys;
  std::vector<HeldRange> ranges;
  std::vector<int64_t> leases;
  int64_t prepare_revision = 0;  // TxnIntent.prepare_revision
};

// The group's state recorded at a consistent cut (docs/sharding.md, "Consistent cuts"): an
// image() of the store as it was just before the entry that made the cut.
struct CutRecord {
  uint64_t epoch = 0;
  int64_t revision = 0;
  std::string image;
};

struct ApplyResult {
  using Outcome = std::variant<std::monostate, Error, etcdserverpb::PutResponse,
                               etcdserverpb::DeleteRangeResponse, etcdserverpb::TxnResponse,
                               etcdserverpb::CompactionResponse, MembersResponse,
                               etcdserverpb::LeaseGrantResponse, etcdserverpb::LeaseRevokeResponse,
                               AuthApplied, TxnVote, TxnDecided>;

  // True when raft_index <= applied_index(): the entry was applied before; nothing changed and
  // outcome is monostate.
  bool skipped = false;
  // True when the client's request took effect before (Store::apply's `once`): only the applied
  // index advanced; outcome is monostate.
  bool duplicate = false;
  Outcome outcome;
  // The newest cut this store recorded, once the entry applied (0: none yet); a transaction
  // step's result carries it to the coordinator, which passes it on with the next steps.
  uint64_t cut_epoch = 0;
  // The entry made this store record a cut (its cut_marker, or a cut_epoch newer than the
  // store's): the state just before it.
  std::optional<CutRecord> cut;

  bool ok() const { return !skipped && !duplicate && !std::holds_alternative<Error>(outcome); }
  const Error* error() const { return std::get_if<Error>(&outcome); }
  template <typename T>
  const T* response() const {
    return std::get_if<T>(&outcome);
  }
};

// A lease as the store holds it: the granted TTL and the keys attached to it, in key order.
struct LeaseInfo {
  int64_t id = 0;
  int64_t ttl = 0;
  std::vector<std::string> keys;
};

// etcd's MaxLeaseTTL: 9,000,000,000 seconds.
inline constexpr int64_t kMaxLeaseTtlSeconds = 9'000'000'000;

struct HashKVResult {
  uint32_t hash = 0;
  int64_t compact_revision = -1;
  int64_t revision = 0;  // the store's current revision
};

class Store {
 public:
  // Loads the applied index, revisions and members the backend holds (an empty backend is a
  // store at revision 1, never compacted, applied index 0). The backend must outlive the store.
  explicit Store(Backend& backend, int max_txn_ops = kDefaultMaxTxnOps);

  uint64_t applied_index() const { return applied_index_; }
  // The newest consistent cut recorded here (0: none).
  uint64_t cut_epoch() const { return cut_epoch_; }
  // The revision of the last write transaction; 1 for an empty store.
  int64_t revision() const { return revision_; }
  // The revision through which this group's history is final: its revision, or while a
  // cross-shard transaction's part is prepared here, the revision below the lowest such
  // prepare's (the part writes at a commit revision at or above it, possibly below revision()).
  // Watchers are told nothing past it.
  int64_t resolved_revision() const {
    return prepare_revisions_.empty() ? revision_
                                      : std::min(revision_, lowest_prepare_revision() - 1);
  }
  // The revision of the last compaction; -1 if never compacted (as etcd reports it).
  int64_t compact_revision() const { return compact_revision_; }
  // Live keys in the current table.
  size_t key_count() const { return index_.size(); }

  // Applies the committed entry at raft_index. If raft_index <= applied_index() it does
  // nothing and returns skipped. Otherwise data and the new applied index are written in one
  // batch; an Error outcome changes no data but still advances the applied index.
  // Response headers carry the revision; cluster_id, member_id and raft_term are the caller's.
  // With `events`, appends the watch events of the write (none for a refused request or a
  // write-free txn), in revision order, prev_kv unset.
  //
  // With `once` (an entry a Byzantine fault tolerant engine ordered: its client and timestamp),
  // the request takes effect at most once per client and timestamp (SessionWindow): a duplicate
  // advances the applied index only and returns duplicate.
  ApplyResult apply(uint64_t raft_index, const synodpb::Request& req,
                    std::vector<mvccpb::Event>* events = nullptr,
                    const ClientStamp* once = nullptr);
  // The highest timestamp applied from `client` (0: none): a restarted member's own requests
  // number on from above it.
  uint64_t session_highest(std::string_view client) const;

  // Cross-shard transactions (docs/transactions.md). The keys prepared transactions hold, each
  // with the transaction's ID; while one is held, ordinary requests and ranges that touch it
  // are refused (errors::locked_by_transaction), so none sees or overwrites a key a
  // transaction may still change.
  const std::map<std::string, std::string, std::less<>>& locks() const { return locks_; }
  // Whether a prepared transaction holds anything here (a key, a range or a lease).
  bool holding() const { return !locks_.empty() || !range_locks_.empty(); }
  // The transactions prepared here and not yet resolved, in ID order (none iff !holding():
  // every prepared part holds at least one key or range).
  std::vector<synodpb::TxnIntent> intents() const;
  // The decision that stands for a transaction this group coordinates, if any.
  std::optional<TxnDecided> decision(std::string_view txn) const;
  // Transactions whose outcome records here (a participant's, not the coordinator group's
  // decisions) were proposed before `before_ms` (by their proposers' clocks) and that hold
  // nothing here: at most `max`, for a txn_forget.
  std::vector<std::string> settled_txns(int64_t before_ms, size_t max) const;
  // Advances the applied index over an entry with no KV effect (leader no-op, conf change).
  // Returns false, changing nothing, if raft_index <= applied_index().
  bool advance_applied(uint64_t raft_index);

  // A read outside the log, at the current revision or a past one (revision <= 0: current).
  // Errors: empty key, future revision, compacted revision.
  Expected<etcdserverpb::RangeResponse, Error> range(const etcdserverpb::RangeRequest& req) const;

  // Checks done before proposing (also repeated by apply). Pure.
  std::optional<Error> validate(const etcdserverpb::RangeRequest& req) const;
  std::optional<Error> validate(const etcdserverpb::PutRequest& req) const;
  std::optional<Error> validate(const etcdserverpb::DeleteRangeRequest& req) const;
  std::optional<Error> validate(const etcdserverpb::TxnRequest& req) const;

  // CRC-32C of the MVCC history up to revision (<= 0: current), equal across replicas that
  // applied the same entries. Errors: future or compacted revision.
  Expected<HashKVResult, Error> hash_kv(int64_t revision) const;

  std::vector<synodpb::Member> members() const;

  // Users, roles and permissions. While authentication is enabled, apply() checks every
  // request against the permissions of the caller it carries (auth_user, auth_revision).
  const AuthStore& auth() const { return auth_; }

  // The term of the newest leader whose lessor epoch has applied (0: none yet).
  uint64_t lessor_epoch() const;
  // Leases: every ID the store holds (in ID byte order), and one lease with its keys.
  std::vector<int64_t> lease_ids() const;
  std::optional<LeaseInfo> lease(int64_t id) const;

  // One stored version of a key: a put's KeyValue, or a delete's tombstone (kv holds the key,
  // version 0 and the deleting revision as mod_revision).
  struct RevisionEntry {
    keys::Revision rev;
    const mvccpb::KeyValue& kv;
    bool tombstone = false;
  };
  // Visits every version the store still holds, in ascending revision order: the versions
  // surviving at or below compact_revision() (the newest live version of each key), then every
  // version above it. `entry` is valid only during the call. Used to export the history
  // (e.g. as an etcd backend snapshot). Cost: one scan of the history and one read per version
  // above the compaction point; memory for one key per version at or below it.
  void for_each_revision(const std::function<void(const RevisionEntry& entry)>& visit) const;

  // Visits, in revision order, the events of revisions [from, to] the revision log still
  // holds (everything above compact_revision()): a put's KeyValue or a delete's tombstone as an
  // mvccpb::Event, prev_kv unset. Return false from visit to stop.
  void for_each_event(int64_t from, int64_t to,
                      const std::function<bool(const mvccpb::Event& event)>& visit) const;

  // The whole state (data, revisions, applied index, members) as one checksummed image.
  std::string image() const;
  // Replaces the whole state with an image's. Returns false, changing nothing, if the bytes are
  // not a well-formed image.
  bool restore(std::string_view image);

  // Reads one backend key; lets metadata be parsed from a backend or from an image.
  using Lookup = std::function<std::optional<std::string>(std::string_view)>;

  // etcd's authApplierV3: whether the request's caller (auth_user, auth_revision) may make it
  // under this store's permissions (nullopt: allowed, or authentication disabled). Applying
  // checks it; a sharded member checks a write against its own group's permissions with it
  // before routing the write to a shard (the shards hold no permissions).
  std::optional<Error> authorize(const synodpb::Request& req) const;

 private:
  struct Meta {
    uint64_t applied_index = 0;
    int64_t revision = 1;
    int64_t compact_revision = -1;
  };
  static std::optional<Meta> parse_meta(const Lookup& lookup);
  void load();
  void load_locks();
  void rebuild_index();

  // Runs the request in txn; an Error outcome leaves txn without writes.
  ApplyResult::Outcome execute(const synodpb::Request& req, WriteTxn& txn,
                               int64_t& compact_revision);
  ApplyResult::Outcome apply_compaction(const etcdserverpb::CompactionRequest& req, WriteTxn& txn,
                                        int64_t& compact_revision);
  ApplyResult::Outcome apply_member(const synodpb::Request& req, WriteTxn& txn);
  std::optional<Error> authorize_put(const Caller& caller,
                                     const etcdserverpb::PutRequest& put) const;
  std::optional<Error> authorize_txn(const Caller& caller,
                                     const etcdserverpb::TxnRequest& txn) const;
  // Write access to every key attached to the lease (revoking it deletes them).
  std::optional<Error> authorize_lease(const Caller& caller, int64_t lease) const;
  // The holder of `lock` (its live key with the smallest create revision) has this token.
  std::optional<Error> check_fence(const std::string& lock, int64_t token,
                                   const WriteTxn& txn) const;
  ApplyResult::Outcome apply_fenced_put(const synodpb::FencedPutRequest& req, WriteTxn& txn);
  ApplyResult::Outcome apply_fenced_txn(const synodpb::FencedTxnRequest& req, WriteTxn& txn);
  ApplyResult::Outcome apply_lease_grant(const etcdserverpb::LeaseGrantRequest& req, WriteTxn& txn);
  ApplyResult::Outcome apply_lease_revoke(const etcdserverpb::LeaseRevokeRequest& req,
                                          WriteTxn& txn);
  // Cross-shard transactions (store_txn.cpp).
  ApplyResult::Outcome apply_txn_prepare(const synodpb::TxnPrepare& req, WriteTxn& txn);
  ApplyResult::Outcome apply_txn_decide(const synodpb::TxnDecision& req, WriteTxn& txn);
  ApplyResult::Outcome apply_txn_resolve(const synodpb::TxnDecision& req, WriteTxn& txn);
  ApplyResult::Outcome apply_txn_precommit(const synodpb::TxnDecision& req, WriteTxn& txn);
  ApplyResult::Outcome apply_txn_forget(const synodpb::TxnForget& req, WriteTxn& txn);
  // An ordinary request that touches a key a transaction holds is refused.
  std::optional<Error> check_locks(const synodpb::Request& req) const;
  // Whether a prepared transaction holds a key of [key, range_end) against a read (writing:
  // against a write).
  bool held(std::string_view key, std::string_view range_end, bool writing) const;
  // Applies the hold changes of the request just written (hold_changes_).
  void apply_hold_changes();
  bool ops_locked(const etcdserverpb::TxnRequest& txn) const;
  void check_invariants() const;

  Backend& backend_;
  KeyIndex index_;                                       // equal to the backend's current table
  std::map<int64_t, std::set<std::string>> lease_keys_;  // lease -> its keys, from index_
  // Keys held by prepared transactions -> the transaction (table 'k'), and the changes the
  // request being applied makes to it (nullopt: released), made once its batch is written.
  std::map<std::string, std::string, std::less<>> locks_;
  std::vector<std::pair<std::string, std::optional<std::string>>> lock_changes_;
  // Ranges held by prepared transactions, and the leases their puts pin (a count per lease);
  // rebuilt from the intents on load. hold_changes_: the parts the request being applied
  // prepared (true) or resolved (false), carried out once its batch is written.
  struct RangeHold {
    HeldRange range;
    std::string txn;
  };
  std::vector<RangeHold> range_locks_;
  std::map<int64_t, int> lease_pins_;
  std::vector<std::tuple<std::string, PartLocks, bool>> hold_changes_;
  // Prepared parts with a prepare revision: transaction -> it (resolved_revision()).
  std::map<std::string, int64_t, std::less<>> prepare_revisions_;
  int64_t lowest_prepare_revision() const;
  AuthStore auth_;
  int max_txn_ops_;
  uint64_t cut_epoch_ = 0;
  uint64_t applied_index_ = 0;
  int64_t revision_ = 1;
  int64_t compact_revision_ = -1;
};

}  // namespace synod::kv
