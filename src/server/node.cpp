#include "server/node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <thread>

#include "core/raft/conf.h"
#include "server/apply_result.h"
#include "storage/etcd_snapshot.h"
#include "storage/rocks_backend.h"
#include "storage/wal.h"

namespace synod::server {

namespace {

constexpr int kUnavailable = 14;
constexpr std::string_view kStateRefMagic = "SYNODREF";

}  // namespace

std::string encode_state_ref(uint64_t applied_index) {
  std::string out(kStateRefMagic);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(applied_index >> shift));
  return out;
}

std::optional<uint64_t> decode_state_ref(std::string_view data) {
  if (data.size() != kStateRefMagic.size() + 8 ||
      data.substr(0, kStateRefMagic.size()) != kStateRefMagic) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (size_t i = kStateRefMagic.size(); i < data.size(); ++i)
    v = (v << 8) | static_cast<uint8_t>(data[i]);
  return v;
}

namespace {

constexpr int kDeadlineExceeded = 4;

Error timed_out() {
  return Error{kUnavailable, "etcdserver: request timed out"};
}
Error no_leader() {
  return Error{kUnavailable, "etcdserver: no leader"};
}

bool should_retry(raft::Status s) {
  return s == raft::Status::kNoLeader || s == raft::Status::kTransferring ||
         s == raft::Status::kNotReady || s == raft::Status::kConfChangePending;
}

}  // namespace

Node::Node(const NodeOptions& options, net::Transport& transport)
    : options_(options),
      transport_(transport),
      lessor_(int64_t{options.election_ticks} * options.tick_ms * 1000) {
  // Request ids only need to be unique among this member's in-flight requests; starting from a
  // random base keeps a restarted member from matching an old entry to a new waiter.
  std::random_device rd;
  next_request_id_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

Node::~Node() {
  stop();
}

std::unique_ptr<Node> Node::open(const NodeOptions& options, net::Transport& transport,
                                 std::string* error) {
  std::unique_ptr<Node> node(new Node(options, transport));
  if (!node->recover(error)) return nullptr;
  return node;
}

bool Node::recover(std::string* error) {
  storage::Wal::Options wal_options;
  wal_options.dir = options_.data_dir + "/member";
  auto opened = storage::Wal::open(wal_options);
  if (!opened.ok()) {
    *error = opened.error;
    return false;
  }
  wal_ = std::move(opened.wal);
  raft::Persisted persisted = std::move(opened.recovered);

  auto backend = storage::RocksBackend::open(options_.data_dir + "/member/db");
  if (!backend) {
    *error = backend.error();
    return false;
  }
  backend_ = std::move(*backend);
  buffered_ = std::make_unique<kv::BufferedBackend>(*backend_);
  store_ = std::make_unique<kv::Store>(*buffered_);
  if (persisted.snapshot && store_->applied_index() < persisted.snapshot->meta.index.value) {
    if (decode_state_ref(persisted.snapshot->data)) {
      // The store is flushed before the WAL records a reference to it, so this means the data
      // dir was changed behind Synod's back.
      *error = "the store (applied index " + std::to_string(store_->applied_index()) +
               ") is behind the Raft snapshot at index " +
               std::to_string(persisted.snapshot->meta.index.value) +
               "; the data dir is inconsistent (remove it and re-add the member)";
      return false;
    }
    // The backend lost writes the snapshot covers (they were not yet flushed at the crash).
    if (!store_->restore(persisted.snapshot->data)) {
      *error = "snapshot at index " + std::to_string(persisted.snapshot->meta.index.value) +
               " does not restore";
      return false;
    }
  }
  if (persisted.snapshot) snapshot_index_ = persisted.snapshot->meta.index.value;
  // Whatever the store applied was committed, even if the commit hint on disk is older.
  if (!persisted.entries.empty()) {
    persisted.hard_state.commit =
        std::min(std::max(persisted.hard_state.commit, raft::Index(store_->applied_index())),
                 persisted.entries.back().index);
  }
  synced_hard_state_ = persisted.hard_state;

  raft::Config cfg;
  cfg.id = options_.id;
  cfg.seed = std::random_device{}();
  cfg.initial_conf = options_.initial_conf;
  cfg.applied = raft::Index(store_->applied_index());
  cfg.election_ticks = options_.election_ticks;
  cfg.heartbeat_ticks = 1;
  raft_ = std::make_unique<raft::Raft>(cfg, persisted);
  spdlog::info("raft: member {:x} recovered term {} commit {} applied {} last index {}",
               options_.id.value, persisted.hard_state.term.value,
               persisted.hard_state.commit.value, store_->applied_index(),
               raft_->log().last_index().value);
  publish_status();
  return true;
}

void Node::start() {
  thread_ = std::thread([this] { run(); });
}

void Node::stop() {
  {
    std::lock_guard lock(inbox_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  inbox_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  wait_store_flush();
  if (buffered_) buffered_->sync();
}

void Node::post(Input&& input) {
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(std::move(input));
  }
  inbox_cv_.notify_one();
}

void Node::propose(synodpb::Request request, ApplyDone done) {
  post(Proposal{std::move(request), std::move(done), Clock::now() + options_.request_timeout});
}

void Node::read_barrier(Done done) {
  post(ReadWaiter{std::move(done), Clock::now() + options_.request_timeout});
}

void Node::change_membership(raft::ConfChange change, Done done) {
  post(ConfRequest{change, std::move(done), Clock::now() + options_.request_timeout});
}

int64_t Node::min_lease_ttl_seconds() const {
  const int64_t election_ms = int64_t{options_.election_ticks} * options_.tick_ms;
  return (3 * election_ms / 2 + 999) / 1000;
}

void Node::lease_keepalive(int64_t id, std::function<void(int64_t ttl)> done) {
  post(LeaseInput{id, std::move(done), {}});
}

void Node::lease_time_to_live(int64_t id, std::function<void(std::optional<LeaseTtl>)> done) {
  post(LeaseInput{id, {}, std::move(done)});
}

void Node::watch(uint64_t stream, const etcdserverpb::WatchRequest& request) {
  post(WatchInput{stream, false, request});
}

void Node::watch_closed(uint64_t stream) {
  post(WatchInput{stream, true, {}});
}

void Node::transfer_leadership(raft::NodeId target, Done done) {
  post(TransferRequest{target, std::move(done), Clock::now() + options_.request_timeout});
}

void Node::receive(std::vector<raft::Message> messages) {
  {
    std::lock_guard lock(inbox_mu_);
    for (raft::Message& m : messages) inbox_.emplace_back(std::move(m));
  }
  inbox_cv_.notify_one();
}

NodeStatus Node::status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

void Node::set_on_conf_change(std::function<void(const raft::ConfState&)> f) {
  on_conf_change_ = std::move(f);
}

std::string Node::snapshot_image() {
  std::unique_lock lock(store_mu_);
  buffered_->sync();
  // A bbolt file in etcd's backend layout: etcdctl snapshot status/restore read it as etcd's.
  return storage::etcd_snapshot_image(*store_);
}

void Node::defragment() {
  std::unique_lock lock(store_mu_);
  buffered_->defragment();
}

uint64_t Node::backend_size_bytes() const {
  std::shared_lock lock(store_mu_);
  return backend_->approximate_size_bytes();
}

// ---------------------------------------------------------------------------------------------
// The raft thread.

void Node::run() {
  const auto tick = std::chrono::milliseconds(options_.tick_ms);
  Clock::time_point next_tick = Clock::now() + tick;
  std::vector<Input> batch;
  while (true) {
    {
      std::unique_lock lock(inbox_mu_);
      // Watchers catching up from history keep the loop going without waiting for input.
      inbox_cv_.wait_until(lock, watch_hub_.has_unsynced() ? Clock::now() : next_tick,
                           [&] { return stopping_ || !inbox_.empty(); });
      if (stopping_) break;
      batch.swap(inbox_);
    }
    for (Input& input : batch) handle(std::move(input));
    batch.clear();
    const Clock::time_point now = Clock::now();
    if (now >= next_tick) {
      raft_->tick();
      next_tick = now + tick;
      expire(now);
      check_transfers();
      check_leases(now);
      if (!watch_hub_.empty() && now >= next_progress_notify_) {
        if (next_progress_notify_ != Clock::time_point{})
          watch_hub_.notify_progress(*store_, &watch_out_);
        next_progress_notify_ = now + options_.watch_progress_interval;
      }
    }
    submit_proposals();
    submit_reads();
    submit_conf_changes();
    while (raft_->has_ready()) process_ready();
    serve_reads();
    if (watch_hub_.has_unsynced()) watch_hub_.catch_up(*store_, &watch_out_);
    emit_watch_output();
    maybe_compact();
    publish_status();
  }
  // Everyone still waiting learns that this member is going away.
  for (auto& [id, p] : waiting_apply_) p.done(failed(timed_out()));
  for (Proposal& p : unsent_) p.done(failed(timed_out()));
  for (ReadWaiter& r : unsent_reads_) r.done(timed_out());
  for (auto& [ctx, rs] : reads_in_flight_)
    for (ReadWaiter& r : rs) r.done(timed_out());
  for (auto& [index, r] : reads_ready_) r.done(timed_out());
  for (ConfRequest& c : unsent_conf_) c.done(timed_out());
  for (auto& [c, conf] : conf_waiting_) c.done(timed_out());
  for (TransferRequest& t : transfers_) t.done(timed_out());
}

void Node::handle(Input&& input) {
  if (auto* m = std::get_if<raft::Message>(&input)) {
    raft_->step(*m);
  } else if (auto* p = std::get_if<Proposal>(&input)) {
    p->request.set_id(++next_request_id_);
    unsent_.push_back(std::move(*p));
  } else if (auto* r = std::get_if<ReadWaiter>(&input)) {
    unsent_reads_.push_back(std::move(*r));
  } else if (auto* c = std::get_if<ConfRequest>(&input)) {
    unsent_conf_.push_back(std::move(*c));
  } else if (auto* w = std::get_if<WatchInput>(&input)) {
    handle_watch(*w);
  } else if (auto* l = std::get_if<LeaseInput>(&input)) {
    handle_lease(*l);
  } else if (auto* f = std::get_if<StoreFlushed>(&input)) {
    store_flushing_ = false;
    compact_log(f->applied);
  } else if (auto* t = std::get_if<TransferRequest>(&input)) {
    raft::Status s = raft_->transfer_leadership(t->target);
    if (s == raft::Status::kOk) {
      transfers_.push_back(std::move(*t));
    } else if (s == raft::Status::kInvalid) {
      t->done(Error{3, "etcdserver: bad leader transferee"});
    } else {
      t->done(Error{9, "etcdserver: not leader"});
    }
  }
}

// The raft thread is the store's only writer, so it reads the store here without the lock.
void Node::handle_watch(WatchInput& input) {
  if (input.closed) {
    watch_hub_.close_stream(input.stream);
    return;
  }
  const etcdserverpb::WatchRequest& r = input.request;
  if (r.has_create_request()) {
    watch_hub_.create(input.stream, r.create_request(), *store_, &watch_out_);
  } else if (r.has_cancel_request()) {
    watch_hub_.cancel(input.stream, r.cancel_request().watch_id(), *store_, &watch_out_);
  } else if (r.has_progress_request()) {
    watch_hub_.progress(input.stream, *store_, &watch_out_);
  }
}

namespace {
int64_t micros(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
}  // namespace

void Node::handle_lease(LeaseInput& input) {
  const int64_t now = micros(Clock::now());
  lessor_.set_leader(raft_->role() == raft::Role::kLeader, *store_, now);
  if (input.keepalive) {
    if (!lessor_.leader()) return input.keepalive(kNotLeader);
    unsent_reads_.push_back(ReadWaiter{
        [this, id = input.id, done = std::move(input.keepalive)](std::optional<Error> e) {
          if (e) return done(kNoQuorum);
          const int64_t at = micros(Clock::now());
          lessor_.set_leader(raft_->role() == raft::Role::kLeader, *store_, at);
          if (!lessor_.leader()) return done(kNotLeader);
          done(lessor_.renew(id, *store_, at));
        },
        Clock::now() + options_.request_timeout});
    return;
  }
  if (!lessor_.leader()) return input.time_to_live(std::nullopt);
  std::optional<kv::LeaseInfo> lease = store_->lease(input.id);
  LeaseTtl ttl;  // remaining -1 only once the lease is gone from the store
  if (lease) {
    const std::optional<int64_t> deadline = lessor_.deadline(input.id, now);
    ttl.remaining = deadline ? (*deadline - now) / 1'000'000 : 0;  // 0: its revoke on the way
    ttl.granted = lease->ttl;
    ttl.keys = std::move(lease->keys);
  }
  input.time_to_live(std::move(ttl));
}

// Called at every tick: the leader proposes the revokes of expired leases, at most
// kRevokesPerTick per tick (kv::Lessor retries one whose revoke has not applied in a while).
void Node::check_leases(Clock::time_point now) {
  constexpr size_t kRevokesPerTick = 100;
  lessor_.set_leader(raft_->role() == raft::Role::kLeader, *store_, micros(now));
  for (int64_t id : lessor_.due_revokes(micros(now), kRevokesPerTick)) {
    synodpb::Request revoke;
    revoke.mutable_lease_revoke()->set_id(id);
    revoke.set_id(++next_request_id_);
    unsent_.push_back(
        Proposal{std::move(revoke), [](const kv::ApplyResult&) {}, now + options_.request_timeout});
  }
}

// Every member tracks grants and revokes as they apply, so the deadlines a new leader starts
// from cover every lease (it extends them all on promotion anyway).
void Node::lease_applied(const synodpb::Request& request, const kv::ApplyResult& result) {
  if (!result.ok()) return;
  if (request.has_lease_grant()) {
    lessor_.on_grant(request.lease_grant().id(), request.lease_grant().ttl(), micros(Clock::now()));
  } else if (request.has_lease_revoke()) {
    lessor_.on_revoke(request.lease_revoke().id());
  }
}

void Node::emit_watch_output() {
  if (watch_out_.empty()) return;
  std::vector<kv::WatchOutput> out;
  out.swap(watch_out_);
  if (watch_sink_) watch_sink_(std::move(out));
}

void Node::submit_proposals() {
  while (!unsent_.empty()) {
    Proposal& p = unsent_.front();
    raft::ProposeResult r = raft_->propose(p.request.SerializeAsString());
    if (should_retry(r.status)) return;  // the whole queue waits for a leader, in order
    if (r.status != raft::Status::kOk && r.status != raft::Status::kForwarded) {
      p.done(failed(no_leader()));
    } else {
      const uint64_t id = p.request.id();
      waiting_apply_.emplace(id, std::move(p));
    }
    unsent_.pop_front();
  }
}

void Node::submit_reads() {
  if (unsent_reads_.empty()) return;
  const uint64_t context = next_read_context_++;
  raft::Status s = raft_->read_index(context);
  if (should_retry(s)) return;
  if (s != raft::Status::kOk && s != raft::Status::kForwarded) {
    for (ReadWaiter& r : unsent_reads_) r.done(no_leader());
    unsent_reads_.clear();
    return;
  }
  reads_in_flight_.emplace(context, std::move(unsent_reads_));
  unsent_reads_.clear();
}

void Node::submit_conf_changes() {
  while (!unsent_conf_.empty()) {
    ConfRequest& c = unsent_conf_.front();
    std::optional<raft::ConfState> expected = raft::apply_change(raft_->conf(), c.change);
    if (!expected) {
      c.done(Error{5, "etcdserver: member not found"});
      unsent_conf_.pop_front();
      continue;
    }
    raft::ProposeResult r = raft_->propose_conf_change(c.change);
    if (should_retry(r.status)) return;
    if (r.status == raft::Status::kLearnerBehind) {
      c.done(Error{9,
                   "etcdserver: can only promote a learner member which is in sync with "
                   "leader"});
    } else if (r.status == raft::Status::kNotLeader) {
      c.done(Error{9, "etcdserver: not leader"});
    } else if (r.status != raft::Status::kOk) {
      c.done(Error{3, "etcdserver: invalid membership change"});
    } else {
      conf_waiting_.emplace_back(std::move(c), *expected);
    }
    unsent_conf_.pop_front();
  }
}

void Node::check_transfers() {
  if (transfers_.empty()) return;
  std::vector<TransferRequest> still;
  for (TransferRequest& t : transfers_) {
    if (raft_->leader() == t.target) {
      t.done(std::nullopt);
    } else if (raft_->role() != raft::Role::kLeader && raft_->leader() != raft::kNoNode) {
      t.done(Error{9, "etcdserver: leadership transfer failed"});
    } else {
      still.push_back(std::move(t));
    }
  }
  transfers_.swap(still);
}

namespace {

// thesis 10.2.1: a leader may send its Appends before its own disk write finishes, so the
// followers' fsyncs overlap the leader's. This is safe here because the raft thread handles the
// followers' answers only after this Ready's fsync returned: the leader never counts itself
// toward a quorum for an entry it has not made durable. Everything else (votes, answers to the
// leader) promises durable state and waits for the fsync.
bool replication_message(raft::MessageType t) {
  return t == raft::MessageType::kAppend || t == raft::MessageType::kHeartbeat ||
         t == raft::MessageType::kSnapshot;
}

}  // namespace

void Node::process_ready() {
  raft::Ready rd = raft_->ready();
  auto after_fsync =
      std::stable_partition(rd.messages.begin(), rd.messages.end(),
                            [](const raft::Message& m) { return !replication_message(m.type); });
  std::move(after_fsync, rd.messages.end(), std::back_inserter(rd.immediate_messages));
  rd.messages.erase(after_fsync, rd.messages.end());
  if (!rd.immediate_messages.empty()) transport_.send(std::move(rd.immediate_messages));
  if (rd.snapshot) install_snapshot(*rd.snapshot);
  if (!rd.entries.empty() || rd.hard_state) {
    // Only new entries, a new term or a new vote need the fsync before anything depends on
    // them; a hard state that differs only in its commit index is a recovery hint (the commit
    // index is re-learned from the leader), so it rides along with the next sync.
    const bool must_sync =
        !rd.entries.empty() || (rd.hard_state && (rd.hard_state->term != synced_hard_state_.term ||
                                                  rd.hard_state->vote != synced_hard_state_.vote));
    auto s = wal_->append(rd.entries, rd.hard_state);
    if (s.ok() && must_sync) s = wal_->sync();
    if (rd.hard_state) synced_hard_state_ = *rd.hard_state;
    if (!s.ok()) {
      // Durability rule: a member that cannot fsync must not acknowledge anything.
      spdlog::critical("wal: {}", s.message());
      std::abort();
    }
  }
  if (!rd.messages.empty()) transport_.send(std::move(rd.messages));
  if (!rd.committed.empty()) apply(rd.committed);
  for (const raft::ReadState& rs : rd.read_states) {
    auto it = reads_in_flight_.find(rs.context);
    if (it == reads_in_flight_.end()) continue;
    for (ReadWaiter& r : it->second) reads_ready_.emplace(rs.index.value, std::move(r));
    reads_in_flight_.erase(it);
  }
  raft_->advance();
}

void Node::apply(const std::vector<raft::Entry>& entries) {
  std::vector<std::pair<ApplyDone, kv::ApplyResult>> replies;
  {
    std::unique_lock lock(store_mu_);
    for (const raft::Entry& e : entries) {
      if (e.index.value <= store_->applied_index()) continue;
      if (e.type == raft::EntryType::kConfChange) {
        lock.unlock();
        apply_conf_entry(e);
        lock.lock();
        continue;
      }
      synodpb::Request request;
      if (e.data.empty() || !request.ParseFromString(e.data)) {
        if (!e.data.empty()) spdlog::error("apply: entry {} is not a request", e.index.value);
        store_->advance_applied(e.index.value);
        continue;
      }
      const int64_t revision_before = store_->revision();
      const bool watched = !watch_hub_.empty();
      kv::ApplyResult result =
          store_->apply(e.index.value, request, watched ? &apply_events_ : nullptr);
      if (watched && store_->revision() > revision_before) {
        watch_hub_.on_write(store_->revision(), apply_events_, *store_, &watch_out_);
      }
      apply_events_.clear();
      if (request.has_lease_grant() || request.has_lease_revoke()) lease_applied(request, result);
      auto it = waiting_apply_.find(request.id());
      if (it != waiting_apply_.end()) {
        replies.emplace_back(std::move(it->second.done), std::move(result));
        waiting_apply_.erase(it);
      }
    }
    // One storage write for the whole batch; the clients are answered only after it.
    buffered_->flush();
  }
  for (auto& [done, result] : replies) done(result);
}

void Node::apply_conf_entry(const raft::Entry& entry) {
  std::optional<raft::ConfState> conf = raft::decode_conf(entry.data);
  {
    std::unique_lock lock(store_mu_);
    if (!conf) {
      store_->advance_applied(entry.index.value);
    } else {
      // Members no longer in the configuration leave the member table at this same index on
      // every replica.
      bool removed_any = false;
      for (const synodpb::Member& m : store_->members()) {
        if (conf->contains(raft::NodeId(m.id()))) continue;
        synodpb::Request remove;
        remove.set_member_remove(m.id());
        store_->apply(entry.index.value, remove);
        removed_any = true;
        break;  // one change at a time: at most one member leaves per entry
      }
      if (!removed_any) store_->advance_applied(entry.index.value);
    }
  }
  if (!conf) return;
  std::vector<std::pair<ConfRequest, raft::ConfState>> still;
  for (auto& [c, expected] : conf_waiting_) {
    if (*conf == expected) {
      c.done(std::nullopt);
    } else {
      still.emplace_back(std::move(c), std::move(expected));
    }
  }
  conf_waiting_.swap(still);
  if (on_conf_change_) on_conf_change_(*conf);
}

void Node::serve_reads() {
  const uint64_t applied = store_->applied_index();
  while (!reads_ready_.empty() && reads_ready_.begin()->first <= applied) {
    reads_ready_.begin()->second.done(std::nullopt);
    reads_ready_.erase(reads_ready_.begin());
  }
}

void Node::expire(Clock::time_point now) {
  for (auto it = waiting_apply_.begin(); it != waiting_apply_.end();) {
    if (it->second.deadline <= now) {
      it->second.done(failed(timed_out()));
      it = waiting_apply_.erase(it);
    } else {
      ++it;
    }
  }
  while (!unsent_.empty() && unsent_.front().deadline <= now) {
    unsent_.front().done(failed(no_leader()));
    unsent_.pop_front();
  }
  auto expire_reads = [&](std::vector<ReadWaiter>& rs, const Error& e) {
    std::vector<ReadWaiter> keep;
    for (ReadWaiter& r : rs) {
      if (r.deadline <= now) {
        r.done(e);
      } else {
        keep.push_back(std::move(r));
      }
    }
    rs.swap(keep);
  };
  expire_reads(unsent_reads_, no_leader());
  for (auto it = reads_in_flight_.begin(); it != reads_in_flight_.end();) {
    expire_reads(it->second, timed_out());
    // A read round lost with a leader change is retried in the next round.
    if (!it->second.empty() && raft_->leader() != raft::kNoNode &&
        it->second.front().deadline - options_.request_timeout + std::chrono::seconds(2) <= now) {
      for (ReadWaiter& r : it->second) unsent_reads_.push_back(std::move(r));
      it->second.clear();
    }
    it = it->second.empty() ? reads_in_flight_.erase(it) : std::next(it);
  }
  std::vector<std::pair<ConfRequest, raft::ConfState>> still;
  for (auto& [c, expected] : conf_waiting_) {
    if (c.deadline <= now) {
      c.done(timed_out());
    } else {
      still.emplace_back(std::move(c), std::move(expected));
    }
  }
  conf_waiting_.swap(still);
  while (!unsent_conf_.empty() && unsent_conf_.front().deadline <= now) {
    unsent_conf_.front().done(no_leader());
    unsent_conf_.pop_front();
  }
  std::vector<TransferRequest> transfers;
  for (TransferRequest& t : transfers_) {
    if (t.deadline <= now) {
      t.done(Error{kDeadlineExceeded, "etcdserver: leadership transfer timed out"});
    } else {
      transfers.push_back(std::move(t));
    }
  }
  transfers_.swap(transfers);
}

// A follower installs a leader's snapshot: the state first (restored and flushed), then the
// WAL record that drops the entries it covers, so a crash in between never leaves the WAL
// pointing at state this member does not hold.
void Node::install_snapshot(const raft::Snapshot& snapshot) {
  const uint64_t index = snapshot.meta.index.value;
  if (index > store_->applied_index()) {
    std::string image;
    if (decode_state_ref(snapshot.data)) {
      std::string error;
      std::optional<std::string> fetched;
      for (int attempt = 0; attempt < 20 && !fetched; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
        fetched = fetch_state_ ? fetch_state_(raft_->leader(), index, &error) : std::nullopt;
        if (!fetched) spdlog::warn("raft: fetching the state at index {} failed: {}", index, error);
      }
      if (!fetched) {
        // The core already counts the snapshot as installed; stopping is the only safe answer.
        // On restart the member asks for it again.
        spdlog::critical("raft: cannot fetch the state for the snapshot at index {}", index);
        std::abort();
      }
      image = std::move(*fetched);
    } else {
      image = snapshot.data;
    }
    wait_store_flush();  // no flush of the old state runs under the restore
    std::unique_lock lock(store_mu_);
    if (!store_->restore(image) || store_->applied_index() < index) {
      spdlog::critical("store: the state for the snapshot at index {} does not restore", index);
      std::abort();
    }
    buffered_->sync();
    watch_hub_.on_restore();
    spdlog::info("raft: installed the state at applied index {} (snapshot {})",
                 store_->applied_index(), index);
  }
  raft::Snapshot reference{snapshot.meta, encode_state_ref(index)};
  auto s = wal_->save_snapshot(reference);
  if (!s.ok()) {
    spdlog::critical("wal: saving snapshot failed: {}", s.message());
    std::abort();
  }
  snapshot_index_ = index;
}

std::string Node::state_image(uint64_t* applied_index) const {
  std::shared_lock lock(store_mu_);
  *applied_index = store_->applied_index();
  return store_->image();
}

void Node::maybe_compact() {
  const uint64_t applied = store_->applied_index();
  if (store_flushing_ || applied < snapshot_index_ + options_.snapshot_entries) return;
  // The snapshot replaces log entries, so what it covers must be durable in the store first.
  // apply() ends with the overlay written to RocksDB, so this flush() finds nothing to write;
  // it keeps the rule true whatever else writes to the overlay. RocksDB's flush then writes out
  // the memtables that hold everything applied so far, while the raft thread goes on applying
  // into new ones.
  {
    std::unique_lock lock(store_mu_);
    buffered_->flush();
  }
  wait_store_flush();
  store_flushing_ = true;
  store_flush_ = std::thread([this, applied] {
    backend_->sync();
    post(StoreFlushed{applied});
  });
}

void Node::wait_store_flush() {
  if (store_flush_.joinable()) store_flush_.join();
}

// On the raft thread, once the store is durable through `applied`.
void Node::compact_log(uint64_t applied) {
  // A snapshot installed meanwhile may have moved past it; the core then refuses the compaction.
  // The snapshot holds a reference, not a copy: the flushed store is the state, and a follower
  // that needs it fetches it from here (Peer.FetchState). Compaction stays cheap however large
  // the store grows.
  const std::string reference = encode_state_ref(applied);
  std::optional<raft::SnapshotMeta> meta = raft_->compact(raft::Index(applied), reference);
  if (!meta) return;
  auto s = wal_->save_snapshot(raft::Snapshot{*meta, reference});
  if (!s.ok()) {
    spdlog::critical("wal: saving snapshot failed: {}", s.message());
    std::abort();
  }
  snapshot_index_ = applied;
  spdlog::info("raft: compacted the log up to index {}", applied);
}

void Node::publish_status() {
  NodeStatus s;
  s.leader = raft_->leader();
  s.term = raft_->term();
  s.role = raft_->role();
  s.last_index = raft_->log().last_index().value;
  s.committed = raft_->log().committed().value;
  s.applied = store_->applied_index();
  s.conf = raft_->conf();
  std::lock_guard lock(status_mu_);
  if (s.leader != status_.leader || s.term != status_.term) {
    spdlog::info("raft: term {} leader {:x} ({} here)", s.term.value, s.leader.value,
                 raft::to_string(s.role));
  }
  status_ = std::move(s);
}

}  // namespace synod::server
