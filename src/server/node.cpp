#include "server/node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "core/consensus/conf.h"
#include "server/apply_result.h"
#include "storage/etcd_snapshot.h"
#include "storage/rocks_backend.h"
#include "storage/wal.h"

namespace synod::server {

void Node::FetchCancel::set(std::function<void()> interrupt) {
  std::lock_guard lock(mu_);
  interrupt_ = std::move(interrupt);
  if (cancelled_ && interrupt_) interrupt_();
}

void Node::FetchCancel::clear() {
  std::lock_guard lock(mu_);
  interrupt_ = nullptr;
}

void Node::FetchCancel::cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (interrupt_) interrupt_();
}

Node::Node(const NodeOptions& options, net::Transport& transport)
    : options_(options),
      transport_(transport),
      lessor_(int64_t{options.election_ticks} * options.tick_ms * 1000) {
  // Request ids only need to be unique among this member's in-flight requests; starting from a
  // random base keeps a restarted member from matching an old entry to a new waiter.
  std::random_device rd;
  next_request_id_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  watch_hub_.set_marks(static_cast<bool>(options.timestamps));
  if (const char* delay = std::getenv("SYNOD_TEST_STAMP_DELAY"); delay && options.timestamps) {
    unsigned group = 0, ms = 0;
    if (std::sscanf(delay, "%u:%u", &group, &ms) == 2 && group == options.group) {
      stamp_delay_ = std::chrono::milliseconds(ms);
      spdlog::warn("group {}: stamps held {} ms before use (SYNOD_TEST_STAMP_DELAY)", group, ms);
    }
  }
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

void Node::start() {
  if (options_.loop) {
    wal_on_sync_file_system_ = options_.loop->syncs_file_system_of(options_.data_dir);
    options_.loop->add(this);
  } else {
    thread_ = std::thread([this] { run(); });
  }
}

void Node::stop() {
  {
    std::lock_guard lock(inbox_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  inbox_cv_.notify_all();
  fetch_cancel_.cancel();
  if (options_.loop) options_.loop->remove(this);
  if (thread_.joinable()) thread_.join();
  wait_background();
  if (buffered_) buffered_->sync();
}

// --- Inputs from any thread -------------------------------------------------------------------

void Node::post(Input&& input) {
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(std::move(input));
  }
  wake();
}

void Node::wake() {
  if (options_.loop) {
    options_.loop->wake(this);
  } else {
    inbox_cv_.notify_one();
  }
}

void Node::propose(synodpb::Request request, ApplyDone done) {
  post(Proposal{std::move(request), std::move(done), Clock::now() + options_.request_timeout});
}

void Node::propose_raw(synodpb::Request request, std::string raw, ApplyDone done) {
  post(Proposal{std::move(request), std::move(done), Clock::now() + options_.request_timeout,
                std::move(raw)});
}

void Node::advance_revision() {
  propose(synodpb::Request(), [](const kv::ApplyResult&) {});
}

void Node::read_barrier(Done done) {
  post(ReadInput{std::move(done)});
}

void Node::change_membership(raft::ConfChange change, Done done) {
  post(ConfRequest{change, std::move(done), Clock::now() + options_.request_timeout});
}

void Node::transfer_leadership(raft::NodeId target, Done done) {
  post(TransferRequest{target, std::move(done), Clock::now() + options_.request_timeout});
}

void Node::lease_keepalive(int64_t id, std::function<void(int64_t ttl)> done) {
  post(LeaseInput{id, std::move(done), {}});
}

void Node::lease_time_to_live(int64_t id, std::function<void(std::optional<LeaseTtl>)> done) {
  post(LeaseInput{id, {}, std::move(done)});
}

void Node::watch(uint64_t stream, const etcdserverpb::WatchRequest& request, WatchCaller caller) {
  post(WatchInput{stream, false, request, std::move(caller)});
}

void Node::watch_closed(uint64_t stream) {
  post(WatchInput{stream, true, {}, std::nullopt});
}

void Node::receive(std::vector<raft::Message> messages) {
  {
    std::lock_guard lock(inbox_mu_);
    // A raft thread this far behind is better served by fewer messages: Raft retransmits.
    if (inbox_messages_ + messages.size() > kMaxInboxMessages) return;
    inbox_messages_ += messages.size();
    for (raft::Message& m : messages) inbox_.emplace_back(std::move(m));
  }
  wake();
}

NodeStatus Node::status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

void Node::set_on_conf_change(std::function<void(const raft::ConfState&)> f) {
  on_conf_change_ = std::move(f);
}

int64_t Node::min_lease_ttl_seconds() const {
  const int64_t election_ms = int64_t{options_.election_ticks} * options_.tick_ms;
  return (3 * election_ms / 2 + 999) / 1000;
}

// --- The raft thread --------------------------------------------------------------------------

void Node::run() {
  const auto tick = std::chrono::milliseconds(options_.tick_ms);
  Clock::time_point next_tick = next_tick_after(Clock::now(), tick);
  bool again = false;
  while (true) {
    {
      std::unique_lock lock(inbox_mu_);
      inbox_cv_.wait_until(lock, again ? Clock::now() : next_tick,
                           [&] { return stopping_ || !inbox_.empty(); });
      if (stopping_) break;
      batch_.swap(inbox_);
      inbox_messages_ = 0;
    }
    const Clock::time_point now = Clock::now();
    const bool tick_due = now >= next_tick;
    if (tick_due) next_tick = next_tick_after(now, tick);
    again = step(batch_, tick_due);
  }
  fail_all_waiting();
}

bool Node::pass(bool tick) {
  {
    std::lock_guard lock(inbox_mu_);
    if (stopping_) return false;
    batch_.swap(inbox_);
    inbox_messages_ = 0;
  }
  return step(batch_, tick);
}

void Node::leave() {
  fail_all_waiting();
}

bool Node::step(std::vector<Input>& batch, bool tick) {
  // Every input of the batch reaches the engine before the driver runs: one Ready, one
  // fsync, for all of them.
  for (Input& input : batch) handle(std::move(input));
  batch.clear();
  if (tick) on_tick(Clock::now());
  submit_proposals();
  submit_conf_changes();
  driver_->run();
  // Watchers catching up from history keep the loop going without waiting for input.
  if (watch_hub_.catch_up_ready(*store_)) watch_hub_.catch_up(*store_, &watch_out_);
  watch_hub_.mark_through(*store_, &watch_out_);
  emit_watch_output();
  publish_status();
  return watch_hub_.catch_up_ready(*store_);
}

void Node::on_tick(Clock::time_point now) {
  if (delayed_stamps_ && now >= delayed_stamps_->not_before) {
    stamps_ready(*std::exchange(delayed_stamps_, std::nullopt));
  }
  driver_->tick();
  expire(now);
  check_transfers();
  check_leases(now);
  notify_watch_progress(now);
}

void Node::handle(Input&& input) {
  if (auto* m = std::get_if<raft::Message>(&input)) {
    if (m->type == raft::MessageType::kForwardRequest) {
      accept_forwarded(*m);
    } else {
      driver_->step(*m);
    }
  } else if (auto* s = std::get_if<StampsReady>(&input)) {
    stamps_ready(*s);
  } else if (auto* p = std::get_if<Proposal>(&input)) {
    accept_proposal(std::move(*p));
  } else if (auto* r = std::get_if<ReadInput>(&input)) {
    read(std::move(r->done));
  } else if (auto* c = std::get_if<ConfRequest>(&input)) {
    accept_conf_change(std::move(*c));
  } else if (auto* w = std::get_if<WatchInput>(&input)) {
    handle_watch(*w);
  } else if (auto* l = std::get_if<LeaseInput>(&input)) {
    handle_lease(*l);
  } else if (auto* f = std::get_if<StoreFlushed>(&input)) {
    if (store_flush_.joinable()) store_flush_.join();  // it posted this as its last act
    driver_->state_flushed(f->applied);
  } else if (auto* s = std::get_if<StateFetched>(&input)) {
    if (state_fetch_.joinable()) state_fetch_.join();
    driver_->state_fetched(std::move(s->image), s->index, s->error);
  } else if (auto* r = std::get_if<StateRetained>(&input)) {
    // Its thread is joined by the next retain_state (another may have started since).
    driver_->state_retained(r->index, r->digest);
  } else if (auto* t = std::get_if<TransferRequest>(&input)) {
    start_transfer(std::move(*t));
  }
}

uint32_t Node::timeout_ticks() const {
  const auto ms = static_cast<uint64_t>(options_.request_timeout.count());
  return static_cast<uint32_t>(std::max<uint64_t>(1, ms / options_.tick_ms));
}

void Node::read(Done done) {
  driver_->read(
      [done = std::move(done)](replica::ReadOutcome outcome) {
        switch (outcome) {
          case replica::ReadOutcome::kOk:
            return done(std::nullopt);
          case replica::ReadOutcome::kNoLeader:
            return done(kv::errors::no_leader());
          case replica::ReadOutcome::kTimedOut:
            return done(kv::errors::timed_out());
          case replica::ReadOutcome::kBusy:
            return done(kv::errors::too_many_requests());
        }
      },
      timeout_ticks());
}

void Node::publish_status() {
  NodeStatus s;
  s.leader = raft_->leader();
  // etcd's terms start at 1 and clients read a 0 as "no term" (the field is then left out of
  // their JSON); PBFT's views start at 0, so a PBFT member reports view + 1.
  s.term = raft_->term() + (options_.engine == replica::EngineKind::kPbft ? 1 : 0);
  s.role = raft_->role();
  s.last_index = raft_->last_index().value;
  s.committed = raft_->committed_index().value;
  s.applied = store_->applied_index();
  s.conf = raft_->conf();
  std::lock_guard lock(status_mu_);
  if (s.leader != raft::kNoNode && s.leader != status_.leader) {
    metrics_.leader_changes.add();
    record_event_locked(fmt::format("term {}: {:x} leads", s.term.value, s.leader.value));
  }
  if (s.leader != status_.leader || s.term != status_.term) {
    spdlog::info("raft: term {} leader {:x} ({} here)", s.term.value, s.leader.value,
                 raft::to_string(s.role));
  }
  if (s.conf.voters != status_.conf.voters || s.conf.learners != status_.conf.learners) {
    std::string text = "members:";
    for (raft::NodeId v : s.conf.voters) text += fmt::format(" {:x}", v.value);
    for (raft::NodeId l : s.conf.learners) text += fmt::format(" {:x} (learner)", l.value);
    record_event_locked(std::move(text));
  }
  status_ = std::move(s);
}

void Node::record_event_locked(std::string text) {
  events_.push_back(NodeEvent{std::chrono::system_clock::now(), std::move(text)});
  while (events_.size() > kMaxEvents) events_.pop_front();
}

std::vector<NodeEvent> Node::recent_events() const {
  std::lock_guard lock(status_mu_);
  return {events_.begin(), events_.end()};
}

// --- replica::Host ----------------------------------------------------------------------------

bool Node::persist(const std::vector<raft::Entry>& entries,
                   const std::optional<raft::HardState>& hard_state, bool sync) {
  auto s = wal_->append(entries, hard_state);
  if (s.ok() && sync && options_.loop) {
    // On a group loop the write is made durable at the end of the loop's round, together with
    // every other group's (GroupLoop::defer_sync); the driver waits for synced().
    s = wal_->write();
    if (s.ok()) {
      sync_started_ = Clock::now();
      options_.loop->defer_sync(this, wal_on_sync_file_system_);
      return false;
    }
  } else if (s.ok() && sync) {
    const auto start = Clock::now();
    s = wal_->sync();
    metrics_.wal_fsync.observe(std::chrono::duration<double>(Clock::now() - start).count());
  }
  if (!s.ok()) wal_failed(s.message());
  return true;
}

void Node::synced(bool data_synced) {
  if (auto s = wal_->commit(data_synced); !s.ok()) wal_failed(s.message());
  metrics_.wal_fsync.observe(std::chrono::duration<double>(Clock::now() - sync_started_).count());
  driver_->persisted();
  std::vector<Input> none;
  if (step(none, /*tick=*/false)) options_.loop->wake(this);  // watchers catching up
}

void Node::wal_failed(const std::string& message) {
  // Durability rule: a member that cannot fsync must not acknowledge anything.
  spdlog::critical("wal: {}", message);
  std::abort();
}

void Node::save_snapshot(const raft::Snapshot& snapshot) {
  auto s = wal_->save_snapshot(snapshot);
  if (!s.ok()) {
    spdlog::critical("wal: saving snapshot failed: {}", s.message());
    std::abort();
  }
}

void Node::send(std::vector<raft::Message> messages) {
  if (outbound_filter_) outbound_filter_(messages);
  transport_.send(options_.group, std::move(messages));
}

// The fetch streams the leader's whole state: on a thread of its own, so the raft thread goes
// on stepping messages meanwhile. The driver asks for one fetch at a time.
void Node::fetch_state(raft::NodeId from, uint64_t min_index, bool retained) {
  if (state_fetch_.joinable()) state_fetch_.join();
  state_fetch_ = std::thread([this, from, min_index, retained] {
    std::string error = "no state fetcher set";
    std::optional<std::string> image;
    uint64_t index = 0;
    if (fetch_state_) {
      image = fetch_state_(from, min_index, retained, fetch_cancel_, &index, &error);
    }
    post(StateFetched{std::move(image), index, std::move(error)});
  });
}

std::optional<kv::CutRecord> Node::cut(uint64_t epoch) const {
  std::lock_guard lock(cuts_mu_);
  auto it = cuts_.find(epoch);
  if (it == cuts_.end()) return std::nullopt;
  return it->second;
}

uint64_t Node::applied_index() const {
  return store_->applied_index();  // the raft thread is the store's only writer
}

void Node::apply(std::span<const raft::Entry> entries) {
  std::vector<std::pair<ApplyDone, kv::ApplyResult>> replies;
  {
    std::unique_lock lock(store_mu_);
    for (const raft::Entry& e : entries) {
      if (e.type == raft::EntryType::kConfChange) {
        lock.unlock();
        apply_conf_entry(e);
        lock.lock();
        continue;
      }
      // A PBFT entry names its client and timestamp: it takes effect once however often it
      // was ordered.
      std::optional<raft::ClientOp> client_op;
      if (e.type == raft::EntryType::kClientOp) client_op = raft::decode_client_op(e.data);
      const std::string& data = client_op ? client_op->op : e.data;
      synodpb::Request request;
      if (data.empty() || !request.ParseFromString(data)) {
        if (!data.empty() || (e.type == raft::EntryType::kClientOp && !client_op)) {
          spdlog::error("apply: entry {} is not a request", e.index.value);
        }
        store_->advance_applied(e.index.value);
        continue;
      }
      const kv::ClientStamp stamp{client_op ? std::string_view(client_op->client) : "",
                                  client_op ? client_op->timestamp : 0};
      const int64_t revision_before = store_->revision();
      const bool watched = !watch_hub_.empty();
      kv::ApplyResult result = store_->apply(
          e.index.value, request, watched ? &apply_events_ : nullptr, client_op ? &stamp : nullptr);
      if (result.cut) {
        std::lock_guard cuts_lock(cuts_mu_);
        cuts_[result.cut->epoch] = std::move(*result.cut);
        result.cut.reset();
        while (cuts_.size() > kMaxCuts) cuts_.erase(cuts_.begin());
      }
      if (result.duplicate) {
        metrics_.duplicates_applied.add();
        continue;  // answered when it took effect
      }
      // A cross-shard transaction's part may write below the revision, which then stays.
      if (watched && (store_->revision() > revision_before || !apply_events_.empty())) {
        watch_hub_.on_write(store_->revision(), apply_events_, *store_, &watch_out_);
      }
      apply_events_.clear();
      if (request.has_lease_grant() || request.has_lease_revoke()) lease_applied(request, result);
      if (request.has_auth() && result.ok()) {
        publish_auth();
        if (on_auth_applied_) on_auth_applied_(request.auth());
      }
      answer_applied(request.id(), std::move(result), replies);
    }
    // One storage write for the whole batch; the clients are answered only after it.
    const auto start = Clock::now();
    buffered_->flush();
    metrics_.backend_commit.observe(std::chrono::duration<double>(Clock::now() - start).count());
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
  conf_applied(*conf);
  if (on_conf_change_) on_conf_change_(*conf);
}

bool Node::restore(const raft::SnapshotMeta& meta, const std::string& image) {
  std::unique_lock lock(store_mu_);
  if (!store_->restore(image)) {
    spdlog::error("store: the state fetched for the snapshot at index {} does not restore",
                  meta.index.value);
    return false;
  }
  buffered_->sync();
  watch_hub_.on_restore(&watch_out_);
  publish_auth();
  return true;
}

void Node::publish_auth() {
  auth_revision_.store(store_->auth().revision(), std::memory_order_release);
  auth_enabled_.store(store_->auth().enabled(), std::memory_order_release);
}

void Node::flush_state(uint64_t applied) {
  // apply() ends with the overlay written to RocksDB, so this flush() finds nothing to write;
  // it keeps the rule true whatever else writes to the overlay. RocksDB's flush then writes out
  // the memtables that hold everything applied so far, while the raft thread goes on applying
  // into new ones.
  {
    std::unique_lock lock(store_mu_);
    buffered_->flush();
  }
  if (store_flush_.joinable()) store_flush_.join();
  store_flush_ = std::thread([this, applied] {
    backend_->sync();
    post(StoreFlushed{applied});
  });
}

void Node::note(const std::string& event) {
  spdlog::info("raft: {}", event);
}

}  // namespace synod::server
