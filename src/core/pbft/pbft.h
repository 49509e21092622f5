// PBFT (Castro and Liskov, "Practical Byzantine Fault Tolerance", OSDI '99, cited OSDI; the
// MAC-based view change from Castro's thesis, MIT 2001, cited thesis) as a third consensus
// engine behind the Engine interface: a deterministic value with the Ready/Advance contract of
// src/core/consensus/types.h. n replicas tolerate f Byzantine ones when n >= 3f + 1; quorums
// are n - f replicas (2f + 1 at n = 3f + 1), so two quorums meet in f + 1 replicas, at least
// one of them honest (OSDI 4.5.1). docs/pbft.md gives the argument and how this code differs
// from the paper.
//
//   - Requests carry a client's identity (its public key), a timestamp and an authenticator
//     (a MAC for every replica). A replica's own proposals (the etcd API it serves) are requests
//     from the replica as a client. Backups relay requests to the primary (OSDI 4.1).
//   - Normal case (OSDI 4.2): the primary of view v (replica v mod n) assigns a run of
//     consecutive sequence numbers to a batch of requests in one PRE-PREPARE; backups that
//     accept it persist it and send PREPARE; a replica holding the pre-prepare and n - f - 1
//     matching prepares from backups has the run prepared, persists that, and sends COMMIT;
//     n - f matching commits make it committed. Runs execute in sequence order.
//   - Checkpoints (OSDI 4.3): every K sequence numbers a replica sends CHECKPOINT with the
//     digest of the history it executed (a hash chain over the request digests: execution is
//     deterministic, so equal histories mean equal states). n - f matching ones make it stable:
//     the low watermark h moves, the high watermark is h + L, and protocol state below h goes.
//   - View change (OSDI 4.4, thesis 3.2.4 and Fig. 3-3): a backup whose timer runs out with a
//     request pending, or that sees f + 1 replicas ask for a higher view, sends a signed
//     VIEW-CHANGE with its stable checkpoint, the checkpoints it holds (C), what it prepared (P)
//     and pre-prepared (Q) above it. The new primary decides from n - f of them by the thesis's
//     procedure, and sends a signed NEW-VIEW with the view changes, the decision and the chosen
//     requests' bodies; each backup re-runs the decision before it accepts. Timeouts double
//     with each view change that does not complete (OSDI 4.5.2).
//   - Catching up (OSDI 4.3, thesis 5.2): replicas exchange STATUS; a peer answers one that is
//     behind with its commits and the request bodies, or its stable checkpoint, or the new view
//     it misses. Bodies are trusted only through a certificate: n - f commits for their run, or
//     the chain digest of a stable checkpoint. A replica behind every peer's log installs a
//     snapshot; its state comes through the driver's state fetch, from one member, and is
//     taken only with a digest f + 1 replicas claimed for that state (OSDI 4.3's state
//     transfer checks fetched state against the checkpoint's digest; here states are
//     digested, kept and claimed every state_interval, apart from the checkpoints).
//
// Every message is MAC'd for its receiver; view changes and new views are also signed. A
// message whose MAC or signature does not check is dropped and counted (dropped_messages()).
//
// Not thread-safe: one driver owns one instance.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/consensus/config.h"
#include "core/consensus/log.h"
#include "core/consensus/ready_tracker.h"
#include "core/consensus/types.h"
#include "core/engine.h"
#include "core/pbft/crypto.h"
#include "core/pbft/messages.h"

namespace synod::pbft {

using raft::ConfChange;
using raft::ConfState;
using raft::Entry;
using raft::HardState;
using raft::Log;
using raft::Message;
using raft::Persisted;
using raft::ProposeResult;
using raft::Ready;
using raft::Role;
using raft::SnapshotMeta;
using raft::Status;
using raft::Term;

// Known bugs that tests plant to prove that the simulator's checkers catch them. All false in
// production; nothing outside tests sets them.
struct PlantedBugs {
  // Quorums of 2f replicas instead of 2f + 1 (n - f - 1 instead of n - f).
  bool small_quorums = false;
  // Messages (and clients' requests) are accepted without checking their MACs.
  bool skip_mac_check = false;
  // View changes report nothing prepared (an empty P).
  bool drop_prepared_in_view_change = false;
  // A state fetched for a snapshot is installed without checking its digest.
  bool unchecked_state = false;
  // Committed requests reach the state machine without their clients and timestamps, so one
  // ordered twice takes effect twice.
  bool apply_every_copy = false;
};

struct Config : raft::EngineConfig {
  std::shared_ptr<const Keyring> keys;  // required: this replica's keys and its peers'
  uint32_t faults = 0;                  // f; 0: the most n tolerates, (n - 1) / 3 (at least 1)
  uint64_t checkpoint_interval = 128;   // K
  uint64_t log_window = 256;            // L: sequence numbers past the stable checkpoint
  // States are retained (and their digests claimed) at the multiples of this, a multiple of K;
  // the log is compacted only there.
  uint64_t state_interval = 4096;
  uint32_t max_batch = 256;         // requests in one pre-prepare
  uint32_t max_runs_in_flight = 4;  // the primary batches while this many runs are open
  uint32_t status_ticks = 3;        // a STATUS to every peer this often
  uint32_t max_pending_requests = 65536;
  // This replica's requests are numbered from here up: above any timestamp it used before (its
  // host passes the clock, and at least one more than the highest its state machine applied
  // from it). 0: a start drawn from the seed (tests).
  uint64_t timestamp_base = 0;
  PlantedBugs bugs;
};

class Pbft final : public Engine {
 public:
  // How far past its stable checkpoint, in log windows, a replica takes bodies and commits to
  // catch up, and reports claims in a view change: after a restart its stable checkpoint is
  // its snapshot's, which may lag what its log holds.
  static constexpr uint64_t kCatchUpWindows = 4;
  // Executed requests remembered by digest (retransmissions of them are not new requests).
  static constexpr size_t kExecutedMemory = 1 << 14;

  Pbft(const Config& config, const Persisted& persisted);

  // Inputs.
  void tick() override;
  void step(const Message& m) override;
  // `data` is either a client's request (encode_client_request) or a command of this replica's
  // own, sent as a request from the replica as a client. Always kForwarded: the request reaches
  // the primary and shows up in the log once ordered (kNotReady when too many are pending).
  ProposeResult propose(std::string data) override;
  // The membership is fixed: always kInvalid.
  ProposeResult propose_conf_change(const ConfChange& change) override;
  // Orders a no-op request; the read is ready once it executes.
  Status read_index(uint64_t context) override;
  // Views rotate the primary; there is no transfer: kInvalid.
  Status transfer_leadership(raft::NodeId target) override;
  std::optional<SnapshotMeta> compact(Index index, std::string snapshot_data) override;
  // States are retained every state_interval; one fetched is certified by f + 1 replicas'
  // claims of its digest there (checkpoint.cpp).
  StateTrust state_trust() const override { return {cfg_.state_interval}; }
  void state_retained(Index index, const std::string& digest) override;
  bool state_certified(Index index, const std::string& digest) const override;

  // Outputs.
  bool has_ready() const override;
  Ready ready() override;
  void advance() override;

  // Observers.
  raft::NodeId id() const override { return cfg_.id; }
  Role role() const override;
  Term term() const override { return view_; }
  raft::NodeId leader() const override;
  const ConfState& conf() const override { return conf_; }
  Index committed_index() const override { return log_.committed(); }
  Index last_index() const override { return log_.last_index(); }
  Index snapshot_index() const override { return log_.snapshot().index; }
  Index conf_index() const override { return Index(0); }

  View view() const { return view_; }
  bool changing_view() const { return changing_; }
  NodeId primary(View v) const;
  size_t faults() const { return f_; }
  size_t quorum() const { return quorum_; }
  Index stable_checkpoint() const { return stable_; }
  const Digest& stable_digest() const { return stable_digest_; }
  // The chain digest of the executed history (through committed_index()).
  const Digest& executed_digest() const { return executed_digest_; }
  const Log& log() const { return log_; }
  uint64_t dropped_messages() const { return dropped_; }
  HardState hard_state() const;
  // The request at `seq` in the log (nullopt outside it).
  std::optional<SlotRecord> record(Index seq) const;

  // The new-view decision procedure (thesis Fig. 3-3) over view changes S: nullopt while S
  // does not decide. Public for tests and the invariant checker.
  static std::optional<NewViewDecision> decide(const std::vector<ViewChange>& s, size_t quorum,
                                               size_t weak, uint64_t window);

 private:
  // A run of sequence numbers in one view, as prepares and commits name it.
  struct RunKey {
    View view;
    Index first;
    uint32_t count = 0;
    Digest digest{};
    auto operator<=>(const RunKey&) const = default;
    Index last() const { return first + (count - 1); }
  };
  struct RunVotes {
    std::set<raft::NodeId> prepares;
    std::set<raft::NodeId> commits;
    bool accepted = false;   // the run is in this replica's log at its view
    bool prepared = false;   // this replica sent its commit
    bool committed = false;  // n - f commits and the bodies
    uint64_t since = 0;      // tick this replica accepted the run
  };
  // A pre-prepare of the current view past the log's end, kept until the log reaches it.
  struct Future {
    std::vector<AuthenticatedRequest> requests;
    bool trusted = false;  // from a new view: no request MACs to check
  };
  struct Pending {
    AuthenticatedRequest request;
    bool local = false;    // proposed at this replica (relayed to the primary)
    bool quiet = false;    // local, not yet sent to every replica: no timer waits for it
    uint64_t relayed = 0;  // tick it last went to the primary
  };

  // Plumbing (pbft.cpp).
  void restore(const Persisted& persisted);
  void send(const Msg& m, raft::NodeId to, bool immediate);
  void broadcast(const Msg& m, bool immediate);
  Msg make(Kind kind) const;
  bool check_request(const AuthenticatedRequest& r) const;
  AuthenticatedRequest own_request(std::string op);
  void drop(const char* why);
  Entry make_entry(Index seq, View view, SlotRecord record) const;
  std::optional<Digest> digest_at(Index seq) const;
  // The committed run, not yet executed, that holds `seq`: its last sequence number. Such a
  // slot is settled as an executed one is; nothing may write another request into it.
  std::optional<Index> certified_through(Index seq) const;
  void reset_timer();

  // Normal case (normal_case.cpp).
  void receive_request(const AuthenticatedRequest& r, bool local);
  void on_request(const Msg& m);
  void maybe_pre_prepare();
  void on_pre_prepare(const Msg& m);
  void pre_prepare(Index first, const std::vector<AuthenticatedRequest>& requests, bool trusted);
  std::optional<RunKey> accept_run(View view, Index first,
                                   const std::vector<AuthenticatedRequest>& requests);
  void drain_future();
  void retransmit_open_runs();
  void relay_waiting_requests();
  void on_prepare(const Msg& m);
  void accept_unauthenticated(View view, Index first);
  void on_commit(const Msg& m);
  void check_prepared(const RunKey& key);
  void check_committed(const RunKey& key);
  bool run_bodies(const RunKey& key, std::vector<Entry>* to_write) const;
  bool run_bodies(const RunKey& key, bool prefer_fetched, std::vector<Entry>* to_write) const;
  void execute();
  void remember_executed(const Digest& d);
  bool in_window(Index first, uint32_t count) const;
  size_t runs_in_flight() const;

  // Checkpoints and catching up (checkpoint.cpp).
  void take_checkpoint(Index seq);
  void on_checkpoint(const Msg& m);
  void make_stable(Index seq, const Digest& d);
  Msg make_status() const;
  void send_status();
  void on_status(const Msg& m);
  void on_fetch(const Msg& m);
  void on_bodies(const Msg& m);
  void on_snapshot(const Msg& m);
  void on_state(const Msg& m);
  // To `to`, or to every peer (kNoNode).
  void send_state_claims(raft::NodeId to);
  void install(Index seq, const Digest& d, std::string data);
  void finish_install();
  std::optional<std::pair<Index, Digest>> catch_up_target() const;
  void catch_up_to_checkpoint();
  std::vector<Body> bodies_between(Index from, Index to, size_t max) const;

  // View changes (view_change.cpp).
  void start_view_change(View v);
  ViewChange make_view_change() const;
  void on_view_change(const Msg& m);
  bool valid_view_change(const ViewChange& vc) const;
  void maybe_join_view_change();
  void maybe_start_view_change_timer();
  void maybe_send_new_view();
  void on_new_view(const Msg& m);
  bool valid_new_view(const NewView& nv, std::string* why) const;
  void enter_view(const NewView& nv);
  void tick_view_change();
  std::optional<AuthenticatedRequest> body_of(Index seq, const Digest& d) const;

  void assert_invariants() const;

  Config cfg_;
  std::vector<raft::NodeId> replicas_;  // sorted; the primary of v is replicas_[v mod n]
  ConfState conf_;
  size_t f_ = 0;
  size_t quorum_ = 0;
  raft::ReadyTracker ready_;
  Log log_;
  uint64_t now_ = 1;  // ticks (0 marks a stopped timer)
  uint64_t dropped_ = 0;
  uint64_t next_timestamp_ = 0;

  View view_;
  bool changing_ = false;
  uint32_t view_change_attempts_ = 0;  // view changes since a request last executed
  uint64_t timer_started_ = 0;         // tick the view-change timer (re)started; 0: stopped

  // Normal case.
  std::map<RunKey, RunVotes> runs_;
  std::map<Index, Future> future_;  // by first sequence number
  // Pre-prepares of this view holding a request whose MAC does not check here, by (view,
  // first): taken on f + 1 prepares (accept_unauthenticated).
  std::map<std::pair<View, Index>, std::vector<AuthenticatedRequest>> unauthenticated_;
  std::map<Digest, Pending> pending_;  // requests received and not yet executed
  size_t quiet_ = 0;                   // how many of them are quiet
  std::deque<Digest> queue_;           // primary: requests to order, in arrival order
  std::set<Digest> ordered_;           // primary: in a pre-prepare of this view, not executed
  Index next_seq_;                     // primary: the next sequence number to assign
  std::map<Digest, uint64_t> reads_;   // barrier request -> read context
  std::deque<Digest> executed_recently_;
  std::set<Digest> executed_set_;

  // Checkpoints.
  Digest executed_digest_{};
  std::map<Index, Digest> chain_;  // chain digest at every executed seq past the snapshot
  Index stable_;
  Digest stable_digest_{};
  Index last_checkpoint_;  // the last checkpoint executed (or installed) here: durable
  std::map<raft::NodeId, std::map<Index, Digest>> checkpoint_claims_;
  std::map<Index, Body> fetched_;                  // bodies from peers, not yet trusted
  std::map<Digest, AuthenticatedRequest> bodies_;  // requests by digest (new-view bodies)
  std::optional<raft::Snapshot> local_snapshot_;
  std::map<std::pair<Index, Digest>, std::set<raft::NodeId>> offers_;  // snapshot offers
  // Each replica's newest claims of the digests of states it retained (this one's included).
  std::map<raft::NodeId, std::map<Index, Digest>> state_claims_;
  struct Install {
    Index seq;
    Digest digest{};
    std::string data;
  };
  std::optional<Install> installing_;      // its slots are being marked; installed at advance()
  std::map<Index, Index> committed_runs_;  // first -> last of committed runs not yet executed
  bool executing_ = false;                 // in execute(), which does not nest

  // View changes.
  std::map<raft::NodeId, ViewChange> view_changes_;  // each replica's newest, verified
  std::optional<NewView> new_view_;                  // the one this replica entered by
  uint64_t last_fetch_ = 0;
};

}  // namespace synod::pbft
