#include "check/paxos_invariants.h"

#include <sstream>

#include "core/consensus/conf.h"
#include "core/consensus/replication.h"

namespace synod::check {

using raft::ConfState;
using raft::Entry;
using raft::Index;
using raft::NodeId;
using raft::Term;

namespace {

template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace

void PaxosInvariants::set_initial_conf(const ConfState& conf) { initial_conf_ = conf; }

ConfState PaxosInvariants::config_for(Index slot) const {
  auto it = confs_.lower_bound(slot);
  return it == confs_.begin() ? initial_conf_ : std::prev(it)->second;
}

// --- Hooks -------------------------------------------------------------------------------------

void PaxosInvariants::on_step(const Engine& engine) {
  const auto& p = static_cast<const paxos::MultiPaxos&>(engine);
  NodeView& view = nodes_[p.id()];
  if (p.role() == raft::Role::kLeader) observe_leader(p.id(), p.term());
  observe_log(p.id(), view.promised, p.log());
  view.promised = p.term();
}

void PaxosInvariants::on_ready(const Engine& engine, const raft::Ready& rd) {
  on_step(engine);
  for (const Entry& e : rd.entries) observe_accepted(engine.id(), e);
  for (const Entry& e : rd.committed) observe_learned(engine.id(), e);
}

void PaxosInvariants::on_durable(NodeId node, const std::vector<Entry>& entries,
                                 const std::optional<raft::HardState>& hard_state) {
  NodeView& view = nodes_[node];
  if (hard_state) {
    if (hard_state->term < view.durable_promise) {
      fail("AcceptAbovePromise", str("n", node, " made promise ", hard_state->term,
                                     " durable after promise ", view.durable_promise));
    }
    view.durable_promise = std::max(view.durable_promise, hard_state->term);
  }
  for (const Entry& e : entries) observe_durable(node, e);
  advance_prefix();
}

void PaxosInvariants::on_apply(NodeId node, const Entry& e) { observe_learned(node, e); }

void PaxosInvariants::on_snapshot_install(NodeId node, const raft::SnapshotMeta& meta) {
  if (meta.index > prefix_) {
    fail("LearnedIsChosen", str("n", node, " installed a snapshot through slot ", meta.index,
                                " but only slots through ", prefix_, " are chosen"));
  }
}

void PaxosInvariants::on_crash(NodeId node,
                               const std::map<NodeId, const raft::Persisted*>& durable) {
  // The node restarts from its disk: a promise or value it held only in memory is gone, and
  // was never answered for (answers wait for the fsync).
  NodeView& view = nodes_[node];
  auto own = durable.find(node);
  view.promised = own != durable.end() && own->second ? own->second->hard_state.term : Term(0);
  view.shadow.clear();
  view.fresh = true;
  if (prefix_ == Index(0)) return;
  const uint64_t hash = chosen_.at(prefix_).hash;
  // The configuration governing the slot, or the one its own entry brings in.
  for (const ConfState& conf : {config_for(prefix_), config_for(prefix_ + 1)}) {
    if (durable_holders(conf, prefix_, hash, durable) >= holders_needed(conf)) return;
  }
  const ConfState conf = config_for(prefix_);
  fail("ChosenDurable", str("after n", node, " crashed, the value chosen at slot ", prefix_,
                            " is durable on only ", durable_holders(conf, prefix_, hash, durable),
                            " of voters ", voters_string(conf)));
}

size_t PaxosInvariants::durable_holders(
    const ConfState& conf, Index slot, uint64_t hash,
    const std::map<NodeId, const raft::Persisted*>& durable) const {
  size_t n = 0;
  for (NodeId v : conf.voters) {
    auto it = durable.find(v);
    if (it == durable.end() || it->second == nullptr) continue;
    const raft::Persisted& p = *it->second;
    if (p.snapshot && p.snapshot->meta.index >= slot) {
      ++n;
      continue;
    }
    if (p.entries.empty() || slot < p.entries.front().index || slot > p.entries.back().index) {
      continue;
    }
    if (entry_hash(p.entries[slot - p.entries.front().index]) == hash) ++n;
  }
  return n;
}

// --- Value-level checks --------------------------------------------------------------------------

void PaxosInvariants::observe_leader(NodeId node, Term round) {
  auto [it, inserted] = leaders_.emplace(round, node);
  if (!inserted && it->second != node) {
    fail("RoundSafety", str("n", node, " and n", it->second, " both lead round ", round));
  }
}

void PaxosInvariants::observe_log(NodeId node, Term promised_before, const raft::Log& log) {
  NodeView& view = nodes_[node];
  // Slots at or below the chosen index never change again: forget them.
  view.shadow.erase(view.shadow.begin(), view.shadow.upper_bound(log.committed()));
  view.shadow.erase(view.shadow.upper_bound(log.last_index()), view.shadow.end());
  if (view.fresh) {
    // First sight of this process: what it holds is what it recovered, taken as it is.
    for (Index i = std::max(log.committed() + 1, log.first_index()); i <= log.last_index(); ++i) {
      view.shadow[i] = {log.at(i).term, entry_hash(log.at(i))};
    }
    view.fresh = false;
    return;
  }
  for (Index i = std::max(log.unsent_from(), log.first_index()); i <= log.last_index(); ++i) {
    const Entry& e = log.at(i);
    const uint64_t hash = entry_hash(e);
    auto it = view.shadow.find(i);
    const bool changed = it == view.shadow.end() || it->second != std::make_pair(e.term, hash);
    if (!changed || i <= log.committed()) continue;
    if (e.term < promised_before) {
      fail("AcceptAbovePromise", str("n", node, " accepted slot ", i, " at round ", e.term,
                                     " after promising round ", promised_before));
    }
    if (it != view.shadow.end() && e.term < it->second.first) {
      fail("AcceptAbovePromise", str("n", node, " replaced slot ", i, " of round ",
                                     it->second.first, " by one of round ", e.term));
    }
    view.shadow[i] = {e.term, hash};
    observe_accepted(node, e);
  }
}

void PaxosInvariants::observe_accepted(NodeId node, const Entry& e) {
  Accepted& a = accepted_[e.index][e.term];
  const uint64_t hash = entry_hash(e);
  if (a.hash == 0) {
    a.hash = hash;
    if (e.type == raft::EntryType::kConfChange) a.conf = raft::decode_conf(e.data);
  } else if (a.hash != hash) {
    fail("OneValuePerRound", str("n", node, " holds a second value for slot ", e.index,
                                 " at round ", e.term));
  }
}

void PaxosInvariants::observe_durable(NodeId node, const Entry& e) {
  observe_accepted(node, e);
  Accepted& a = accepted_[e.index][e.term];
  if (a.hash != entry_hash(e) || !a.holders.insert(node).second) return;
  auto chosen = chosen_.find(e.index);
  if (chosen == chosen_.end() || chosen->second.hash == a.hash) return;
  const ConfState conf = config_for(e.index);
  size_t n = 0;
  for (NodeId v : conf.voters) n += a.holders.contains(v) ? 1 : 0;
  if (n >= raft::quorum_size(conf)) {
    fail("ChosenNeverChanges", str("slot ", e.index, " was chosen at round ",
                                   chosen->second.round, " and another value at round ", e.term));
  }
}

void PaxosInvariants::advance_prefix() {
  for (;;) {
    const Index slot = prefix_ + 1;
    auto rounds = accepted_.find(slot);
    if (rounds == accepted_.end()) return;
    const ConfState conf = config_for(slot);
    std::optional<Chosen> found;
    for (const auto& [round, a] : rounds->second) {
      size_t n = 0;
      for (NodeId v : conf.voters) n += a.holders.contains(v) ? 1 : 0;
      if (n < raft::quorum_size(conf)) continue;
      if (found && found->hash != a.hash) {
        fail("ChosenNeverChanges", str("slot ", slot, " has majorities for two values, at rounds ",
                                       found->round, " and ", round));
      }
      if (!found) {
        found = Chosen{round, a.hash};
        if (a.conf) confs_[slot] = *a.conf;
      }
    }
    if (!found) return;
    chosen_[slot] = *found;
    prefix_ = slot;
  }
}

void PaxosInvariants::observe_learned(NodeId node, const Entry& e) {
  auto it = chosen_.find(e.index);
  if (it == chosen_.end()) {
    fail("LearnedIsChosen", str("n", node, " learned slot ", e.index, " (round ", e.term,
                                ") as chosen, but no majority has accepted a value there"));
    return;
  }
  if (it->second.hash != entry_hash(e)) {
    fail("LearnedIsChosen", str("n", node, " learned at slot ", e.index,
                                " a value other than the one chosen at round ", it->second.round));
  }
}

}  // namespace synod::check
