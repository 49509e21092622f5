// Atomic commitment: two-phase commit (Gray, "Notes on Data Base Operating Systems", 1978) and
// three-phase commit (Skeen, "Nonblocking Commit Protocols", SIGMOD 1981), as pure state
// machines for one transaction: a coordinator and participants that take messages and timeouts
// and return the messages they send. Node 0 is the coordinator; participants are 1..n.
//
//   2PC: the coordinator asks for votes; all yes -> commit, any no (or a timeout) -> abort. A
//        participant that voted yes is uncertain until it hears the decision. If the
//        coordinator is gone it asks the other participants (cooperative termination): one
//        that knows the outcome, or has not voted (and so aborts), settles it; if all are
//        uncertain too, none may decide, and it is blocked until the coordinator returns.
//   3PC: between the votes and the commit, a pre-commit that every participant acknowledges:
//        no participant commits while another is still uncertain. A participant that times out
//        runs the termination protocol (Skeen 1981, section 5): the lowest-numbered participant
//        it can reach collects states and decides (any committed -> commit; any aborted ->
//        abort; any pre-committed -> commit; all uncertain -> abort). With crashes only, it
//        never blocks. Under a partition, though, each side terminates on its own, and the two
//        may decide differently: 3PC assumes a network that does not partition.
//
// Deterministic; no I/O. The decisions a node reaches are final (asserted).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace synod::txn {

enum class Protocol : uint8_t { kTwoPhase, kThreePhase };
const char* to_string(Protocol p);

// A participant's state (Skeen's q, w, p, c, a).
enum class State : uint8_t {
  kInitial,       // has not voted
  kUncertain,     // voted yes, decision unknown
  kPrecommitted,  // 3PC: knows everyone voted yes
  kCommitted,
  kAborted,
};
const char* to_string(State s);

enum class MsgType : uint8_t {
  kVoteRequest,  // coordinator -> participant
  kVote,         // participant -> coordinator (yes)
  kVoteNo,       // participant -> coordinator
  kPrecommit,    // 3PC: coordinator (or a terminating participant) -> participant
  kAck,          // 3PC: participant -> coordinator
  kCommit,
  kAbort,
  kStateRequest,  // a terminating participant asks another for its state
  kStateReply,
};
const char* to_string(MsgType t);

struct Msg {
  MsgType type = MsgType::kVoteRequest;
  int from = 0;
  int to = 0;
  State state = State::kInitial;  // kStateReply
};

class Coordinator {
 public:
  Coordinator(Protocol protocol, int participants);
  // Starts the transaction: the vote requests.
  std::vector<Msg> start();
  std::vector<Msg> step(const Msg& m);
  // No answer came in time: abort while votes are missing; commit if pre-commits are unacked
  // (every participant voted yes, and an unacked one is down or will learn by termination).
  std::vector<Msg> timeout();
  std::optional<State> decision() const { return decision_; }

 private:
  std::vector<Msg> to_all(MsgType type) const;
  std::vector<Msg> decide(State d);

  Protocol protocol_;
  int participants_;
  bool precommitting_ = false;
  std::set<int> votes_;
  std::set<int> acks_;
  std::optional<State> decision_;
};

class Participant {
 public:
  Participant(Protocol protocol, int id, int participants, bool votes_yes);
  std::vector<Msg> step(const Msg& m);
  // Heard nothing in time: abort if it has not voted; otherwise terminate (3PC) or ask the
  // others (2PC). Called again while undecided: the next round of termination.
  std::vector<Msg> timeout();
  State state() const { return state_; }
  bool decided() const { return state_ == State::kCommitted || state_ == State::kAborted; }
  int id() const { return id_; }

 private:
  void set(State s);
  std::vector<Msg> ask_others() const;
  std::vector<Msg> terminate();
  std::vector<Msg> announce(MsgType type) const;

  Protocol protocol_;
  int id_;
  int participants_;
  bool votes_yes_;
  State state_ = State::kInitial;
  // Termination: the states heard in this round (this participant's own included).
  std::map<int, State> heard_;
  bool terminating_ = false;
};

}  // namespace synod::txn
