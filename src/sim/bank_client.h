// The bank workload of sharded runs (`--workload bank`): accounts acct0..acctK-1, spread over
// the shards, each starting at 100 (an absent account holds 100). A client either moves an
// amount between two accounts or audits them all, and the total never changes:
//
//   transfer  reads both accounts (their values and mod revisions), then writes both with a
//             compare that neither changed since. In one group that is one etcd Txn; across two
//             it is a cross-shard transaction (kv/store.h, docs/transactions.md): prepare in
//             each group, the decision in the coordinator group (the first account's), then
//             resolve in each.
//   audit     a read-only cross-shard transaction over every group holding accounts: prepared
//             (every account held), decided, and resolved, each resolve answering its group's
//             accounts; their sum must be K x 100 (BankTotal). Every other audit reads each
//             group's accounts as one range over the accounts' prefix (the range held against
//             writes while prepared), the accounts it does not find counted at 100.
//
// A step that fails or times out is not retried blindly: a transaction whose prepare failed is
// decided abort; one the client cannot finish is left to the resolver (sim/txn_resolver.h),
// which finds its held keys and settles it with the coordinator group's decision. The client
// is a step machine, one request outstanding: next() says what to send, on_reply/on_failure
// what came of it. Deterministic; draws from the generator it is handed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/rand.h"
#include "sim/kv_command.h"

namespace synod::sim {

struct BankOptions {
  int accounts = 16;
  // The group of an account's key.
  std::function<uint32_t(const std::string& key)> group_of;
  // Plant: participants commit before the decision is durable in the coordinator group.
  bool commit_before_decision = false;
  // The chance that the client, as a transaction's coordinator, dies once every participant
  // prepared, before it decides: the classic case where 2PC blocks. Here the decision lives in
  // a replicated group, and the resolver settles the transaction.
  double coordinator_crash = 0.05;
  // Three-phase commit: once every participant voted yes, each records a precommit before the
  // coordinator group decides; a coordinator that dies does so after some of the precommits
  // (drawn), and the resolver commits a transaction it finds precommitted.
  bool three_phase = false;
  // This client also takes consistent cuts now and then: a marker of a new epoch to each of
  // `cut_groups` groups in turn (sim/simulation.cpp checks the bank's total in each cut).
  uint32_t cut_groups = 0;
};

inline constexpr int64_t kBankInitialBalance = 100;
std::string bank_account(int i);

class BankClient {
 public:
  BankClient(uint32_t id, BankOptions options);

  // The next request (client and seq filled in by the caller), or nullopt when the client is
  // between operations (the caller then calls next() again later).
  KvCommand next(uint64_t now_ms, Rng& rng);
  // What the request last returned said.
  void on_reply(const KvResult& result);
  // The request failed (refused, or no answer in time).
  void on_failure();

  // Between operations: the next call to next() starts one.
  bool idle() const { return phase_ == Phase::kIdle; }
  // An operation (transfer or audit) finished, whatever its outcome, since the last call.
  bool take_finished();
  // Audits whose sum was not K x 100: their description (for the BankTotal violation).
  std::vector<std::string> take_bad_audits();
  uint64_t transfers() const { return transfers_; }
  uint64_t cross_shard() const { return cross_shard_; }
  uint64_t audits() const { return audits_; }
  uint64_t coordinator_crashes() const { return coordinator_crashes_; }
  // The epochs of the cuts this client began (1, 2, ...).
  uint64_t cuts() const { return cuts_; }
  static constexpr uint64_t kMaxCuts = 6;

 private:
  enum class Phase : uint8_t {
    kIdle,
    kRead,       // reading transfer accounts, reads_ done so far
    kTxn,        // the one-group Txn
    kPrepare,    // prepares, prepared_ done so far
    kPrecommit,  // three-phase commit: precommits, precommitted_ done so far
    kDecide,     // the decision, in the coordinator group
    kResolve,    // resolves, resolved_ done so far
    kCut,        // a cut's markers, cut_group_ the next group
  };
  struct Part {
    uint32_t group = 0;
    etcdserverpb::TxnRequest part;
  };

  void start_transfer(Rng& rng);
  void start_audit();
  void begin_cross_shard(std::vector<Part> parts);
  void finish();
  KvCommand propose(uint32_t group, synodpb::Request request) const;

  uint32_t id_;
  BankOptions o_;
  Phase phase_ = Phase::kIdle;
  bool finished_ = false;
  uint64_t now_ms_ = 0;
  uint64_t ops_ = 0;
  // The transfer in progress.
  std::string from_, to_;
  int64_t amount_ = 0;
  struct Seen {
    int64_t balance = kBankInitialBalance;
    int64_t mod_revision = 0;
  };
  std::vector<Seen> seen_;
  size_t reads_ = 0;
  // The cross-shard transaction in progress.
  bool audit_ = false;
  std::string txn_id_;
  std::vector<Part> parts_;
  size_t prepared_ = 0, precommitted_ = 0, resolved_ = 0;
  size_t crash_after_precommits_ = 0;  // three-phase: precommits the dying coordinator sends
  bool all_prepared_ = true, compares_hold_ = true;
  int decide_tries_ = 0;
  std::optional<KvResult::TxnStep> decision_;
  int64_t audit_sum_ = 0;
  bool audit_complete_ = true;
  bool audit_done_ = false;  // summed (whatever the sum)
  int audit_attempts_ = 0;   // an audit that found a key held tries again, up to kAuditAttempts
  uint64_t audits_started_ = 0;
  bool range_audit_ = false;           // this audit reads each group's accounts as one range
  size_t audit_count_ = 0;             // a range audit: the accounts it read
  size_t committed_early_ = 0;         // the planted bug: resolves sent before the decision
  bool crash_after_prepares_ = false;  // drawn when the operation starts

  uint64_t transfers_ = 0, cross_shard_ = 0, audits_ = 0, coordinator_crashes_ = 0;
  // The newest cut epoch heard of (from any group's answer): every request carries it.
  uint64_t epoch_ = 0;
  uint64_t cuts_ = 0;
  uint32_t cut_group_ = 0;
  int cut_tries_ = 0;
  static constexpr int kCutTries = 5;
  std::vector<std::string> bad_audits_;
};

}  // namespace synod::sim
