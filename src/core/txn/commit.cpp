#include "core/txn/commit.h"

#include "base/assert.h"

namespace synod::txn {

const char* to_string(Protocol p) {
  return p == Protocol::kTwoPhase ? "2PC" : "3PC";
}

const char* to_string(State s) {
  switch (s) {
    case State::kInitial:
      return "initial";
    case State::kUncertain:
      return "uncertain";
    case State::kPrecommitted:
      return "pre-committed";
    case State::kCommitted:
      return "committed";
    case State::kAborted:
      return "aborted";
  }
  return "?";
}

const char* to_string(MsgType t) {
  switch (t) {
    case MsgType::kVoteRequest:
      return "VoteRequest";
    case MsgType::kVote:
      return "Vote(yes)";
    case MsgType::kVoteNo:
      return "Vote(no)";
    case MsgType::kPrecommit:
      return "PreCommit";
    case MsgType::kAck:
      return "Ack";
    case MsgType::kCommit:
      return "Commit";
    case MsgType::kAbort:
      return "Abort";
    case MsgType::kStateRequest:
      return "StateRequest";
    case MsgType::kStateReply:
      return "StateReply";
  }
  return "?";
}

// --- Coordinator ------------------------------------------------------------------------------

Coordinator::Coordinator(Protocol protocol, int participants)
    : protocol_(protocol), participants_(participants) {
  SYNOD_ASSERT(participants_ > 0);
}

std::vector<Msg> Coordinator::to_all(MsgType type) const {
  std::vector<Msg> out;
  for (int p = 1; p <= participants_; ++p) out.push_back(Msg{type, 0, p, State::kInitial});
  return out;
}

std::vector<Msg> Coordinator::start() {
  return to_all(MsgType::kVoteRequest);
}

std::vector<Msg> Coordinator::decide(State d) {
  SYNOD_ASSERT(!decision_ || *decision_ == d);
  decision_ = d;
  return to_all(d == State::kCommitted ? MsgType::kCommit : MsgType::kAbort);
}

std::vector<Msg> Coordinator::step(const Msg& m) {
  if (m.type == MsgType::kStateRequest && decision_) {
    // A participant terminating: the decision, if there is one, settles it.
    const MsgType t = *decision_ == State::kCommitted ? MsgType::kCommit : MsgType::kAbort;
    return {Msg{t, 0, m.from, State::kInitial}};
  }
  if (decision_) return {};
  switch (m.type) {
    case MsgType::kVote:
      votes_.insert(m.from);
      if (static_cast<int>(votes_.size()) < participants_ || precommitting_) return {};
      if (protocol_ == Protocol::kTwoPhase) return decide(State::kCommitted);
      precommitting_ = true;  // 3PC: nobody commits while anyone may still be uncertain
      return to_all(MsgType::kPrecommit);
    case MsgType::kVoteNo:
      return decide(State::kAborted);
    case MsgType::kAck:
      acks_.insert(m.from);
      if (static_cast<int>(acks_.size()) < participants_) return {};
      return decide(State::kCommitted);
    default:
      return {};
  }
}

std::vector<Msg> Coordinator::timeout() {
  if (decision_) return {};
  return decide(precommitting_ ? State::kCommitted : State::kAborted);
}

// --- Participant ------------------------------------------------------------------------------

Participant::Participant(Protocol protocol, int id, int participants, bool votes_yes)
    : protocol_(protocol), id_(id), participants_(participants), votes_yes_(votes_yes) {
  SYNOD_ASSERT(id_ >= 1 && id_ <= participants_);
}

// Decisions are final: a participant never commits what it aborted, or the reverse.
void Participant::set(State s) {
  if (decided()) {
    SYNOD_ASSERT(s == state_);
    return;
  }
  state_ = s;
}

std::vector<Msg> Participant::announce(MsgType type) const {
  std::vector<Msg> out{Msg{type, id_, 0, State::kInitial}};
  for (int p = 1; p <= participants_; ++p) {
    if (p != id_) out.push_back(Msg{type, id_, p, State::kInitial});
  }
  return out;
}

std::vector<Msg> Participant::ask_others() const {
  return announce(MsgType::kStateRequest);
}

std::vector<Msg> Participant::step(const Msg& m) {
  switch (m.type) {
    case MsgType::kVoteRequest:
      if (state_ == State::kInitial) set(votes_yes_ ? State::kUncertain : State::kAborted);
      return {Msg{state_ == State::kAborted ? MsgType::kVoteNo : MsgType::kVote, id_, m.from,
                  State::kInitial}};
    case MsgType::kPrecommit:
      if (state_ == State::kUncertain) set(State::kPrecommitted);
      if (state_ != State::kPrecommitted) return {};
      return {Msg{MsgType::kAck, id_, m.from, State::kInitial}};
    case MsgType::kCommit:
      set(State::kCommitted);
      return {};
    case MsgType::kAbort:
      set(State::kAborted);
      return {};
    case MsgType::kStateRequest:
      // One that has not voted may still abort on its own, and does: the asker learns abort.
      if (state_ == State::kInitial) set(State::kAborted);
      return {Msg{MsgType::kStateReply, id_, m.from, state_}};
    case MsgType::kStateReply:
      if (m.state == State::kCommitted || m.state == State::kAborted) {
        set(m.state);  // someone knows the outcome
      } else if (terminating_) {
        heard_[m.from] = m.state;
      }
      return {};
    default:
      return {};
  }
}

std::vector<Msg> Participant::timeout() {
  if (decided()) return {};
  if (state_ == State::kInitial) {
    set(State::kAborted);  // never voted: nothing depends on it yet
    return {};
  }
  if (protocol_ == Protocol::kTwoPhase) {
    // Uncertain: only the coordinator or another participant that knows can settle it. If all
    // it reaches are uncertain too, it stays blocked and asks again.
    terminating_ = true;
    return ask_others();
  }
  if (!terminating_) {
    terminating_ = true;
    heard_.clear();
    return ask_others();
  }
  std::vector<Msg> out = terminate();
  if (!decided()) {  // the next round
    heard_.clear();
    for (const Msg& m : ask_others()) out.push_back(m);
  }
  return out;
}

// 3PC termination (Skeen 1981, section 5) over the states heard in the last round, run by the
// lowest-numbered participant among those: the others leave the decision to it (and run
// another round should it not come).
std::vector<Msg> Participant::terminate() {
  if (!heard_.empty() && heard_.begin()->first < id_) return {};
  bool precommitted = state_ == State::kPrecommitted;
  bool uncertain = state_ == State::kUncertain;
  for (const auto& [p, s] : heard_) {
    precommitted = precommitted || s == State::kPrecommitted;
    uncertain = uncertain || s == State::kUncertain;
  }
  if (!precommitted) {
    set(State::kAborted);  // all uncertain: nobody can have committed
    return announce(MsgType::kAbort);
  }
  if (uncertain) {
    // Bring the uncertain ones to pre-committed before anyone commits, so that should this
    // participant fail now, whoever terminates next still sees a pre-committed state.
    set(State::kPrecommitted);
    return announce(MsgType::kPrecommit);
  }
  set(State::kCommitted);
  return announce(MsgType::kCommit);
}

}  // namespace synod::txn
