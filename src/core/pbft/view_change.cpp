// View changes (OSDI 4.4) with the thesis's P and Q sets and its new-view decision procedure
// (thesis 3.2.4, Fig. 3-3). View changes and new views are signed, so the new primary forwards
// the view changes it decided from and every backup re-runs the decision itself.
#include <algorithm>

#include "base/assert.h"
#include "core/pbft/pbft.h"

namespace synod::pbft {

namespace {

// The timeout stops doubling at 8 times the base: long enough for any delay the network
// settles to after it heals, short enough that replicas regroup soon after.
constexpr uint32_t kMaxTimerDoublings = 3;

const Claim* claim_at(const std::vector<Claim>& claims, Index seq) {
  for (const Claim& c : claims) {
    if (c.seq == seq) return &c;
  }
  return nullptr;
}

}  // namespace

// --- Starting and joining --------------------------------------------------------------------

// The timer runs while a request waits to execute; when it runs out the replica asks for the
// next view. Each view change that does not end in a new view doubles the wait for the next
// (OSDI 4.5.2), so that honest replicas eventually agree on a view long enough to make progress.
void Pbft::tick_view_change() {
  if (changing_ && primary(view_) == cfg_.id) maybe_send_new_view();
  if (timer_started_ == 0) return;
  const uint64_t timeout = uint64_t(cfg_.election_ticks)
                           << std::min(view_change_attempts_, kMaxTimerDoublings);
  if (now_ - timer_started_ >= timeout) start_view_change(view_ + 1);
}

void Pbft::start_view_change(View v) {
  SYNOD_ASSERT(v > view_);
  view_ = v;
  changing_ = true;
  ++view_change_attempts_;
  timer_started_ = 0;  // until n - f replicas ask for this view (maybe_start_view_change_timer)
  queue_.clear();
  ordered_.clear();
  future_.clear();
  ViewChange vc = make_view_change();
  vc.signature = cfg_.keys->sign(view_change_bytes(vc));
  view_changes_[cfg_.id] = vc;
  Msg m = make(Kind::kViewChange);
  m.view_change = vc;
  broadcast(m, /*immediate=*/false);  // after the new view is durable
  maybe_start_view_change_timer();
  maybe_send_new_view();
}

// <VIEW-CHANGE, v+1, h, C, P, Q, i> (thesis 3.2.4): what this replica prepared and pre-prepared
// past its stable checkpoint, from its durable log. An executed request counts as prepared at the
// view it was ordered in (its commit certificate shows f + 1 honest replicas prepared it).
ViewChange Pbft::make_view_change() const {
  ViewChange vc;
  vc.view = view_;
  vc.replica = cfg_.id;
  vc.stable = stable_;
  vc.checkpoints.emplace_back(stable_, stable_digest_);
  for (const auto& [seq, d] : chain_) {
    if (seq > stable_ && seq.value % cfg_.checkpoint_interval == 0) {
      vc.checkpoints.emplace_back(seq, d);
    }
  }
  // Everything the log holds past the stable checkpoint: after a restart that checkpoint is the
  // snapshot's, and the log may reach past its window.
  const Index from = std::max(stable_ + 1, log_.first_index());
  const Index to = std::min(log_.last_index(), stable_ + kCatchUpWindows * cfg_.log_window);
  for (Index seq = from; seq <= to; ++seq) {
    const Entry& e = log_.at(seq);
    const SlotRecord rec = *decode_record(e.data);
    if (rec.installed_through) continue;  // covered by the snapshot's checkpoint, not claimed
    const Claim current{seq, digest(rec.request.request), e.term};
    if (seq <= log_.committed() || rec.prepared) {
      vc.prepared.push_back(current);
    } else if (rec.earlier_prepared) {
      vc.prepared.push_back(*rec.earlier_prepared);
    }
    vc.preprepared.push_back(current);
    for (const Claim& c : rec.earlier_preprepared) vc.preprepared.push_back(c);
  }
  if (cfg_.bugs.drop_prepared_in_view_change) vc.prepared.clear();
  return vc;
}

bool Pbft::valid_view_change(const ViewChange& vc) const {
  if (!cfg_.keys->knows(vc.replica.value)) return false;
  if (!cfg_.keys->check_signature_of(vc.replica.value, view_change_bytes(vc), vc.signature)) {
    return false;
  }
  const Index high = vc.stable + kCatchUpWindows * cfg_.log_window;
  std::set<Index> prepared;
  for (const Claim& c : vc.prepared) {
    if (c.seq <= vc.stable || c.seq > high || c.view >= vc.view) return false;
    if (!prepared.insert(c.seq).second) return false;
  }
  for (const Claim& c : vc.preprepared) {
    if (c.seq <= vc.stable || c.seq > high || c.view >= vc.view) return false;
  }
  for (const auto& [seq, d] : vc.checkpoints) {
    if (seq < vc.stable) return false;
  }
  return true;
}

void Pbft::on_view_change(const Msg& m) {
  const ViewChange& vc = *m.view_change;
  if (vc.replica != m.sender) return drop("a view change relayed by another replica");
  if (vc.view < view_ || (vc.view == view_ && !changing_)) return;
  auto mine = view_changes_.find(vc.replica);
  if (mine != view_changes_.end() && mine->second.view >= vc.view) return;
  if (!valid_view_change(vc)) return drop("a view change that does not check");
  view_changes_[vc.replica] = vc;
  maybe_join_view_change();
  maybe_start_view_change_timer();
  maybe_send_new_view();
}

// A replica waiting for view v starts its timer only once n - f replicas asked for v (OSDI
// 4.5.2): one that moved up alone then waits for the others instead of moving further away.
void Pbft::maybe_start_view_change_timer() {
  if (!changing_ || timer_started_ != 0) return;
  size_t asking = 0;
  for (const auto& [replica, vc] : view_changes_) {
    if (vc.view == view_) ++asking;
  }
  if (asking >= quorum_) timer_started_ = now_;
}

// f + 1 replicas asking for views above this one include an honest one: join the smallest view
// among the f + 1 highest (OSDI 4.5.2), even before this replica's own timer runs out.
void Pbft::maybe_join_view_change() {
  std::vector<View> higher;
  for (const auto& [replica, vc] : view_changes_) {
    if (replica != cfg_.id && vc.view > view_) higher.push_back(vc.view);
  }
  if (higher.size() < f_ + 1) return;
  std::sort(higher.begin(), higher.end(), std::greater<>());
  start_view_change(higher[f_]);
}

// --- The decision (thesis Fig. 3-3) ----------------------------------------------------------

std::optional<NewViewDecision> Pbft::decide(const std::vector<ViewChange>& s, size_t quorum,
                                            size_t weak, uint64_t window) {
  if (s.size() < quorum) return std::nullopt;
  // The checkpoint: the highest (h, d) that f + 1 replicas hold and that n - f replicas have
  // not garbage-collected past.
  NewViewDecision out;
  bool found = false;
  for (const ViewChange& m : s) {
    for (const auto& [seq, d] : m.checkpoints) {
      if (found && seq <= out.checkpoint) continue;
      size_t below = 0;
      size_t holding = 0;
      for (const ViewChange& x : s) {
        if (x.stable <= seq) ++below;
        for (const auto& c : x.checkpoints) {
          if (c.first == seq && c.second == d) {
            ++holding;
            break;
          }
        }
      }
      if (below >= quorum && holding >= weak) {
        out.checkpoint = seq;
        out.checkpoint_digest = d;
        found = true;
      }
    }
  }
  if (!found) return std::nullopt;
  const Index h = out.checkpoint;
  Index last = h;
  for (const ViewChange& m : s) {
    for (const Claim& c : m.prepared) {
      if (c.seq > h && c.seq <= h + window) last = std::max(last, c.seq);
    }
  }
  for (Index n = h + 1; n <= last; ++n) {
    // A: a request prepared at n in view v that n - f replicas do not contradict (A1: nothing
    // prepared there, or earlier, or the same request) and that f + 1 replicas pre-prepared at
    // v or later (A2). Candidates are tried from the highest view.
    std::vector<Claim> candidates;
    for (const ViewChange& m : s) {
      if (const Claim* c = claim_at(m.prepared, n)) candidates.push_back(*c);
    }
    std::sort(candidates.begin(), candidates.end(), [](const Claim& a, const Claim& b) {
      return a.view != b.view ? a.view > b.view : a.digest > b.digest;
    });
    std::optional<Digest> choice;
    for (const Claim& cand : candidates) {
      size_t a1 = 0;
      size_t a2 = 0;
      for (const ViewChange& m : s) {
        const Claim* p = claim_at(m.prepared, n);
        // A claim for the same request does not contradict it, whatever its view: a replica
        // keeps an executed request at the view it executed it in, while others may have
        // prepared it again in a later view (thesis A1 asks v' < v, or v' = v and d' = d).
        if (m.stable < n && (p == nullptr || p->view < cand.view || p->digest == cand.digest)) {
          ++a1;
        }
        bool q = p != nullptr && p->digest == cand.digest && p->view >= cand.view;
        for (const Claim& c : m.preprepared) {
          q = q || (c.seq == n && c.digest == cand.digest && c.view >= cand.view);
        }
        if (q) ++a2;
      }
      if (a1 >= quorum && a2 >= weak) {
        choice = cand.digest;
        break;
      }
    }
    if (!choice) {
      // B: n - f replicas that hold n prepared nothing there: the null request.
      size_t b = 0;
      for (const ViewChange& m : s) {
        if (m.stable < n && claim_at(m.prepared, n) == nullptr) ++b;
      }
      if (b < quorum) return std::nullopt;  // wait for more view changes
      choice = null_digest();
    }
    out.chosen.emplace_back(n, *choice);
  }
  return out;
}

// --- The new view ----------------------------------------------------------------------------

std::optional<AuthenticatedRequest> Pbft::body_of(Index seq, const Digest& d) const {
  if (auto p = pending_.find(d); p != pending_.end()) return p->second.request;
  if (auto b = bodies_.find(d); b != bodies_.end()) return b->second;
  if (seq >= log_.first_index() && seq <= log_.last_index()) {
    SlotRecord rec = *decode_record(log_.at(seq).data);
    if (digest(rec.request.request) == d) return rec.request;
    for (const AuthenticatedRequest& b : rec.earlier_bodies) {
      if (digest(b.request) == d) return b;
    }
  }
  if (auto f = fetched_.find(seq); f != fetched_.end() && digest(f->second.request.request) == d) {
    return f->second.request;
  }
  return std::nullopt;
}

// The new primary decides once the view changes it holds decide, and it holds every chosen
// request's body (A3); missing bodies are fetched from the other replicas first.
void Pbft::maybe_send_new_view() {
  if (!changing_ || primary(view_) != cfg_.id) return;
  std::vector<ViewChange> s;
  for (const auto& [replica, vc] : view_changes_) {
    if (vc.view == view_) s.push_back(vc);
  }
  std::optional<NewViewDecision> decision =
      decide(s, quorum_, f_ + 1, kCatchUpWindows * cfg_.log_window);
  if (!decision) return;
  NewView nv;
  nv.view = view_;
  nv.primary = cfg_.id;
  nv.proofs = std::move(s);
  nv.decision = *decision;
  std::vector<Index> missing;
  for (const auto& [seq, d] : decision->chosen) {
    if (d == null_digest()) continue;
    std::optional<AuthenticatedRequest> body = body_of(seq, d);
    if (body) {
      nv.bodies.push_back(*body);
    } else {
      missing.push_back(seq);
    }
  }
  if (!missing.empty()) {
    if (now_ >= last_fetch_ + cfg_.status_ticks || last_fetch_ == 0) {
      last_fetch_ = now_;
      Msg fetch = make(Kind::kFetch);
      fetch.wanted = std::move(missing);
      broadcast(fetch, /*immediate=*/true);
    }
    return;
  }
  nv.signature = cfg_.keys->sign(new_view_bytes(nv));
  Msg m = make(Kind::kNewView);
  m.new_view = nv;
  broadcast(m, /*immediate=*/false);
  enter_view(nv);
}

void Pbft::on_new_view(const Msg& m) {
  const NewView& nv = *m.new_view;
  if (nv.view < view_ || (nv.view == view_ && !changing_)) return;
  std::string why;
  if (!valid_new_view(nv, &why)) return drop("a new view that does not check");
  enter_view(nv);
}

// A backup accepts a new view only if it decides the same from the same view changes (thesis
// 3.2.4: "backups check the decision by running the same procedure").
bool Pbft::valid_new_view(const NewView& nv, std::string* why) const {
  if (nv.primary != primary(nv.view)) {
    *why = "not from the view's primary";
    return false;
  }
  if (!cfg_.keys->check_signature_of(nv.primary.value, new_view_bytes(nv), nv.signature)) {
    *why = "bad signature";
    return false;
  }
  std::set<raft::NodeId> seen;
  for (const ViewChange& vc : nv.proofs) {
    if (vc.view != nv.view || !seen.insert(vc.replica).second || !valid_view_change(vc)) {
      *why = "a view change in it does not check";
      return false;
    }
  }
  std::optional<NewViewDecision> decision =
      decide(nv.proofs, quorum_, f_ + 1, kCatchUpWindows * cfg_.log_window);
  if (!decision || *decision != nv.decision) {
    *why = "its decision is not the view changes'";
    return false;
  }
  size_t body = 0;
  for (const auto& [seq, d] : nv.decision.chosen) {
    if (d == null_digest()) continue;
    if (body >= nv.bodies.size() || digest(nv.bodies[body].request) != d) {
      *why = "a chosen request without its body";
      return false;
    }
    ++body;
  }
  if (body != nv.bodies.size()) {
    *why = "bodies that were not chosen";
    return false;
  }
  return true;
}

// Enters the new view: its checkpoint becomes stable here, its chosen requests are pre-prepared
// at the new view (a backup prepares them), and what was waiting is ordered again.
void Pbft::enter_view(const NewView& nv) {
  view_ = nv.view;
  changing_ = false;
  new_view_ = nv;
  std::erase_if(view_changes_, [&](const auto& v) { return v.second.view <= view_; });
  future_.clear();
  unauthenticated_.clear();
  queue_.clear();
  ordered_.clear();
  if (nv.decision.checkpoint > stable_) {
    make_stable(nv.decision.checkpoint, nv.decision.checkpoint_digest);
  }
  const Index first = nv.decision.checkpoint + 1;
  std::vector<AuthenticatedRequest> chosen;
  size_t body = 0;
  for (const auto& [seq, d] : nv.decision.chosen) {
    chosen.push_back(d == null_digest() ? AuthenticatedRequest{} : nv.bodies[body++]);
  }
  next_seq_ = std::max(first + chosen.size(), log_.committed() + 1);
  if (!chosen.empty()) pre_prepare(first, chosen, /*trusted=*/true);
  // Requests still waiting go to the new primary (or, at it, into the queue).
  for (const auto& [d, p] : pending_) {
    if (ordered_.contains(d)) continue;
    bool in_view = false;
    for (const auto& [seq, c] : nv.decision.chosen) in_view = in_view || c == d;
    if (in_view) continue;
    if (primary(view_) == cfg_.id) {
      queue_.push_back(d);
    } else if (p.local) {
      Msg r = make(Kind::kRequest);
      r.requests = {p.request};
      send(r, primary(view_), /*immediate=*/true);
    }
  }
  reset_timer();
  maybe_pre_prepare();
}

}  // namespace synod::pbft
