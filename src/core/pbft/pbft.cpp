#include "core/pbft/pbft.h"

#include <algorithm>

#include "base/assert.h"
#include "core/rand.h"

namespace synod::pbft {

namespace {

Digest digest_from(const std::string& bytes) {
  Digest d{};
  if (bytes.size() == d.size()) std::copy(bytes.begin(), bytes.end(), d.begin());
  return d;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction and restart.

Pbft::Pbft(const Config& config, const Persisted& persisted) : cfg_(config) {
  SYNOD_ASSERT(cfg_.keys != nullptr && cfg_.id != raft::kNoNode);
  SYNOD_ASSERT(cfg_.checkpoint_interval > 0 && cfg_.log_window >= cfg_.checkpoint_interval);
  SYNOD_ASSERT(cfg_.state_interval > 0 && cfg_.state_interval % cfg_.checkpoint_interval == 0);
  SYNOD_ASSERT(cfg_.max_batch > 0 && cfg_.max_batch <= kMaxBatch && cfg_.status_ticks > 0);
  conf_ = persisted.snapshot ? persisted.snapshot->meta.conf : cfg_.initial_conf;
  replicas_ = conf_.voters;
  std::sort(replicas_.begin(), replicas_.end());
  SYNOD_ASSERT(!replicas_.empty() && replicas_.size() <= kMaxReplicas);
  const size_t n = replicas_.size();
  f_ = cfg_.faults != 0 ? cfg_.faults : (n - 1) / 3;
  SYNOD_ASSERT(f_ < n);
  quorum_ = n - f_;
  if (cfg_.bugs.small_quorums && quorum_ > 1) --quorum_;
  // This replica's own requests carry timestamps that no earlier process of it used: a request
  // equal to one executed before a restart would be taken for a duplicate and never execute.
  // A random start from the seed (a fresh one per process) below 2^63, counting up.
  // Own requests number on from above any this replica made before it restarted (the state
  // machine keeps the highest it applied from each client; see Config::timestamp_base).
  next_timestamp_ = cfg_.timestamp_base != 0 ? cfg_.timestamp_base
                                             : (Rng(cfg_.seed).next() >> 1) & ~uint64_t{0xFFFFFF};
  restore(persisted);
  ready_ = raft::ReadyTracker(hard_state());
  assert_invariants();
}

void Pbft::restore(const Persisted& persisted) {
  SnapshotMeta meta;
  if (persisted.snapshot) {
    meta = persisted.snapshot->meta;
    local_snapshot_ = persisted.snapshot;
  }
  // The commit index is a hint written without an fsync; the last checkpoint this replica
  // executed is durable (it is in `vote`, whose changes are synced before the checkpoint's
  // message leaves), so a restart never forgets a checkpoint it announced.
  const Index checkpointed(persisted.hard_state.vote.value >> 1);
  log_ = Log(meta, persisted.entries, std::max(persisted.hard_state.commit, checkpointed),
             std::max(cfg_.applied, meta.index));
  // The snapshot is at or below a stable checkpoint (compact() takes no other), so its digest
  // is certified; the executed history past it is replayed from the log.
  stable_ = meta.index;
  stable_digest_ = digest_from(meta.digest);
  executed_digest_ = stable_digest_;
  chain_[meta.index] = executed_digest_;
  for (Index s = meta.index + 1; s <= log_.committed(); ++s) {
    const SlotRecord rec = *decode_record(log_.at(s).data);
    if (rec.installed_through) {
      // A snapshot was being installed: what the state holds through it came from the
      // snapshot, not from these slots. If the state got there, the history resumes at it;
      // otherwise this replica executed only what precedes the marks.
      if (*rec.installed_through > log_.committed()) {
        log_ = Log(meta, persisted.entries, s - 1, std::max(cfg_.applied, meta.index));
        // The snapshot was vouched for: stable, though this replica must still catch up to it.
        stable_ = *rec.installed_through;
        stable_digest_ = rec.installed_digest;
        break;
      }
      s = *rec.installed_through;
      executed_digest_ = rec.installed_digest;
      stable_ = std::max(stable_, s);
      stable_digest_ = rec.installed_digest;
      chain_.clear();
      chain_[s] = executed_digest_;
      continue;
    }
    const Digest d = digest(rec.request.request);
    executed_digest_ = chain(executed_digest_, s, d);
    chain_[s] = executed_digest_;
    remember_executed(d);
  }
  view_ = persisted.hard_state.term;
  changing_ = (persisted.hard_state.vote.value & 1) != 0;
  last_checkpoint_ = std::min(checkpointed, log_.committed());
  next_seq_ = log_.last_index() + 1;
  if (changing_) {
    ViewChange vc = make_view_change();
    vc.signature = cfg_.keys->sign(view_change_bytes(vc));
    view_changes_[cfg_.id] = vc;
  }
}

// PBFT's durable word (HardState.vote): the last checkpoint this replica executed, and whether
// it waits for a new view. The driver syncs every change of it before the Ready's messages leave.
HardState Pbft::hard_state() const {
  return {view_, raft::NodeId((last_checkpoint_.value << 1) | (changing_ ? 1 : 0)),
          log_.committed()};
}

raft::NodeId Pbft::primary(View v) const {
  return replicas_[v.value % replicas_.size()];
}

Role Pbft::role() const {
  if (changing_) return Role::kCandidate;
  return primary(view_) == cfg_.id ? Role::kLeader : Role::kFollower;
}

raft::NodeId Pbft::leader() const {
  return changing_ ? raft::kNoNode : primary(view_);
}

std::optional<SlotRecord> Pbft::record(Index seq) const {
  if (seq < log_.first_index() || seq > log_.last_index()) return std::nullopt;
  return decode_record(log_.at(seq).data);
}

// The digest of the request at `seq` in the log.
std::optional<Digest> Pbft::digest_at(Index seq) const {
  std::optional<SlotRecord> r = record(seq);
  if (!r) return std::nullopt;
  return digest(r->request.request);
}

std::optional<Index> Pbft::certified_through(Index seq) const {
  for (const auto& [first, last] : committed_runs_) {
    if (first > seq) break;
    if (seq <= last) return last;
  }
  return std::nullopt;
}

Entry Pbft::make_entry(Index seq, View view, SlotRecord record) const {
  return Entry{view, seq, raft::EntryType::kNormal, encode_record(record)};
}

// ---------------------------------------------------------------------------------------------
// Inputs.

void Pbft::tick() {
  ++now_;
  if (now_ % cfg_.status_ticks == 0) {
    send_status();
    retransmit_open_runs();
    relay_waiting_requests();
  }
  tick_view_change();
  maybe_pre_prepare();
}

void Pbft::step(const Message& m) {
  if (m.type != raft::MessageType::kPbft || m.to != cfg_.id || m.from == cfg_.id ||
      !cfg_.keys->knows(m.from.value)) {
    return drop("not a PBFT message from a replica");
  }
  std::string why;
  std::optional<Msg> msg = open(m.payload, *cfg_.keys, m.from, &why, !cfg_.bugs.skip_mac_check);
  if (!msg) return drop("a message that does not authenticate or decode");
  switch (msg->kind) {
    case Kind::kRequest:
      return on_request(*msg);
    case Kind::kPrePrepare:
      return on_pre_prepare(*msg);
    case Kind::kPrepare:
      return on_prepare(*msg);
    case Kind::kCommit:
      return on_commit(*msg);
    case Kind::kCheckpoint:
      return on_checkpoint(*msg);
    case Kind::kViewChange:
      return on_view_change(*msg);
    case Kind::kNewView:
      return on_new_view(*msg);
    case Kind::kStatus:
      return on_status(*msg);
    case Kind::kFetch:
      return on_fetch(*msg);
    case Kind::kBodies:
      return on_bodies(*msg);
    case Kind::kSnapshot:
      return on_snapshot(*msg);
    case Kind::kState:
      return on_state(*msg);
  }
}

ProposeResult Pbft::propose(std::string data) {
  if (pending_.size() >= cfg_.max_pending_requests) return {Status::kNotReady, {}, {}};
  AuthenticatedRequest r;
  if (is_client_request(data)) {
    std::optional<AuthenticatedRequest> decoded = decode_client_request(data);
    if (!decoded) return {Status::kInvalid, {}, {}};
    r = std::move(*decoded);
  } else {
    r = own_request(std::move(data));
  }
  receive_request(r, /*local=*/true);
  return {Status::kForwarded, {}, view_};
}

// A request from this replica as a client: its MAC key with each replica is the pair's key.
AuthenticatedRequest Pbft::own_request(std::string op) {
  AuthenticatedRequest r;
  r.request = Request{cfg_.keys->public_keys().kx, ++next_timestamp_, std::move(op)};
  const std::string bytes = request_auth_bytes(r.request);
  for (raft::NodeId replica : replicas_) {
    r.macs.emplace_back(replica.value, cfg_.keys->mac_for(replica.value, bytes));
  }
  return r;
}

ProposeResult Pbft::propose_conf_change(const ConfChange&) {
  return {Status::kInvalid, {}, {}};
}

Status Pbft::read_index(uint64_t context) {
  if (pending_.size() >= cfg_.max_pending_requests) return Status::kNotReady;
  // A no-op ordered like any request: once it executes, every request ordered before the read
  // was asked has executed too (the read is linearizable at the barrier's sequence number).
  const AuthenticatedRequest r = own_request("");
  reads_[digest(r.request)] = context;
  receive_request(r, /*local=*/true);
  return Status::kOk;
}

Status Pbft::transfer_leadership(raft::NodeId) {
  return Status::kInvalid;
}

// The log is compacted only to a checkpoint at a multiple of the state interval, at or below
// the stable one: its history's digest is then certified (a prefix of the stable checkpoint's
// chain), a replica that restarts from the snapshot, or installs it, starts from an agreed
// history, and every replica that compacted there retained its state there for others to fetch.
std::optional<SnapshotMeta> Pbft::compact(Index index, std::string snapshot_data) {
  auto stable = chain_.find(stable_);
  if (stable == chain_.end() || stable->second != stable_digest_) return std::nullopt;
  const Index at((std::min(stable_, index).value / cfg_.state_interval) * cfg_.state_interval);
  if (at <= log_.snapshot().index || at > log_.committed()) return std::nullopt;
  auto c = chain_.find(at);
  if (c == chain_.end()) return std::nullopt;
  log_.applied_to(std::min(index, log_.committed()));
  SnapshotMeta meta{at, *log_.term(at), conf_, std::string(c->second.begin(), c->second.end())};
  log_.compact(meta);
  chain_.erase(chain_.begin(), chain_.find(at));
  local_snapshot_ = raft::Snapshot{meta, std::move(snapshot_data)};
  return meta;
}

// ---------------------------------------------------------------------------------------------
// Ready / Advance.

bool Pbft::has_ready() const {
  return !ready_.outstanding() && ready_.pending(log_, hard_state());
}

Ready Pbft::ready() {
  Ready rd = ready_.take(log_, hard_state());
  // The log holds records; the state machine gets the requests' operations with their clients
  // and timestamps, so that a request ordered twice takes effect once (OSDI 4.1: replicas keep
  // the last reply to each client). A null request and a read barrier are empty: no-ops.
  for (Entry& e : rd.committed) {
    std::optional<SlotRecord> r = decode_record(e.data);
    SYNOD_ASSERT(r.has_value());
    Request& req = r->request.request;
    if (req.op.empty() || cfg_.bugs.apply_every_copy) {
      e.data = std::move(req.op);
      continue;
    }
    e.type = raft::EntryType::kClientOp;
    e.data = raft::encode_client_op(raft::ClientOp{
        std::string(req.client.begin(), req.client.end()), req.timestamp, std::move(req.op)});
  }
  return rd;
}

void Pbft::advance() {
  ready_.advance(log_);
  if (installing_ && log_.persisted() >= installing_->seq) finish_install();
  assert_invariants();
}

// ---------------------------------------------------------------------------------------------
// Plumbing.

Msg Pbft::make(Kind kind) const {
  Msg m;
  m.kind = kind;
  m.view = view_;
  m.sender = cfg_.id;
  return m;
}

void Pbft::send(const Msg& m, raft::NodeId to, bool immediate) {
  Message out;
  out.type = raft::MessageType::kPbft;
  out.from = cfg_.id;
  out.to = to;
  out.term = view_;
  out.payload = seal(m, *cfg_.keys, to);
  ready_.send(std::move(out), immediate);
}

void Pbft::broadcast(const Msg& m, bool immediate) {
  for (raft::NodeId r : replicas_) {
    if (r != cfg_.id) send(m, r, immediate);
  }
}

bool Pbft::check_request(const AuthenticatedRequest& r) const {
  if (cfg_.bugs.skip_mac_check) return true;
  const Mac* tag = r.mac_for(cfg_.id.value);
  return tag != nullptr &&
         cfg_.keys->check_mac_from_client(r.request.client, request_auth_bytes(r.request), *tag);
}

void Pbft::drop(const char*) {
  ++dropped_;
}

// The view-change timer runs while this replica waits for a request to execute (OSDI 4.4), its
// own quiet ones aside; it restarts whenever a request executes. Waiting for a new view has its own
// start (maybe_start_view_change_timer).
void Pbft::reset_timer() {
  if (changing_) return;
  timer_started_ = pending_.size() > quiet_ ? now_ : 0;
}

void Pbft::assert_invariants() const {
  SYNOD_ASSERT(log_.applied() <= log_.committed() && log_.committed() <= log_.last_index());
  SYNOD_ASSERT(log_.snapshot().index <= stable_ || stable_ == Index(0));
  SYNOD_ASSERT(quorum_ >= 1 && quorum_ <= replicas_.size());
  SYNOD_ASSERT(quiet_ <= pending_.size());
}

}  // namespace synod::pbft
