#include "check/raft_invariants.h"

#include <algorithm>
#include <sstream>

#include "core/consensus/conf.h"

namespace synod::check {

using raft::ConfState;
using raft::Entry;
using raft::Index;
using raft::NodeId;
using raft::Persisted;
using raft::Log;
using raft::Term;

namespace {

template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// holders_needed (engine_invariants.h): a leader needs the votes of a quorum, so with n - q + 1
// voters holding an entry no leader can be elected without one of them, and a holder refuses
// its vote to a log that lacks the entry (thesis 3.6.3). 2 of 3, 3 of 5, but also 3 of 6 and
// 2 of 4, where a majority of holders (4 of 6) would be stricter than safety is.

// Whether durable state `p` still holds the entry (index, term): in its log with that term, or
// folded into a snapshot (which holds only committed state, thesis 5.1).
bool holds_durably(const Persisted* p, Index index, Term term) {
  if (p == nullptr) return false;
  if (p->snapshot && p->snapshot->meta.index >= index) return true;
  if (p->entries.empty()) return false;
  const Index first = p->entries.front().index;
  if (index < first || index > p->entries.back().index) return false;
  const Entry& e = p->entries[index - first];
  return e.index == index && e.term == term;
}

}  // namespace

// --- Driver hooks -----------------------------------------------------------------------------

void RaftInvariants::set_initial_conf(const ConfState& conf) {
  committed_conf_ = conf;
  committed_conf_index_ = Index(0);
}

void RaftInvariants::on_step(const raft::Raft& raft) {
  if (raft.role() == raft::Role::kLeader) {
    observe_leader(raft.id(), raft.term(), raft.log());
    observe_leader_commit(raft.id(), raft.term(), raft.log());
  }
  note_node_conf(raft);
  observe_commit(raft.id(), raft.log());
}

// thesis 4.1: a leader counts quorums in a configuration from the moment it appends the entry,
// before any Ready hands that entry out for persistence; so the checker learns it here, at the
// step that appended it, not from a later Ready.
void RaftInvariants::note_node_conf(const raft::Raft& raft) {
  const Index index = raft.conf_index();
  if (index <= committed_conf_index_) return;
  const std::optional<Term> term = raft.log().term(index);
  if (!term || appended_confs_.contains({index, *term})) return;
  observe_conf(index, *term, raft.conf());
}

void RaftInvariants::on_step(const Engine& engine) {
  on_step(static_cast<const raft::Raft&>(engine));
}

void RaftInvariants::on_ready(const Engine& engine, const raft::Ready& rd) {
  on_ready(static_cast<const raft::Raft&>(engine), rd);
}

void RaftInvariants::on_ready(const raft::Raft& raft, const raft::Ready& rd) {
  on_step(raft);
  observe_entries(raft.id(), raft.role(), raft.term(), rd.entries, raft.log());
  for (const Entry& e : rd.committed) observe_committed(raft.id(), e);
}

void RaftInvariants::on_apply(NodeId node, const Entry& e) {
  observe_committed(node, e);
}

void RaftInvariants::on_snapshot_install(NodeId node, const raft::SnapshotMeta& meta) {
  // State Machine Safety: a snapshot is applied state, so its last entry is a committed one.
  auto it = committed_.find(meta.index);
  if (it == committed_.end() || it->second.term == meta.term) return;
  fail("StateMachineSafety",
       str("n", node, " installed a snapshot ending at index ", meta.index, " term ", meta.term,
           " but n", it->second.node, " committed term ", it->second.term, " there"));
}

void RaftInvariants::on_crash(NodeId node, const std::map<NodeId, const Persisted*>& durable) {
  // Committed entries survive crashes (thesis 3.8: state is durable before it is acknowledged).
  // Checking the newest committed entry suffices: by Log Matching its holders hold the rest.
  if (max_committed_ == Index(0)) return;
  const Committed& c = committed_.at(max_committed_);
  bool any_conf = !committed_conf_.voters.empty();
  if (any_conf && durable_holders(committed_conf_, max_committed_, c.term, durable) >=
                      holders_needed(committed_conf_)) {
    return;
  }
  for (const auto& [key, conf] : appended_confs_) {  // at most kMaxAppendedConfs
    if (conf.voters.empty()) continue;
    any_conf = true;
    if (durable_holders(conf, max_committed_, c.term, durable) >= holders_needed(conf)) return;
  }
  if (!any_conf) return;  // no membership known: nothing to count a quorum in
  fail("CommittedDurable", str("after n", node, " crashed, committed entry ", max_committed_,
                               " (term ", c.term, ") is durable on only ",
                               durable_holders(committed_conf_, max_committed_, c.term, durable),
                               " of voters ", voters_string(committed_conf_),
                               " (configuration of index ", committed_conf_index_, ")"));
}

// --- Value-level checks -------------------------------------------------------------------------

void RaftInvariants::observe_leader(NodeId node, Term term, const Log& log) {
  // Election Safety (figure 3): at most one leader can be elected in a given term.
  auto [it, inserted] = leaders_.emplace(term, node);
  if (!inserted) {
    if (it->second != node) {
      fail("ElectionSafety", str("term ", term, " has two leaders: n", it->second, " and n", node));
    }
    return;
  }
  check_completeness(node, term, log);  // once per leader term: O(committed entries)
  max_leader_term_ = std::max(max_leader_term_, term);
}

void RaftInvariants::check_completeness(NodeId leader, Term term, const Log& log) {
  // Leader Completeness (figure 3): an entry committed in a term holds in the logs of the
  // leaders of all higher terms. Entries up to the leader's snapshot are covered by it.
  for (auto it = committed_.upper_bound(log.snapshot().index); it != committed_.end(); ++it) {
    const auto& [index, c] = *it;
    if (c.known_by_term >= term) continue;  // possibly committed in `term` or later
    const std::optional<Term> held = log.term(index);
    if (held == c.term && entry_hash(log.at(index)) == c.hash) continue;
    fail("LeaderCompleteness",
         str("leader n", leader, " of term ", term, " lacks entry ", index, " (term ", c.term,
             ") committed on n", c.node, "; its log has ",
             held ? str("term ", *held) : str("no entry (last index ", log.last_index(), ")"),
             " there"));
    return;
  }
}

void RaftInvariants::observe_leader_commit(NodeId node, Term term, const Log& log) {
  auto [it, inserted] = leader_commit_.try_emplace(node, term, log.committed());
  auto& [led_term, commit] = it->second;
  if (inserted || led_term != term) {  // a new leadership: its commit index is where it starts
    led_term = term;
    commit = log.committed();
    return;
  }
  if (log.committed() <= commit) return;
  commit = log.committed();
  const std::optional<Term> at = log.term(commit);
  if (!at || *at == term) return;  // compacted away: only a snapshot of committed state
  fail("LeaderCommitsOwnTerm",
       str("leader n", node, " of term ", term, " advanced its commit index to ", commit,
           ", an entry of term ", *at));
}

void RaftInvariants::observe_entries(NodeId node, raft::Role role, Term term,
                                     const std::vector<Entry>& entries, const Log& log) {
  if (entries.empty()) return;
  if (role == raft::Role::kLeader) {
    check_append_only(node, term, entries.front().index, entries.back().index);
  }
  for (const Entry& e : entries) {
    register_entry(node, e, log);
    note_appended_conf(e);
  }
}

void RaftInvariants::check_append_only(NodeId node, Term term, Index first, Index last) {
  // Leader Append-Only (figure 3): a leader never overwrites or deletes entries in its log, so
  // within its term each batch it hands out starts after everything it handed out before.
  auto& [led_term, emitted] = leader_emitted_[node];
  if (led_term == term && first <= emitted) {
    fail("LeaderAppendOnly", str("leader n", node, " of term ", term, " rewrote from index ", first,
                                 " after handing out entries up to ", emitted));
  }
  led_term = term;
  emitted = last;
}

void RaftInvariants::register_entry(NodeId node, const Entry& e, const Log& log) {
  // Log Matching (figure 3), by induction on the index: if entries with equal (index, term)
  // always carry equal data and follow entries of equal term, two logs that hold one such
  // entry are identical up to it. The term before `e` may be compacted away: then unknown.
  const std::optional<Term> prev = log.term(e.index - 1);
  const uint64_t prev_term = prev ? prev->value : kUnknownTerm;
  const uint64_t hash = entry_hash(e);
  auto [it, inserted] = entries_.try_emplace(EntryKey{e.index.value, e.term.value},
                                             Registered{hash, prev_term, node});
  if (inserted) return;
  Registered& first = it->second;
  if (first.prev_term == kUnknownTerm) first.prev_term = prev_term;
  const bool prev_differs =
      prev_term != kUnknownTerm && first.prev_term != kUnknownTerm && prev_term != first.prev_term;
  if (first.hash == hash && !prev_differs) return;
  fail("LogMatching",
       prev_differs
           ? str("entry at index ", e.index, " term ", e.term, " follows term ", first.prev_term,
                 " on n", first.node, " but term ", prev_term, " on n", node)
           : str("n", first.node, " and n", node, " hold different data at index ", e.index,
                 " term ", e.term));
}

void RaftInvariants::observe_commit(NodeId node, const Log& log) {
  Index& seen = commit_seen_[node];
  if (log.committed() < seen) seen = log.snapshot().index;  // restarted from durable state
  for (Index i = std::max(seen + 1, log.first_index()); i <= log.committed(); ++i) {
    observe_committed(node, log.at(i));
  }
  seen = std::max(seen, log.committed());
}

void RaftInvariants::observe_committed(NodeId node, const Entry& e) {
  // State Machine Safety (figure 3): if a server has applied a log entry at a given index, no
  // other server will ever apply a different log entry for the same index.
  const uint64_t hash = entry_hash(e);
  auto [it, inserted] =
      committed_.try_emplace(e.index, Committed{e.term, hash, node, max_leader_term_});
  if (!inserted) {
    const Committed& c = it->second;
    if (c.term == e.term && c.hash == hash) return;
    fail("StateMachineSafety",
         str("n", node, " committed entry ", e.index, " (term ", e.term, ") but n", c.node,
             " committed a different one (term ", c.term, ") there"));
    return;
  }
  max_committed_ = std::max(max_committed_, e.index);
  note_committed_conf(e);
}

// --- Membership, for CommittedDurable -----------------------------------------------------------

void RaftInvariants::note_appended_conf(const Entry& e) {
  if (e.type != raft::EntryType::kConfChange || e.index <= committed_conf_index_) return;
  const std::optional<ConfState> conf = raft::decode_conf(e.data);
  if (conf) observe_conf(e.index, e.term, *conf);
}

void RaftInvariants::observe_conf(Index index, Term term, const ConfState& conf) {
  if (index <= committed_conf_index_) return;
  if (!appended_confs_.contains({index, term}) && appended_confs_.size() >= kMaxAppendedConfs) {
    appended_confs_.erase(appended_confs_.begin());
  }
  appended_confs_[{index, term}] = conf;
}

void RaftInvariants::note_committed_conf(const Entry& e) {
  if (e.type != raft::EntryType::kConfChange || e.index <= committed_conf_index_) return;
  const std::optional<ConfState> conf = raft::decode_conf(e.data);
  if (!conf) return;
  committed_conf_ = *conf;
  committed_conf_index_ = e.index;
  // Configurations at or below a committed one are superseded in every later leader's log.
  appended_confs_.erase(appended_confs_.begin(),
                        appended_confs_.upper_bound({e.index, Term(UINT64_MAX)}));
}

size_t RaftInvariants::durable_holders(const ConfState& conf, Index index, Term term,
                                       const std::map<NodeId, const Persisted*>& durable) const {
  size_t holders = 0;
  for (NodeId voter : conf.voters) {
    auto it = durable.find(voter);
    if (it != durable.end() && holds_durably(it->second, index, term)) ++holders;
  }
  return holders;
}

}  // namespace synod::check
