// The acceptor and learner: promises (phase 1b), acceptances (phase 2b), learning the chosen
// index, and catching up from a snapshot. Every answer that promises state leaves only after
// the Ready that holds that state is durable (PMS 3: an acceptor remembers its promises and
// acceptances across failures).

#include <algorithm>

#include "core/consensus/replication.h"
#include "core/paxos/multi_paxos.h"

namespace synod::paxos {

void MultiPaxos::answer(Message m) {
  ready_.send(std::move(m), cfg_.bugs.answer_before_persist);
}

bool MultiPaxos::can_promise(Index candidate_chosen) const {
  // A promise reports every value accepted past the proposer's chosen index. An acceptor that
  // compacted those slots cannot, and one that would report too much refuses; both are safe
  // (an acceptor may always refuse), and the member with the highest chosen index among a
  // live majority is never refused for this.
  if (candidate_chosen < log_.snapshot().index) return false;
  uint64_t bytes = 0;
  for (Index i = candidate_chosen + 1; i <= log_.last_index(); ++i) {
    bytes += log_.at(i).data.size() + 24;
    if (bytes > cfg_.max_promise_bytes) return false;
  }
  return true;
}

void MultiPaxos::handle_pre_prepare(const Message& m) {
  // A trial of phase 1 that persists nothing: would this acceptor promise the round?
  Message r = make(MessageType::kPreVoteResp, m.from);
  r.transfer = m.transfer;
  if (m.term > promised_ && can_promise(m.commit)) {
    r.term = m.term;
  } else {
    r.reject = true;
  }
  send(std::move(r));
}

void MultiPaxos::handle_prepare(const Message& m) {
  Message r = make(MessageType::kPromise, m.from);
  r.term = m.term;
  r.log_index = m.commit;
  // One proposer per round: a round promised to another is refused, which is what makes a
  // round name a single ballot.
  const bool taken = m.term == promised_ && vote_ != kNoNode && vote_ != m.from;
  if (taken || !can_promise(m.commit)) {
    r.reject = true;
    r.reject_hint = log_.committed();
    send(std::move(r));
    return;
  }
  if (m.term > promised_) become_follower(m.term, kNoNode);
  vote_ = m.from;  // durable before the Promise leaves (it goes with the Ready's messages)
  election_elapsed_ = 0;
  // P1b: the promise carries every value accepted past the proposer's chosen index, each at
  // its round; those at or below our chosen index are known chosen.
  r.commit = log_.committed();
  r.entries = log_.slice(m.commit + 1, log_.last_index(), UINT64_MAX);
  answer(std::move(r));
}

void MultiPaxos::handle_accept(const Message& m) {
  Message r = make(MessageType::kAccepted, m.from);
  const Index prev = m.log_index;
  for (size_t k = 0; k < m.entries.size(); ++k) {
    // Malformed input changes nothing: a run contiguous after prev, at the proposer's round
    // past its chosen index; at or below it, chosen values at the rounds they were accepted.
    const Entry& e = m.entries[k];
    if (e.index != prev + (k + 1) || e.term > m.term || (e.index > m.commit && e.term != m.term)) {
      return;
    }
  }
  if (prev > round_match_) {
    // The acceptance rule: take only a run that continues what was accepted at this round, so
    // the log has no holes. The leader resends from our hint.
    r.reject = true;
    r.log_index = prev;
    r.reject_hint = round_match_;
    answer(std::move(r));
    return;
  }
  if (auto first = log_.overwrite(m.entries)) on_log_changed(*first);
  round_match_ = std::max(round_match_, prev + m.entries.size());
  // Slots up to the leader's chosen index that we hold at its round hold the chosen values.
  log_.commit_to(std::max(log_.committed(), std::min(m.commit, round_match_)));
  r.log_index = round_match_;
  answer(std::move(r));
}

void MultiPaxos::handle_commit(const Message& m) {
  log_.commit_to(std::max(log_.committed(), std::min(m.commit, round_match_)));
  Message r = make(MessageType::kCommitResp, m.from);
  r.context = m.context;
  r.sent_tick = m.sent_tick;
  r.log_index = round_match_;  // the leader resends what we hold but do not count (rewind)
  send(std::move(r));
}

void MultiPaxos::handle_snapshot_chunk(const Message& m) {
  const SnapshotMeta& meta = m.snapshot_meta;
  if (meta.index <= log_.committed()) {
    incoming_snapshot_.reset();
    Message r = make(MessageType::kAccepted, m.from);
    r.log_index = round_match_;
    answer(std::move(r));
    return;
  }
  Message r = make(MessageType::kSnapshotResp, m.from);
  std::optional<Snapshot> snapshot = raft::receive_snapshot_chunk(incoming_snapshot_, m, r);
  if (!snapshot) {
    send(std::move(r));
    return;
  }
  install_snapshot(std::move(*snapshot));
  Message done = make(MessageType::kAccepted, m.from);
  done.log_index = round_match_;
  answer(std::move(done));
}

void MultiPaxos::install_snapshot(Snapshot snapshot) {
  // The snapshot holds chosen slots only. Values this acceptor accepted past it must survive
  // (a later phase 1 may need them), so the snapshot names the slot at its index by our own
  // round: a log holding (index, term) keeps its entries after the snapshot.
  snapshot.meta.term = log_.term(snapshot.meta.index).value_or(Term(0));
  log_.restore(snapshot.meta);
  round_match_ = std::max(round_match_, snapshot.meta.index);
  base_conf_ = snapshot.meta.conf;
  confs_.clear();
  on_log_changed(log_.first_index());
  local_snapshot_ = snapshot;
  ready_.persist_snapshot(std::move(snapshot));
}

}  // namespace synod::paxos
