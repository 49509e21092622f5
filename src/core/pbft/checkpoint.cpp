// Checkpoints, watermarks and garbage collection (OSDI 4.3), and how a replica that fell
// behind catches up: retransmission on STATUS (thesis 5.2), and state transfer through a
// snapshot when peers no longer hold the log it misses.
#include <algorithm>
#include <set>

#include "base/assert.h"
#include "core/pbft/pbft.h"

namespace synod::pbft {

namespace {

constexpr size_t kClaimsPerReplica = 4;       // checkpoint claims kept per replica
constexpr uint64_t kClaimsEveryStatuses = 4;  // own claims sent again with every 4th STATUS

}  // namespace

// --- Checkpoints (OSDI 4.3) ------------------------------------------------------------------

void Pbft::take_checkpoint(Index seq) {
  const Digest& d = chain_.at(seq);
  last_checkpoint_ = std::max(last_checkpoint_, seq);  // synced before the message leaves
  checkpoint_claims_[cfg_.id][seq] = d;
  Msg c = make(Kind::kCheckpoint);
  c.seq = seq;
  c.digest = d;
  broadcast(c, /*immediate=*/false);
  size_t matching = 0;
  for (const auto& [replica, claims] : checkpoint_claims_) {
    auto it = claims.find(seq);
    if (it != claims.end() && it->second == d) ++matching;
  }
  if (matching >= quorum_) make_stable(seq, d);
}

void Pbft::on_checkpoint(const Msg& m) {
  if (m.seq <= stable_ || m.seq.value % cfg_.checkpoint_interval != 0) return;
  std::map<Index, Digest>& claims = checkpoint_claims_[m.sender];
  claims[m.seq] = m.digest;
  while (claims.size() > kClaimsPerReplica) claims.erase(claims.begin());
  size_t matching = 0;
  for (const auto& [replica, theirs] : checkpoint_claims_) {
    auto it = theirs.find(m.seq);
    if (it != theirs.end() && it->second == m.digest) ++matching;
  }
  if (matching >= quorum_) {
    make_stable(m.seq, m.digest);  // the stable certificate
  } else {
    catch_up_to_checkpoint();  // maybe a weak certificate now
  }
}

// A checkpoint with n - f matching claims is stable: the low watermark moves to it, and the
// protocol state it covers goes (OSDI 4.3). A replica that has not executed that far catches up.
void Pbft::make_stable(Index seq, const Digest& d) {
  if (seq <= stable_) return;
  stable_ = seq;
  stable_digest_ = d;
  std::erase_if(runs_, [&](const auto& r) { return r.first.last() <= seq; });
  std::erase_if(committed_runs_, [&](const auto& r) { return r.second <= seq; });
  for (auto& [replica, claims] : checkpoint_claims_) {
    claims.erase(claims.begin(), claims.upper_bound(seq));
  }
  future_.erase(future_.begin(), future_.upper_bound(seq));
  std::erase_if(unauthenticated_, [&](const auto& u) { return u.first.second <= seq; });
  std::erase_if(bodies_, [&](const auto& b) { return !pending_.contains(b.first); });
  fetched_.erase(fetched_.begin(), fetched_.upper_bound(log_.committed()));
  catch_up_to_checkpoint();
  maybe_pre_prepare();  // the high watermark moved
}

// --- Catching up -----------------------------------------------------------------------------

Msg Pbft::make_status() const {
  Msg s = make(Kind::kStatus);
  s.seq = log_.committed();
  s.stable = stable_;
  s.changing = changing_;
  // Bodies already at hand past what executed: peers send the ones after them.
  uint32_t held = 0;
  for (auto it = fetched_.find(log_.committed() + 1);
       it != fetched_.end() && it->first == log_.committed() + 1 + held; ++it) {
    ++held;
  }
  s.count = held;
  return s;
}

void Pbft::send_status() {
  broadcast(make_status(), /*immediate=*/true);
  // Every few rounds this replica's state claims go out again too. A peer that fell behind
  // checks the state it fetches against f + 1 claims; those it got with the snapshot offer
  // may have been lost, and while it waits for the state it sends nothing, so it cannot ask.
  if ((now_ / cfg_.status_ticks) % kClaimsEveryStatuses == 0) send_state_claims(raft::kNoNode);
}

// Answers a peer's STATUS with what it lacks: the new view it missed, this replica's view
// change, bodies and commits past what it executed (or the snapshot, when this log no longer
// holds them), and the checkpoint that makes its low watermark move.
void Pbft::on_status(const Msg& m) {
  const raft::NodeId peer = m.sender;
  if (!changing_ && new_view_ && (m.view < view_ || (m.view == view_ && m.changing))) {
    Msg nv = make(Kind::kNewView);
    nv.new_view = new_view_;
    send(nv, peer, true);
  }
  if (changing_ && m.view <= view_) {
    auto mine = view_changes_.find(cfg_.id);
    if (mine != view_changes_.end()) {
      Msg vc = make(Kind::kViewChange);
      vc.view_change = mine->second;
      send(vc, peer, true);
    }
  }
  if (m.seq < log_.committed()) {
    if (m.seq < log_.snapshot().index && local_snapshot_) {
      send_state_claims(peer);  // what its state fetch will be checked against
      Msg offer = make(Kind::kSnapshot);
      offer.seq = local_snapshot_->meta.index;
      std::copy(local_snapshot_->meta.digest.begin(), local_snapshot_->meta.digest.end(),
                offer.digest.begin());
      offer.data = local_snapshot_->data;
      send(offer, peer, true);
    } else {
      Msg bodies = make(Kind::kBodies);
      bodies.bodies = bodies_between(m.seq + 1 + m.count, log_.committed(), cfg_.log_window);
      if (!bodies.bodies.empty()) send(bodies, peer, true);
      for (const auto& [key, votes] : runs_) {
        if (!votes.commits.contains(cfg_.id) || key.last() <= m.seq) continue;
        // A commit promises the prepared mark: only once it is durable.
        if (key.last() > log_.persisted()) continue;
        Msg c = make(Kind::kCommit);
        c.view = key.view;
        c.seq = key.first;
        c.count = key.count;
        c.digest = key.digest;
        send(c, peer, true);
      }
    }
  }
  if (m.stable < stable_) {
    auto mine = chain_.find(stable_);
    if (mine != chain_.end() && mine->second == stable_digest_) {
      Msg c = make(Kind::kCheckpoint);
      c.seq = stable_;
      c.digest = stable_digest_;
      send(c, peer, true);
    }
  }
  // The newest checkpoint executed here, when it is not stable yet: with f other replicas'
  // it lets the peer catch up (catch_up_target) though no n - f certificate formed.
  if (last_checkpoint_ > stable_ && m.seq < last_checkpoint_) {
    if (auto mine = chain_.find(last_checkpoint_); mine != chain_.end()) {
      Msg c = make(Kind::kCheckpoint);
      c.seq = last_checkpoint_;
      c.digest = mine->second;
      send(c, peer, true);
    }
  }
}

std::vector<Body> Pbft::bodies_between(Index from, Index to, size_t max) const {
  std::vector<Body> out;
  for (Index seq = std::max(from, log_.first_index());
       seq <= std::min(to, log_.last_index()) && out.size() < max; ++seq) {
    const Entry& e = log_.at(seq);
    SlotRecord rec = *decode_record(e.data);
    if (rec.installed_through) break;  // not executed here: nothing to vouch for
    out.push_back(Body{seq, e.term, std::move(rec.request)});
  }
  return out;
}

void Pbft::on_fetch(const Msg& m) {
  Msg reply = make(Kind::kBodies);
  for (Index seq : m.wanted) {
    if (seq < log_.first_index() || seq > log_.last_index()) continue;
    const Entry& e = log_.at(seq);
    SlotRecord rec = *decode_record(e.data);
    if (rec.installed_through) continue;
    if (reply.bodies.size() + 1 + rec.earlier_bodies.size() > cfg_.max_batch) break;
    reply.bodies.push_back(Body{seq, e.term, std::move(rec.request)});
    // What earlier views pre-prepared there too: the new primary may have chosen one of them.
    for (AuthenticatedRequest& b : rec.earlier_bodies) {
      reply.bodies.push_back(Body{seq, e.term, std::move(b)});
    }
  }
  if (!reply.bodies.empty()) send(reply, m.sender, /*immediate=*/true);
}

// Bodies are kept untrusted until a certificate vouches for them: the commits of their run
// (check_committed) or the stable checkpoint's chain digest (catch_up_to_checkpoint).
void Pbft::on_bodies(const Msg& m) {
  const Index before = log_.committed();
  const uint32_t held = make_status().count;
  const Index horizon = log_.committed() + kCatchUpWindows * cfg_.log_window;
  std::set<Index> seen;  // a slot's first body is its request; the others are earlier ones
  for (const Body& b : m.bodies) {
    if (!b.request.request.is_null()) bodies_.try_emplace(digest(b.request.request), b.request);
    if (b.seq <= log_.committed() || b.seq > horizon || !seen.insert(b.seq).second) continue;
    fetched_[b.seq] = b;
  }
  catch_up_to_checkpoint();
  std::vector<RunKey> waiting;
  for (const auto& [key, votes] : runs_) {
    if (!votes.committed && votes.commits.size() >= quorum_) waiting.push_back(key);
  }
  for (const RunKey& key : waiting) check_committed(key);
  maybe_send_new_view();
  // Progress: ask the same peer for the next stretch at once (this ends when one brings none).
  const Msg status = make_status();
  if (log_.committed() > before || status.count > held) {
    send(status, m.sender, /*immediate=*/true);
  }
}

// The checkpoint a replica behind its peers executes up to: its stable checkpoint, or one that
// f + 1 peers claim with the same digest (a weak certificate, thesis 5.3.2: one of them is
// honest, and an honest replica executed that history, every request of it committed). The
// weak one need not be stable anywhere: a faulty replica withholding its checkpoint must not
// keep an honest one from catching up (n - f would need it then).
std::optional<std::pair<Index, Digest>> Pbft::catch_up_target() const {
  std::optional<std::pair<Index, Digest>> best;
  if (stable_ > log_.committed()) best = {stable_, stable_digest_};
  std::map<std::pair<Index, Digest>, size_t> votes;
  for (const auto& [replica, claims] : checkpoint_claims_) {
    if (replica == cfg_.id) continue;
    for (const auto& [seq, d] : claims) {
      if (seq > log_.committed() && (!best || seq > best->first)) ++votes[{seq, d}];
    }
  }
  for (const auto& [claim, count] : votes) {
    if (count >= f_ + 1 && (!best || claim.first > best->first)) best = claim;
  }
  return best;
}

// Executes up to the catch-up checkpoint on bodies from peers, once their chain digest from
// what this replica executed reaches the checkpoint's: the certificate vouches for every one.
void Pbft::catch_up_to_checkpoint() {
  if (executing_) return;  // execute() calls again when its pass is over
  const std::optional<std::pair<Index, Digest>> target = catch_up_target();
  if (!target) return;
  const auto& [to, target_digest] = *target;
  Digest d = executed_digest_;
  std::vector<Entry> writes;
  for (Index seq = log_.committed() + 1; seq <= to; ++seq) {
    auto it = fetched_.find(seq);
    if (it == fetched_.end()) return;
    d = chain(d, seq, digest(it->second.request.request));
    SlotRecord rec;
    rec.request = it->second.request;
    rec.prepared = true;  // committed: a view change must report it even after a restart
    writes.push_back(make_entry(seq, it->second.view, std::move(rec)));
  }
  if (d != target_digest) {
    // A faulty peer's bodies: drop them all and let the next answers bring honest ones.
    fetched_.clear();
    return drop("bodies that do not match the checkpoint");
  }
  log_.replace(writes);
  committed_runs_[writes.front().index] = to;
  execute();
}

// A replica behind a peer's snapshot installs it if the checkpoint is vouched for: it is this
// replica's stable checkpoint, or f + 1 replicas (one of them honest) offered it. The state
// itself comes through the driver's state fetch, checked against claims (state_certified).
void Pbft::on_snapshot(const Msg& m) {
  if (m.seq <= log_.committed() || m.seq <= log_.snapshot().index) return;
  std::set<raft::NodeId>& offered = offers_[{m.seq, m.digest}];
  offered.insert(m.sender);
  const bool vouched = (m.seq == stable_ && m.digest == stable_digest_) || offered.size() >= f_ + 1;
  if (!vouched) return;
  install(m.seq, m.digest, m.data);
}

// --- States (OSDI 4.3's state transfer) -------------------------------------------------------

// The driver retained this replica's state at `index` (a multiple of the state interval): it
// claims the state's digest there, so that a replica fetching that state can check it.
void Pbft::state_retained(Index index, const std::string& digest) {
  if (index.value % cfg_.state_interval != 0 || digest.size() != Digest{}.size()) return;
  Msg c = make(Kind::kState);
  c.seq = index;
  std::copy(digest.begin(), digest.end(), c.digest.begin());
  std::map<Index, Digest>& mine = state_claims_[cfg_.id];
  mine[index] = c.digest;
  while (mine.size() > kClaimsPerReplica) mine.erase(mine.begin());
  broadcast(c, /*immediate=*/true);
}

void Pbft::on_state(const Msg& m) {
  if (m.seq.value % cfg_.state_interval != 0 || m.sender == cfg_.id) return;
  std::map<Index, Digest>& claims = state_claims_[m.sender];
  claims[m.seq] = m.digest;
  while (claims.size() > kClaimsPerReplica) claims.erase(claims.begin());
}

void Pbft::send_state_claims(raft::NodeId to) {
  auto mine = state_claims_.find(cfg_.id);
  if (mine == state_claims_.end()) return;
  for (const auto& [index, d] : mine->second) {
    Msg c = make(Kind::kState);
    c.seq = index;
    c.digest = d;
    if (to == raft::kNoNode) {
      broadcast(c, /*immediate=*/true);
    } else {
      send(c, to, /*immediate=*/true);
    }
  }
}

// A state fetched at `index` is taken if f + 1 replicas (one of them honest, whose state there
// is the one every honest replica had) claimed its digest there. Execution is deterministic, so
// no other state at that index can carry an honest claim. A faulty member that serves a state
// of its own making is found out here, and the driver asks the next one.
bool Pbft::state_certified(Index index, const std::string& digest) const {
  if (cfg_.bugs.unchecked_state) return true;
  if (digest.size() != Digest{}.size()) return false;
  Digest d{};
  std::copy(digest.begin(), digest.end(), d.begin());
  size_t claimed = 0;
  for (const auto& [replica, claims] : state_claims_) {
    auto it = claims.find(index);
    if (it != claims.end() && it->second == d) ++claimed;
  }
  return claimed >= f_ + 1;
}

// Installing takes two Readys. The first marks every slot up to the snapshot as not executed
// here (its records name the snapshot); once that is durable, the second installs the
// snapshot, whose state the driver then fetches. A restart in between, or after the state is
// restored but before the snapshot's record is, finds the marks (restore()).
void Pbft::install(Index seq, const Digest& d, std::string data) {
  if (installing_) return;
  // The checkpoint is vouched for (this replica's stable one, or f + 1 replicas' snapshot): it
  // is stable, and from now on view changes report this replica's state from it (the marks
  // below replace what the slots held).
  make_stable(seq, d);
  std::vector<Entry> marks;
  for (Index s = log_.committed() + 1; s <= seq; ++s) {
    SlotRecord rec;
    rec.installed_through = seq;
    rec.installed_digest = d;
    marks.push_back(make_entry(s, View(0), std::move(rec)));
  }
  log_.replace(marks);
  if (next_seq_ <= seq) next_seq_ = seq + 1;
  installing_ = Install{seq, d, std::move(data)};
}

void Pbft::finish_install() {
  const Install inst = std::move(*installing_);
  installing_.reset();
  if (inst.seq <= log_.committed()) return;  // caught up meanwhile
  const Index seq = inst.seq;
  const Digest& d = inst.digest;
  std::string data = inst.data;
  // Nothing of the log survives: its slots past the snapshot are not what the state holds
  // (a term no slot has makes Log::restore drop them all).
  const Term unmatched = log_.term(seq).value_or(Term(0)) + 1;
  SnapshotMeta meta{seq, unmatched, conf_, std::string(d.begin(), d.end())};
  log_.restore(meta);
  executed_digest_ = d;
  chain_.clear();
  chain_[seq] = d;
  if (seq > stable_) {
    stable_ = seq;
    stable_digest_ = d;
  }
  std::erase_if(runs_, [&](const auto& r) { return r.first.last() <= seq; });
  std::erase_if(committed_runs_, [&](const auto& r) { return r.second <= seq; });
  std::erase_if(offers_, [&](const auto& o) { return o.first.first <= seq; });
  fetched_.erase(fetched_.begin(), fetched_.upper_bound(seq));
  future_.erase(future_.begin(), future_.upper_bound(seq));
  local_snapshot_ = raft::Snapshot{meta, std::move(data)};
  ready_.persist_snapshot(*local_snapshot_);
  last_checkpoint_ = std::max(last_checkpoint_, seq);
  if (next_seq_ <= seq) next_seq_ = seq + 1;
  execute();
}

}  // namespace synod::pbft
