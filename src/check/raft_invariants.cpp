#include "check/raft_invariants.h"

#include <sstream>

namespace synod::check {

using raft::Entry;
using raft::Index;
using raft::NodeId;
using raft::Term;

uint64_t entry_hash(const Entry& e) {
  // FNV-1a over the type and data.
  uint64_t h = 1469598103934665603ULL ^ static_cast<uint8_t>(e.type);
  for (char c : e.data) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

void RaftInvariants::fail(std::string invariant, std::string detail) {
  for (const Violation& v : violations_) {
    if (v.invariant == invariant && v.detail == detail) return;
  }
  if (violations_.size() < kMaxViolations) violations_.push_back({invariant, std::move(detail)});
}

void RaftInvariants::on_step(const raft::Raft& raft) {
  if (raft.role() == raft::Role::kLeader) observe_leader(raft);
  observe_commit(raft);
}

void RaftInvariants::observe_commit(const raft::Raft& raft) {
  // A commit index is a claim that every entry up to it is committed: take it at its word the
  // moment it moves, before anything is applied, so a wrong commit is caught even if the node
  // that made it dies before applying it.
  const raft::RaftLog& log = raft.log();
  Index& seen = commit_seen_[raft.id()];
  if (log.committed() < seen) seen = log.snapshot().index;  // restarted
  for (Index i = std::max(seen + 1, log.first_index()); i <= log.committed(); ++i) {
    record_committed(raft.id(), log.at(i));
  }
  seen = std::max(seen, log.committed());
}

void RaftInvariants::observe_leader(const raft::Raft& raft) {
  // Election Safety: at most one leader per term.
  auto [it, inserted] = leaders_.emplace(raft.term(), raft.id());
  if (!inserted) {
    if (it->second != raft.id()) {
      std::ostringstream os;
      os << "term " << raft.term() << " has two leaders: n" << it->second << " and n" << raft.id();
      fail("ElectionSafety", os.str());
    }
    return;
  }
  // Leader Completeness: a new leader holds every committed entry (checked once per term).
  const raft::RaftLog& log = raft.log();
  for (const auto& [index, c] : committed_) {
    const Index i(index);
    const EntryId& id = c.id;
    if (i <= log.snapshot().index || c.known_by_term >= raft.term()) continue;
    auto t = log.term(i);
    if (t != id.term || entry_hash(log.at(i)) != id.hash) {
      std::ostringstream os;
      os << "leader n" << raft.id() << " of term " << raft.term() << " lacks committed entry "
         << index << " (term " << id.term << ")";
      fail("LeaderCompleteness", os.str());
      return;
    }
  }
}

void RaftInvariants::on_ready(const raft::Raft& raft, const raft::Ready& rd) {
  on_step(raft);
  const raft::RaftLog& log = raft.log();
  if (!rd.entries.empty()) {
    const Index first = rd.entries.front().index;
    // Leader Append-Only: within its term a leader only appends.
    if (raft.role() == raft::Role::kLeader) {
      auto& [term, last] = leader_last_[raft.id()];
      if (term == raft.term() && first <= last) {
        std::ostringstream os;
        os << "leader n" << raft.id() << " of term " << term << " rewrote index " << first
           << " (had emitted up to " << last << ")";
        fail("LeaderAppendOnly", os.str());
      }
      term = raft.term();
      last = rd.entries.back().index;
    }
    // Log Matching, by induction: equal (index, term) means equal data and equal predecessor.
    for (const Entry& e : rd.entries) {
      if (e.type == raft::EntryType::kConfChange && e.index >= appended_conf_index_) {
        if (auto conf = raft::decode_conf(e.data)) {
          appended_conf_ = *conf;
          appended_conf_index_ = e.index;
        }
      }
      auto prev = log.term(e.index - 1);
      const uint64_t prev_term = prev ? prev->value : UINT64_MAX;
      auto [it, inserted] =
          entries_.try_emplace({e.index.value, e.term.value}, entry_hash(e), prev_term);
      if (inserted) continue;
      const bool prev_differs = it->second.second != prev_term && prev_term != UINT64_MAX &&
                                it->second.second != UINT64_MAX;
      if (it->second.first != entry_hash(e) || prev_differs) {
        std::ostringstream os;
        os << "n" << raft.id() << " holds a different entry at index " << e.index << " term "
           << e.term << " than another node";
        fail("LogMatching", os.str());
      }
    }
  }
  for (const Entry& e : rd.committed) record_committed(raft.id(), e);
}

void RaftInvariants::on_apply(NodeId node, const Entry& e) {
  record_committed(node, e);
}

void RaftInvariants::record_committed(NodeId node, const Entry& e) {
  // State Machine Safety: no two nodes apply different entries at one index.
  const EntryId id{e.term, entry_hash(e)};
  const Term known = leaders_.empty() ? Term(0) : leaders_.rbegin()->first;
  auto [it, inserted] = committed_.try_emplace(e.index.value, Committed{id, known});
  if (!inserted && !(it->second.id == id)) {
    std::ostringstream os;
    os << "n" << node << " applied entry (term " << e.term << ") at index " << e.index
       << " but another node applied one of term " << it->second.id.term;
    fail("StateMachineSafety", os.str());
    return;
  }
  if (e.index > max_committed_) max_committed_ = e.index;
  if (e.type == raft::EntryType::kConfChange && e.index > committed_conf_index_) {
    if (auto conf = raft::decode_conf(e.data)) {
      committed_conf_ = *conf;
      committed_conf_index_ = e.index;
    }
  }
}

void RaftInvariants::on_snapshot_install(NodeId node, const raft::SnapshotMeta& meta) {
  auto it = committed_.find(meta.index.value);
  if (it != committed_.end() && it->second.id.term != meta.term) {
    std::ostringstream os;
    os << "n" << node << " installed a snapshot at index " << meta.index << " term " << meta.term
       << " but the committed entry there has term " << it->second.id.term;
    fail("StateMachineSafety", os.str());
  }
}

void RaftInvariants::on_crash(NodeId node,
                              const std::map<NodeId, const raft::Persisted*>& durable) {
  // Committed entries survive crashes: the highest committed entry is durable on a quorum of
  // the latest committed configuration (then so are all before it, by Log Matching).
  if (max_committed_ == Index(0) || committed_conf_.voters.empty()) return;
  const Index c = max_committed_;
  const EntryId& id = committed_.at(c.value).id;
  auto holds = [&](NodeId voter) {
    auto it = durable.find(voter);
    if (it == durable.end() || it->second == nullptr) return false;
    const raft::Persisted& p = *it->second;
    if (p.snapshot && p.snapshot->meta.index >= c) return true;
    if (p.entries.empty() || p.entries.front().index > c || p.entries.back().index < c) {
      return false;
    }
    return p.entries[c - p.entries.front().index].term == id.term;
  };
  auto quorum_holds = [&](const raft::ConfState& conf) {
    size_t holders = 0;
    for (NodeId voter : conf.voters) holders += holds(voter) ? 1 : 0;
    return std::make_pair(holders >= conf.voters.size() / 2 + 1, holders);
  };
  const auto [ok, holders] = quorum_holds(committed_conf_);
  const bool ok_in_newer = appended_conf_index_ > committed_conf_index_ &&
                           !appended_conf_.voters.empty() && quorum_holds(appended_conf_).first;
  if (!ok && !ok_in_newer) {
    std::ostringstream os;
    os << "after n" << node << " crashed, committed entry " << c << " is durable on only "
       << holders << " of " << committed_conf_.voters.size() << " voters";
    fail("CommittedDurable", os.str());
  }
}

}  // namespace synod::check
