#include "replica/driver.h"

#include <algorithm>
#include <iterator>

#include "base/assert.h"
#include "replica/memory_log.h"
#include "replica/state_ref.h"

namespace synod::replica {

namespace {

// Statuses after which a read waits for the next loop: a leader is being elected or is busy.
bool read_should_wait(raft::Status s) {
  return s == raft::Status::kNoLeader || s == raft::Status::kTransferring ||
         s == raft::Status::kNotReady || s == raft::Status::kConfChangePending;
}

}  // namespace

Driver::Driver(Engine& engine, Host& host, const DriverOptions& options, uint64_t snapshot_index)
    : engine_(engine),
      host_(host),
      options_(options),
      snapshot_index_(snapshot_index),
      next_read_context_(options.first_read_context) {
  SYNOD_ASSERT(options_.snapshot_entries > 0);
  SYNOD_ASSERT(options_.first_read_context != 0);
  if (engine_.state_trust().retain_interval > 0) {
    for (const auto& [index, digest] : host_.retained_states()) {
      engine_.state_retained(raft::Index(index), digest);
    }
  }
}

const char* Driver::waiting_for() const {
  switch (stage_) {
    case Stage::kIdle:
      return "idle";
    case Stage::kAwaitingFlush:
      return "a state flush before installing a snapshot";
    case Stage::kFetching:
      return "a snapshot's state from the leader";
    case Stage::kFetchBackoff:
      return "a retry of a failed state fetch";
    case Stage::kPersisting:
      return "its fsync";
  }
  return "?";
}

void Driver::assert_owner() {
  if (owner_ == std::thread::id{}) owner_ = std::this_thread::get_id();
  SYNOD_ASSERT(owner_ == std::this_thread::get_id());
}

// --- Inputs -----------------------------------------------------------------------------------

void Driver::tick() {
  assert_owner();
  ++ticks_;
  engine_.tick();
  if (stage_ == Stage::kFetchBackoff && ticks_ >= fetch_retry_at_) start_fetch();
  expire_reads_through(ticks_);
}

void Driver::step(const raft::Message& m) {
  assert_owner();
  engine_.step(m);
}

void Driver::persisted() {
  assert_owner();
  SYNOD_ASSERT(stage_ == Stage::kPersisting);
  finish_ready();
}

void Driver::state_fetched(std::optional<std::string> image, uint64_t index,
                           const std::string& error) {
  assert_owner();
  if (stage_ != Stage::kFetching) return;  // an answer to a fetch given up on
  const raft::SnapshotMeta& meta = ready_->snapshot->meta;
  const uint64_t interval = engine_.state_trust().retain_interval;
  std::string why = image ? "the image does not restore" : error;
  if (image && interval > 0) {
    // Members may lie: the state is taken only at a retained index, with the digest the engine
    // certifies there.
    const std::string digest = host_.image_digest(*image);
    if (index % interval != 0 || index < meta.index.value ||
        !engine_.state_certified(raft::Index(index), digest)) {
      why = "no certified digest matches the state served at index " + std::to_string(index);
      image.reset();
    }
  }
  if (image && host_.restore(meta, *image) && host_.applied_index() >= meta.index.value) {
    host_.note("installed the state at applied index " + std::to_string(host_.applied_index()) +
               " (snapshot " + std::to_string(meta.index.value) + ")");
    // Others may need this state too.
    if (interval > 0 && host_.applied_index() % interval == 0) {
      host_.retain_state(host_.applied_index());
    }
    finish_install();
  } else {
    ++fetch_failures_;
    host_.note("fetching the state for the snapshot at index " + std::to_string(meta.index.value) +
               " failed (" + why + "); retrying");
    stage_ = Stage::kFetchBackoff;
    fetch_retry_at_ = ticks_ + options_.fetch_retry_ticks;
  }
}

void Driver::state_retained(uint64_t index, const std::string& digest) {
  assert_owner();
  engine_.state_retained(raft::Index(index), digest);
}

void Driver::state_flushed(uint64_t applied) {
  assert_owner();
  SYNOD_ASSERT(flushing_);
  flushing_ = false;
  if (stage_ == Stage::kAwaitingFlush) {
    // A snapshot arrived meanwhile: it replaces the state, and the core will refuse a
    // compaction below it.
    install_snapshot();
  } else if (stage_ == Stage::kIdle) {
    compact(applied);
  } else {
    flushed_ = applied;  // compacted once the Ready in flight is done
  }
}

void Driver::run() {
  assert_owner();
  // Each pass takes one Ready, and the engine has less to hand out after each: a loop that does
  // not end is a bug in the engine, stopped here rather than left to spin.
  constexpr int kMaxReadiesPerRun = 100'000;
  int readies = 0;
  while (stage_ == Stage::kIdle) {
    submit_reads();
    if (!engine_.has_ready()) break;
    SYNOD_ASSERT(++readies <= kMaxReadiesPerRun);
    begin_ready();
  }
  serve_reads();
  if (stage_ == Stage::kIdle) maybe_compact();
}

// --- The Ready loop ---------------------------------------------------------------------------

void Driver::begin_ready() {
  SYNOD_ASSERT(stage_ == Stage::kIdle && !ready_);
  ready_ = engine_.ready();
  if (observer_) observer_(engine_, *ready_);
  if (!ready_->immediate_messages.empty()) host_.send(std::move(ready_->immediate_messages));
  ready_->immediate_messages.clear();
  if (ready_->snapshot) {
    install_snapshot();
  } else {
    persist_ready();
  }
}

// A follower installs a leader's snapshot: the state first (restored durably), then the log's
// snapshot record, so a crash in between never leaves the log pointing at state this member
// does not hold.
void Driver::install_snapshot() {
  const raft::Snapshot& snapshot = *ready_->snapshot;
  if (snapshot.meta.index.value <= host_.applied_index()) return finish_install();
  if (flushing_) {
    stage_ = Stage::kAwaitingFlush;  // no flush of the old state runs under the restore
    return;
  }
  if (decode_state_ref(snapshot.data)) return start_fetch();
  // An image carried in full.
  SYNOD_ASSERT(host_.restore(snapshot.meta, snapshot.data));
  finish_install();
}

// The state may come from any member that has applied the snapshot's index, not only the
// leader: a member waiting for its state cannot vote (its answers wait for this Ready), so
// waiting for a leader could keep the cluster without one. The leader is asked first; each
// retry asks the next member of the snapshot's configuration.
void Driver::start_fetch() {
  std::vector<raft::NodeId> sources;
  const raft::NodeId leader = engine_.leader();
  if (leader != raft::kNoNode && leader != engine_.id()) sources.push_back(leader);
  const raft::ConfState& conf = ready_->snapshot->meta.conf;
  for (const auto* members : {&conf.voters, &conf.learners}) {
    for (raft::NodeId m : *members) {
      if (m != engine_.id() && m != leader) sources.push_back(m);
    }
  }
  if (sources.empty()) {
    stage_ = Stage::kFetchBackoff;
    fetch_retry_at_ = ticks_ + options_.fetch_retry_ticks;
    return;
  }
  stage_ = Stage::kFetching;
  host_.fetch_state(sources[fetch_failures_ % sources.size()], ready_->snapshot->meta.index.value,
                    engine_.state_trust().retain_interval > 0);
}

void Driver::finish_install() {
  const raft::SnapshotMeta meta = ready_->snapshot->meta;
  host_.save_snapshot(raft::Snapshot{meta, encode_state_ref(meta.index.value)});
  snapshot_index_ = std::max(snapshot_index_, meta.index.value);
  persist_ready();
}

void Driver::persist_ready() {
  stage_ = Stage::kPersisting;
  const raft::Ready& rd = *ready_;
  if (rd.entries.empty() && !rd.hard_state) return finish_ready();
  const bool sync = must_sync(rd, synced_);
  if (rd.hard_state) synced_ = *rd.hard_state;
  if (host_.persist(rd.entries, rd.hard_state, sync)) finish_ready();
}

void Driver::finish_ready() {
  SYNOD_ASSERT(stage_ == Stage::kPersisting && ready_);
  raft::Ready rd = std::move(*ready_);
  ready_.reset();
  stage_ = Stage::kIdle;
  if (!rd.messages.empty()) host_.send(std::move(rd.messages));
  if (!rd.committed.empty()) apply(rd.committed);
  for (const raft::ReadState& rs : rd.read_states) {
    auto round = rounds_.find(rs.context);
    if (round == rounds_.end()) continue;
    move_reads({ReadPlace::kInRound, rs.context, 0}, {ReadPlace::kInRound, rs.context + 1, 0},
               ReadPlace::kReady, rs.index.value);
    rounds_.erase(round);
  }
  engine_.advance();
  if (flushed_) {
    const uint64_t applied = *flushed_;
    flushed_.reset();
    compact(applied);
  }
}

void Driver::apply(const std::vector<raft::Entry>& committed) {
  // A restored or fetched state may already hold some of them.
  const uint64_t applied = host_.applied_index();
  auto first = std::find_if(committed.begin(), committed.end(),
                            [&](const raft::Entry& e) { return e.index.value > applied; });
  if (first == committed.end()) return;
  SYNOD_ASSERT(first->index.value == applied + 1);
  const uint64_t interval = engine_.state_trust().retain_interval;
  while (first != committed.end()) {
    // With a retain interval, applied in stretches that end at its multiples, each such state
    // retained.
    auto end = committed.end();
    if (interval > 0) {
      const uint64_t boundary = (first->index.value + interval - 1) / interval * interval;
      end = std::find_if(first, committed.end(),
                         [&](const raft::Entry& e) { return e.index.value > boundary; });
    }
    host_.apply(std::span<const raft::Entry>(&*first, static_cast<size_t>(end - first)));
    if (interval > 0 && std::prev(end)->index.value % interval == 0) {
      host_.retain_state(std::prev(end)->index.value);
    }
    first = end;
  }
  SYNOD_ASSERT(host_.applied_index() == committed.back().index.value);
}

// --- Compaction -------------------------------------------------------------------------------

void Driver::maybe_compact() {
  const uint64_t applied = host_.applied_index();
  // An engine that retains states compacts only at them: no sooner than one interval on.
  const uint64_t every = std::max(options_.snapshot_entries, engine_.state_trust().retain_interval);
  if (flushing_ || applied < snapshot_index_ + every) return;
  // The snapshot replaces log entries, so what it covers must be durable in the state first.
  flushing_ = true;
  host_.flush_state(applied);
}

void Driver::compact(uint64_t applied) {
  // A snapshot installed meanwhile may have moved past `applied`; the engine then refuses.
  const std::string reference = encode_state_ref(applied);
  std::optional<raft::SnapshotMeta> meta = engine_.compact(raft::Index(applied), reference);
  if (!meta) return;
  host_.save_snapshot(raft::Snapshot{*meta, reference});
  snapshot_index_ = applied;
  host_.note("compacted the log up to index " + std::to_string(applied));
}

// --- Reads ------------------------------------------------------------------------------------

void Driver::read(ReadDone done, uint32_t timeout_ticks) {
  assert_owner();
  if (reads_.size() >= options_.max_pending_reads) return done(ReadOutcome::kBusy);
  const ReadPlace place{ReadPlace::kUnsent, 0, ++next_read_order_};
  read_deadlines_.add(ticks_ + timeout_ticks, place);
  reads_.emplace(place, std::move(done));
}

Driver::ReadDone Driver::take_read(std::map<ReadPlace, ReadDone>::iterator read) {
  const bool registered = read_deadlines_.cancel(read->first);
  SYNOD_ASSERT(registered);
  ReadDone done = std::move(read->second);
  reads_.erase(read);
  return done;
}

// Moves the reads in [first, last), in order, to the end of the line at (stage, group), their
// deadlines with them. Precondition: [first, last) holds places of one stage, not `stage`.
void Driver::move_reads(ReadPlace first, ReadPlace last, ReadPlace::Stage stage, uint64_t group) {
  SYNOD_ASSERT(first < last && stage != first.stage);
  auto it = reads_.lower_bound(first);
  while (it != reads_.end() && it->first < last) {
    auto read = reads_.extract(it++);
    const ReadPlace to{stage, group, ++next_read_order_};
    const bool registered = read_deadlines_.rekey(read.key(), to);
    SYNOD_ASSERT(registered);
    read.key() = to;
    reads_.insert(std::move(read));
  }
}

// Every read asked since the last round shares one ReadIndex round. The reads not yet asked
// come first among the places.
void Driver::submit_reads() {
  const ReadPlace first{ReadPlace::kUnsent, 0, 0};
  const ReadPlace last{ReadPlace::kInRound, 0, 0};
  if (reads_.empty() || !(reads_.begin()->first < last)) return;
  const uint64_t context = next_read_context_++;
  const raft::Status s = engine_.read_index(context);
  if (read_should_wait(s)) return;
  if (s != raft::Status::kOk && s != raft::Status::kForwarded) {
    std::vector<ReadDone> failed;
    while (!reads_.empty() && reads_.begin()->first < last) {
      failed.push_back(take_read(reads_.begin()));
    }
    for (ReadDone& done : failed) done(ReadOutcome::kNoLeader);
    return;
  }
  move_reads(first, last, ReadPlace::kInRound, context);
  rounds_[context] = ticks_;
}

// thesis 6.4 step 4: answer once the state machine has caught up with the read index. The reads
// waiting for it come last among the places, by read index.
void Driver::serve_reads() {
  const uint64_t applied = host_.applied_index();
  const ReadPlace first{ReadPlace::kReady, 0, 0};
  for (auto it = reads_.lower_bound(first); it != reads_.end() && it->first.group <= applied;
       it = reads_.lower_bound(first)) {
    take_read(it)(ReadOutcome::kOk);
  }
}

void Driver::abandon_reads() {
  assert_owner();
  expire_reads_through(UINT64_MAX);
}

// Fails every read whose deadline is at or before `last_tick`, in the order of their places, and
// asks again the rounds that look lost. Only the expired reads are looked at, and the rounds.
void Driver::expire_reads_through(uint64_t last_tick) {
  std::vector<ReadPlace> places = read_deadlines_.pop_expired(last_tick);
  std::sort(places.begin(), places.end());
  std::vector<std::pair<ReadDone, ReadOutcome>> expired;
  expired.reserve(places.size());
  for (const ReadPlace& place : places) {
    auto read = reads_.extract(place);
    SYNOD_ASSERT(!read.empty());
    const bool asked = place.stage != ReadPlace::kUnsent;
    expired.emplace_back(std::move(read.mapped()),
                         asked ? ReadOutcome::kTimedOut : ReadOutcome::kNoLeader);
  }
  retry_lost_rounds();
  for (auto& [done, outcome] : expired) done(outcome);
}

// A round lost with a leader change is asked again in the next one; a round with no read left
// is forgotten.
void Driver::retry_lost_rounds() {
  for (auto round = rounds_.begin(); round != rounds_.end();) {
    const ReadPlace first{ReadPlace::kInRound, round->first, 0};
    const ReadPlace last{ReadPlace::kInRound, round->first + 1, 0};
    auto read = reads_.lower_bound(first);
    bool waiting = read != reads_.end() && read->first < last;
    if (waiting && engine_.leader() != raft::kNoNode &&
        ticks_ >= round->second + options_.read_retry_ticks) {
      move_reads(first, last, ReadPlace::kUnsent, 0);
      waiting = false;
    }
    round = waiting ? std::next(round) : rounds_.erase(round);
  }
}

}  // namespace synod::replica
