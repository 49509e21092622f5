// The normal case (OSDI 4.2): requests, pre-prepare, prepare, commit, and execution in order.
#include <algorithm>

#include "base/assert.h"
#include "core/pbft/pbft.h"

namespace synod::pbft {

namespace {

constexpr size_t kMaxRuns = 1 << 16;     // runs tracked at once (votes of a faulty
                                         // replica cannot grow it past this)
constexpr size_t kMaxEarlierClaims = 4;  // digests remembered per seq from earlier views

// Adds `c` to a replica's Q claims for one seq: one claim per digest, at its newest view,
// the newest few kept (thesis 3.2.4 bounds Q the same way).
void remember(std::vector<Claim>& claims, const Claim& c) {
  auto same = std::find_if(claims.begin(), claims.end(),
                           [&](const Claim& x) { return x.digest == c.digest; });
  if (same != claims.end()) {
    same->view = std::max(same->view, c.view);
  } else {
    claims.push_back(c);
  }
  std::sort(claims.begin(), claims.end(),
            [](const Claim& a, const Claim& b) { return a.view > b.view; });
  if (claims.size() > kMaxEarlierClaims) claims.resize(kMaxEarlierClaims);
}

// A slot's record passes from one view to a later one: what it held becomes an earlier claim,
// and the bodies of the requests the claims name go along (only those).
void carry_earlier(SlotRecord& rec, const SlotRecord& before, const Claim& old_claim,
                   bool old_prepared) {
  rec.earlier_prepared = old_prepared ? old_claim : before.earlier_prepared;
  rec.earlier_preprepared = before.earlier_preprepared;
  remember(rec.earlier_preprepared, old_claim);
  std::vector<AuthenticatedRequest> bodies = before.earlier_bodies;
  if (!before.request.request.is_null()) bodies.push_back(before.request);
  rec.earlier_bodies.clear();
  for (const AuthenticatedRequest& b : bodies) {
    const Digest d = digest(b.request);
    const bool named = (rec.earlier_prepared && rec.earlier_prepared->digest == d) ||
                       std::any_of(rec.earlier_preprepared.begin(), rec.earlier_preprepared.end(),
                                   [&](const Claim& c) { return c.digest == d; });
    const bool kept = std::any_of(rec.earlier_bodies.begin(), rec.earlier_bodies.end(),
                                  [&](const AuthenticatedRequest& x) { return x == b; });
    if (named && !kept) rec.earlier_bodies.push_back(b);
  }
}

}  // namespace

// --- Requests (OSDI 4.1) ---------------------------------------------------------------------

void Pbft::receive_request(const AuthenticatedRequest& r, bool local) {
  if (!check_request(r)) return drop("a request whose MAC does not check");
  const Digest d = digest(r.request);
  if (executed_set_.contains(d)) return;
  auto [it, fresh] = pending_.try_emplace(d, Pending{r, local});
  if (!fresh) return;
  if (changing_) {
    // The view change's own timer runs (maybe_start_view_change_timer). This replica's own
    // request goes to every replica, as a client's retransmission does: a replica that waits
    // alone for a new view must not hold its clients' requests back, the others may order
    // them in their view, and this one executes them once it has their commits.
    if (local) {
      it->second.relayed = now_;
      Msg m = make(Kind::kRequest);
      m.requests = {r};
      broadcast(m, /*immediate=*/true);
    }
    return;
  }
  if (primary(view_) == cfg_.id) {
    if (timer_started_ == 0) timer_started_ = now_;
    queue_.push_back(d);
    maybe_pre_prepare();
  } else if (!local) {
    if (timer_started_ == 0) timer_started_ = now_;
  } else {
    // This replica's own request is, until it goes to every replica, as a PBFT client's first
    // send to the primary (OSDI 4.1): no backup suspects the primary over it yet, this one
    // included, so a replica cut off from its peers (or just restarted) does not time out
    // into a view change alone.
    it->second.quiet = true;
    ++quiet_;
    it->second.relayed = now_;
    Msg m = make(Kind::kRequest);
    m.requests = {r};
    send(m, primary(view_), /*immediate=*/true);
  }
}

// A relayed request that has not executed goes again, now to every replica, as a PBFT client
// retransmits (OSDI 4.1; this replica is the client of its own requests): the first copy may
// have been lost (a peer connection not up yet), and if the primary is faulty every backup
// must know of the request to time out with this one (OSDI 4.4), or this replica would ask
// for a view change alone.
void Pbft::relay_waiting_requests() {
  if (changing_ || primary(view_) == cfg_.id) return;
  constexpr size_t kMaxRelayedPerRound = 64;
  size_t sent = 0;
  for (auto& [d, p] : pending_) {
    if (!p.local || now_ < p.relayed + 2 * cfg_.status_ticks) continue;
    p.relayed = now_;
    if (p.quiet) {
      p.quiet = false;
      --quiet_;
      if (timer_started_ == 0) timer_started_ = now_;
    }
    Msg m = make(Kind::kRequest);
    m.requests = {p.request};
    broadcast(m, /*immediate=*/true);
    if (++sent == kMaxRelayedPerRound) break;
  }
}

// At the primary a relayed request joins the queue; at a backup it starts the view-change timer
// (OSDI 4.4: a backup that knows of a request the primary does not order suspects it).
void Pbft::on_request(const Msg& m) {
  if (changing_) return;
  receive_request(m.requests.front(), /*local=*/false);
}

// --- Pre-prepare -----------------------------------------------------------------------------

bool Pbft::in_window(Index first, uint32_t count) const {
  return count > 0 && first > stable_ && first + (count - 1) <= stable_ + cfg_.log_window;
}

size_t Pbft::runs_in_flight() const {
  size_t n = 0;
  for (const auto& [key, votes] : runs_) {
    if (key.view == view_ && votes.accepted && !votes.committed) ++n;
  }
  return n;
}

// The primary orders what waits, a batch per pre-prepare; while max_runs_in_flight runs are
// open, requests gather into the next batch (OSDI 4.2, "batching").
void Pbft::maybe_pre_prepare() {
  // While a snapshot installs, its marks hold the slots up to it (at view 0): no new run goes
  // there, nor anywhere until the state is here.
  if (changing_ || installing_ || primary(view_) != cfg_.id) return;
  // Catching up may have executed past what this primary assigned (runs of earlier views), or
  // certified slots it has yet to execute: those are settled.
  next_seq_ = std::max(next_seq_, log_.committed() + 1);
  while (!queue_.empty() && runs_in_flight() < cfg_.max_runs_in_flight) {
    while (std::optional<Index> last = certified_through(next_seq_)) next_seq_ = *last + 1;
    const Index high = stable_ + cfg_.log_window;
    if (next_seq_ > high || next_seq_ > log_.last_index() + 1) return;
    uint64_t room = std::min<uint64_t>(cfg_.max_batch, high - next_seq_ + 1);
    // A run ends at the next checkpoint: a replica that fell behind catches up to a stable
    // checkpoint, then takes commits for the runs after it, so none may start below one.
    const uint64_t k = cfg_.checkpoint_interval;
    room = std::min<uint64_t>(room, k - (next_seq_.value - 1) % k);
    if (auto next = committed_runs_.upper_bound(next_seq_); next != committed_runs_.end()) {
      room = std::min<uint64_t>(room, next->first - next_seq_);
    }
    std::vector<AuthenticatedRequest> batch;
    while (!queue_.empty() && batch.size() < room) {
      const Digest d = queue_.front();
      queue_.pop_front();
      auto it = pending_.find(d);
      if (it == pending_.end() || !ordered_.insert(d).second) continue;
      batch.push_back(it->second.request);
    }
    if (batch.empty()) return;
    const Index first = next_seq_;
    std::optional<RunKey> key = accept_run(view_, first, batch);
    SYNOD_ASSERT(key.has_value());
    next_seq_ = first + batch.size();
    Msg pp = make(Kind::kPrePrepare);
    pp.seq = first;
    pp.requests = std::move(batch);
    broadcast(pp, /*immediate=*/false);  // after the run is durable: it is a promise
    check_prepared(*key);
  }
}

void Pbft::on_pre_prepare(const Msg& m) {
  if (m.view != view_ || changing_ || m.sender != primary(view_)) return;
  if (!in_window(m.seq, static_cast<uint32_t>(m.requests.size()))) return;
  pre_prepare(m.seq, m.requests, /*trusted=*/false);
}

// A backup takes a pre-prepare of the current view: past the log's end it waits (the log stays
// contiguous); otherwise the run is accepted, persisted, and prepared to every replica.
void Pbft::pre_prepare(Index first, const std::vector<AuthenticatedRequest>& requests,
                       bool trusted) {
  if (!trusted) {
    for (const AuthenticatedRequest& r : requests) {
      if (check_request(r)) continue;
      // A faulty client's authenticator may check at some replicas only. The run is held: once
      // f + 1 backups prepared it, one of them is honest and authenticated every request in it.
      drop("a pre-prepare with a request whose MAC does not check");
      if (unauthenticated_.size() < cfg_.log_window) {
        unauthenticated_.try_emplace({view_, first}, requests);
        accept_unauthenticated(view_, first);
      }
      return;
    }
  }
  if (first > log_.last_index() + 1) {
    future_.try_emplace(first, Future{requests, trusted});
    return;
  }
  std::optional<RunKey> key = accept_run(view_, first, requests);
  if (!key) return;
  // What the run orders is awaited, except what executed here already (a new view re-issues
  // the slots after its checkpoint, which this replica may have executed, before a restart
  // too): it would hold the view-change timer on with nothing left to wait for.
  for (size_t i = 0; i < requests.size(); ++i) {
    const AuthenticatedRequest& r = requests[i];
    if (r.request.is_null() || first + i <= log_.committed()) continue;
    const Digest d = digest(r.request);
    if (!executed_set_.contains(d)) pending_.try_emplace(d, Pending{r, false});
  }
  if (timer_started_ == 0 && pending_.size() > quiet_ && !changing_) timer_started_ = now_;
  if (primary(view_) != cfg_.id) {
    Msg p = make(Kind::kPrepare);
    p.seq = key->first;
    p.count = key->count;
    p.digest = key->digest;
    broadcast(p, /*immediate=*/false);  // after the run is durable
    runs_[*key].prepares.insert(cfg_.id);
  }
  check_prepared(*key);
  check_committed(*key);
  drain_future();
}

void Pbft::drain_future() {
  while (!future_.empty() && future_.begin()->first <= log_.last_index() + 1) {
    auto node = future_.extract(future_.begin());
    if (node.key() <= stable_) continue;
    pre_prepare(node.key(), node.mapped().requests, node.mapped().trusted);
  }
}

// Writes a run into the log at `view` (OSDI 4.2: a backup accepts a pre-prepare if it has not
// accepted one for the same view and sequence number with a different digest). Sequence numbers
// already executed must hold the same request. What a slot held from an earlier view is kept in
// its record: the view change reports it (thesis 3.2.4, P and Q). nullopt: not accepted.
std::optional<Pbft::RunKey> Pbft::accept_run(View view, Index first,
                                             const std::vector<AuthenticatedRequest>& requests) {
  if (requests.empty() || first <= log_.snapshot().index) return std::nullopt;
  std::vector<Digest> digests;
  std::vector<Entry> writes;
  for (size_t i = 0; i < requests.size(); ++i) {
    const Index seq = first + i;
    const Digest d = digest(requests[i].request);
    digests.push_back(d);
    if (seq <= log_.committed()) {
      if (digest_at(seq) != d) return std::nullopt;  // executed: settled
      continue;
    }
    // Committed but not yet executed: settled too (the record is rewritten at this view).
    if (certified_through(seq) && digest_at(seq) != d) return std::nullopt;
    SlotRecord rec;
    rec.request = requests[i];
    if (seq <= log_.last_index()) {
      const Entry& old = log_.at(seq);
      SlotRecord before = *decode_record(old.data);
      const Digest old_digest = digest(before.request.request);
      if (old.term == view) {
        if (old_digest != d) return std::nullopt;  // an equivocating primary
        rec = std::move(before);
      } else {
        carry_earlier(rec, before, Claim{seq, old_digest, old.term}, before.prepared);
      }
    }
    writes.push_back(make_entry(seq, view, std::move(rec)));
  }
  if (!writes.empty()) {
    if (writes.front().index > log_.last_index() + 1) return std::nullopt;
    log_.replace(writes);
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!requests[i].request.is_null()) bodies_[digests[i]] = requests[i];
  }
  const RunKey key{view, first, static_cast<uint32_t>(requests.size()), run_digest(first, digests)};
  RunVotes& votes = runs_[key];
  if (!votes.accepted) votes.since = now_;
  votes.accepted = true;
  return key;
}

// Messages get lost; a run of this view still open a while after this replica accepted it is
// sent again: its pre-prepare by the primary, this replica's prepare or commit (thesis 5.2,
// retransmission). Bounded by the runs in the log window.
void Pbft::retransmit_open_runs() {
  if (changing_) return;
  for (const auto& [key, votes] : runs_) {
    if (key.view != view_ || !votes.accepted || votes.committed) continue;
    if (now_ < votes.since + cfg_.status_ticks) continue;
    // Only what is durable is promised again (the first send waited for the fsync too).
    if (key.last() > log_.persisted()) continue;
    Msg m = make(Kind::kCommit);
    m.seq = key.first;
    m.count = key.count;
    m.digest = key.digest;
    if (votes.prepared) {
      broadcast(m, /*immediate=*/true);  // its prepared mark is durable already
      continue;
    }
    if (primary(view_) != cfg_.id) {
      m.kind = Kind::kPrepare;
      broadcast(m, /*immediate=*/true);
      continue;
    }
    if (key.first < log_.first_index() || key.last() > log_.last_index()) continue;
    Msg pp = make(Kind::kPrePrepare);
    pp.seq = key.first;
    for (Index seq = key.first; seq <= key.last(); ++seq) {
      pp.requests.push_back(decode_record(log_.at(seq).data)->request);
    }
    broadcast(pp, /*immediate=*/true);
  }
}

// --- Prepare and commit ----------------------------------------------------------------------

void Pbft::on_prepare(const Msg& m) {
  if (m.view != view_ || changing_ || m.sender == primary(view_)) return;
  if (!in_window(m.seq, m.count) || runs_.size() >= kMaxRuns) return;
  const RunKey key{m.view, m.seq, m.count, m.digest};
  runs_[key].prepares.insert(m.sender);
  accept_unauthenticated(m.view, m.seq);
  check_prepared(key);
}

// A held pre-prepare (pre_prepare) is taken once f + 1 backups other than this replica
// prepared its run: at least one of them is honest and checked the requests' MACs.
void Pbft::accept_unauthenticated(View view, Index first) {
  auto held = unauthenticated_.find({view, first});
  if (held == unauthenticated_.end() || view != view_ || changing_) return;
  std::vector<Digest> digests;
  for (const AuthenticatedRequest& r : held->second) digests.push_back(digest(r.request));
  const RunKey key{view, first, static_cast<uint32_t>(digests.size()), run_digest(first, digests)};
  auto votes = runs_.find(key);
  if (votes == runs_.end()) return;
  const size_t others = votes->second.prepares.size() - votes->second.prepares.count(cfg_.id);
  if (others < f_ + 1) return;
  std::vector<AuthenticatedRequest> requests = std::move(held->second);
  unauthenticated_.erase(held);
  pre_prepare(first, requests, /*trusted=*/true);
}

// prepared (OSDI 4.2): the pre-prepare and n - f - 1 matching prepares from distinct backups
// (2f at n = 3f + 1). The replica records it durably before it commits: a view change must
// report it even after a crash.
void Pbft::check_prepared(const RunKey& key) {
  auto it = runs_.find(key);
  if (it == runs_.end()) return;
  RunVotes& v = it->second;
  if (v.prepared || !v.accepted || key.view != view_ || changing_) return;
  if (v.prepares.size() + 1 < quorum_) return;
  // The run must still be in the log at this view (a snapshot installed since may have taken
  // it): the prepared mark goes on what was pre-prepared.
  std::vector<Entry> rewrite;
  std::vector<Digest> digests;
  for (Index seq = key.first; seq <= key.last(); ++seq) {
    if (seq <= log_.committed()) {
      std::optional<Digest> d = digest_at(seq);
      if (!d) return;
      digests.push_back(*d);
      continue;
    }
    if (seq > log_.last_index() || log_.at(seq).term != key.view) return;
    SlotRecord rec = *decode_record(log_.at(seq).data);
    digests.push_back(digest(rec.request.request));
    rec.prepared = true;
    rewrite.push_back(make_entry(seq, key.view, std::move(rec)));
  }
  if (run_digest(key.first, digests) != key.digest) return;
  v.prepared = true;
  log_.replace(rewrite);
  Msg c = make(Kind::kCommit);
  c.seq = key.first;
  c.count = key.count;
  c.digest = key.digest;
  broadcast(c, /*immediate=*/false);  // after the prepared mark is durable
  v.commits.insert(cfg_.id);
  check_committed(key);
}

void Pbft::on_commit(const Msg& m) {
  if (m.view > view_ || m.seq + (m.count - 1) <= log_.committed()) return;
  // A replica behind its peers takes commits past its window too: they are how it catches up.
  // A run may span the stable checkpoint (a new view's, or one a faulty primary made): its
  // slots past the checkpoint are still to execute here.
  const Index horizon = std::max(stable_, log_.committed()) + kCatchUpWindows * cfg_.log_window;
  if (m.seq + (m.count - 1) <= stable_ || m.seq + (m.count - 1) > horizon ||
      runs_.size() >= kMaxRuns) {
    return;
  }
  const RunKey key{m.view, m.seq, m.count, m.digest};
  runs_[key].commits.insert(m.sender);
  check_committed(key);
}

// The requests of a run, from what this replica executed, its log, or bodies peers sent,
// checked against the run's digest. For every slot past the executed ones that does not
// already hold its request prepared at the run's view, `to_write` gets the record to write:
// a committed request is reported as prepared by every later view change, even after a
// restart (n - f commits show f + 1 honest replicas prepared it). False if the bodies are not
// all at hand or do not match.
//
// The log's own request at the run's view is tried first, then the bodies peers sent: a
// faulty primary may have pre-prepared something else here than what the others committed.
bool Pbft::run_bodies(const RunKey& key, std::vector<Entry>* to_write) const {
  return run_bodies(key, /*prefer_fetched=*/false, to_write) ||
         run_bodies(key, /*prefer_fetched=*/true, to_write);
}

bool Pbft::run_bodies(const RunKey& key, bool prefer_fetched, std::vector<Entry>* to_write) const {
  std::vector<Digest> digests;
  std::vector<Entry> writes;  // every slot past the executed ones, contiguous
  bool changed = false;
  for (Index seq = key.first; seq <= key.last(); ++seq) {
    const bool in_log = seq >= log_.first_index() && seq <= log_.last_index();
    if (seq <= log_.committed()) {
      // Executed here; from a snapshot the slot's request is not at hand, only its state.
      std::optional<Digest> executed = digest_at(seq);
      if (!executed) return false;
      digests.push_back(*executed);
      continue;
    }
    std::optional<SlotRecord> held = in_log ? decode_record(log_.at(seq).data) : std::nullopt;
    const Entry* entry = in_log ? &log_.at(seq) : nullptr;
    auto fetched = fetched_.find(seq);
    const bool fetched_at_view = fetched != fetched_.end() && fetched->second.view == key.view;
    std::optional<AuthenticatedRequest> body;
    if (prefer_fetched && fetched_at_view) {
      body = fetched->second.request;
    } else if (held && entry->term == key.view) {
      body = held->request;
    } else if (fetched_at_view) {
      body = fetched->second.request;
    } else if (held) {
      body = held->request;
    }
    if (!body) return false;
    digests.push_back(digest(body->request));
    if (held && entry->term == key.view && held->prepared && held->request == *body) {
      writes.push_back(*entry);
      continue;
    }
    changed = true;
    SlotRecord rec;
    rec.request = *body;
    rec.prepared = true;
    if (held && entry->term != key.view) {
      carry_earlier(rec, *held, Claim{seq, digest(held->request.request), entry->term},
                    held->prepared);
    } else if (held) {
      rec.earlier_prepared = held->earlier_prepared;
      rec.earlier_preprepared = held->earlier_preprepared;
      rec.earlier_bodies = held->earlier_bodies;
    }
    writes.push_back(make_entry(seq, key.view, std::move(rec)));
  }
  if (run_digest(key.first, digests) != key.digest) return false;
  if (changed) *to_write = std::move(writes);
  return true;
}

// committed-local (OSDI 4.2): n - f matching commits, and the run's requests at hand. A
// replica may execute on the commit certificate alone, bodies checked against its digest: the
// certificate shows that f + 1 honest replicas prepared the run, which is what committed means.
void Pbft::check_committed(const RunKey& key) {
  auto it = runs_.find(key);
  if (it == runs_.end()) return;
  RunVotes& v = it->second;
  if (v.committed || v.commits.size() < quorum_) return;
  if (key.last() > log_.committed()) {
    std::vector<Entry> writes;
    if (!run_bodies(key, &writes)) return;
    if (!writes.empty() && writes.front().index > log_.last_index() + 1) return;  // a hole
    log_.replace(writes);
    committed_runs_[key.first] = std::max(committed_runs_[key.first], key.last());
  }
  v.committed = true;
  execute();
}

// Executes committed runs in sequence order (OSDI 4.2: "executes the operation ... after all
// requests with lower sequence numbers have been executed").
void Pbft::execute() {
  // A checkpoint taken below may make one stable, which catches up (catch_up_to_checkpoint)
  // and executes again: that waits until this pass is over.
  if (executing_) return;
  executing_ = true;
  const Index before = log_.committed();
  for (size_t guard = 0; guard <= committed_runs_.size(); ++guard) {
    const Index next = log_.committed() + 1;
    Index last = log_.committed();
    for (auto it = committed_runs_.begin(); it != committed_runs_.end() && it->first <= next;) {
      if (it->second < next) {
        it = committed_runs_.erase(it);
        continue;
      }
      last = std::max(last, it->second);
      ++it;
    }
    if (last < next || last > log_.last_index()) break;
    bool marked = false;
    for (Index seq = next; seq <= last; ++seq) {
      // A snapshot being installed marked this slot (install()): the state through it comes
      // from the snapshot, whatever runs were committed there, and the mark is no request.
      const SlotRecord rec = *record(seq);
      if (rec.installed_through) {
        marked = true;
        break;
      }
      const Digest d = digest(rec.request.request);
      executed_digest_ = chain(executed_digest_, seq, d);
      chain_[seq] = executed_digest_;
      if (auto p = pending_.find(d); p != pending_.end()) {
        if (p->second.quiet) --quiet_;
        pending_.erase(p);
      }
      ordered_.erase(d);
      remember_executed(d);
      if (auto read = reads_.find(d); read != reads_.end()) {
        ready_.read_state({read->second, seq});
        reads_.erase(read);
      }
      log_.commit_to(seq);
      if (seq.value % cfg_.checkpoint_interval == 0) take_checkpoint(seq);
    }
    if (marked) break;
  }
  executing_ = false;
  if (log_.committed() == before) return;
  view_change_attempts_ = 0;
  reset_timer();
  catch_up_to_checkpoint();
  maybe_pre_prepare();
}

// The newest executed requests, so that a retransmitted one is not taken for a new one.
void Pbft::remember_executed(const Digest& d) {
  if (executed_set_.insert(d).second) executed_recently_.push_back(d);
  if (executed_recently_.size() > kExecutedMemory) {
    executed_set_.erase(executed_recently_.front());
    executed_recently_.pop_front();
  }
}

}  // namespace synod::pbft
