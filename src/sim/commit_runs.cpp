#include "sim/commit_runs.h"

#include <map>
#include <random>
#include <set>
#include <sstream>

#include "base/assert.h"

namespace synod::sim {

using txn::Msg;
using txn::MsgType;
using txn::State;

const char* to_string(CommitScenario s) {
  switch (s) {
    case CommitScenario::kNone:
      return "none";
    case CommitScenario::kCoordinatorCrash:
      return "coordinator-crash";
    case CommitScenario::kPartition:
      return "partition";
    case CommitScenario::kPartialSend:
      return "partial-send";
  }
  return "?";
}

bool parse_commit_scenario(const std::string& name, CommitScenario* out) {
  for (CommitScenario s : {CommitScenario::kNone, CommitScenario::kCoordinatorCrash,
                           CommitScenario::kPartition, CommitScenario::kPartialSend}) {
    if (name == to_string(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

namespace {

std::string name(int node) {
  return node == 0 ? "c" : "p" + std::to_string(node);
}

class CommitRun {
 public:
  explicit CommitRun(const CommitRunOptions& o)
      : o_(o), rng_(o.seed), coordinator_(o.protocol, o.participants) {
    SYNOD_ASSERT(o.participants >= 2);
    for (int p = 1; p <= o.participants; ++p) {
      participants_.emplace_back(o.protocol, p, o.participants, p != o.votes_no);
    }
  }

  CommitRunResult run() {
    send(0, coordinator_.start());
    arm(0, 300);
    for (int p = 1; p <= o_.participants; ++p) arm(p, 100 + rng_() % 50);
    // Bounded: every event is a message (finitely many per timeout) or a timeout (one per node
    // per ~100 ms of virtual time), and time stops at the limit.
    while (!events_.empty()) {
      auto it = events_.begin();
      const Event e = it->second;
      now_ms_ = it->first.first;
      events_.erase(it);
      if (now_ms_ > o_.time_limit_ms) break;
      if (!up(e.node)) continue;
      if (e.timeout) {
        on_timeout(e.node);
      } else {
        deliver(e.msg);
      }
      if (all_settled()) break;
    }
    return result();
  }

 private:
  struct Event {
    int node = 0;
    bool timeout = false;
    Msg msg;
  };

  bool up(int node) const { return !(node == 0 && coordinator_down_); }
  bool connected(int a, int b) const {
    if (!partitioned_) return true;
    auto side = [](int node) { return node <= 1; };  // the coordinator and p1 | the rest
    return side(a) == side(b);
  }
  txn::Participant& participant(int p) { return participants_[static_cast<size_t>(p - 1)]; }

  void log(const std::string& line) {
    if (!o_.verbose) return;
    std::ostringstream os;
    os << "[" << now_ms_ << " ms] " << line << "\n";
    log_ += os.str();
  }

  void schedule(uint64_t at, Event e) { events_.emplace(std::make_pair(at, seq_++), std::move(e)); }
  void arm(int node, uint64_t after_ms) { schedule(now_ms_ + after_ms, Event{node, true, {}}); }

  void send(int from, std::vector<Msg> out) {
    if (from == 0 && !out.empty()) out = coordinator_fault(std::move(out));
    for (const Msg& m : out) {
      if (!connected(m.from, m.to)) {
        log(name(m.from) + " -> " + name(m.to) + " " + txn::to_string(m.type) +
            " lost (partition)");
        continue;
      }
      schedule(now_ms_ + 1 + rng_() % 10, Event{m.to, false, m});
    }
  }

  // The scenario's fault, at the coordinator's first message after it has every vote.
  std::vector<Msg> coordinator_fault(std::vector<Msg> out) {
    const MsgType next =
        o_.protocol == txn::Protocol::kTwoPhase ? MsgType::kCommit : MsgType::kPrecommit;
    if (o_.scenario == CommitScenario::kNone || faulted_ || out.front().type != next) return out;
    faulted_ = true;
    coordinator_down_ = true;
    if (o_.scenario == CommitScenario::kCoordinatorCrash) {
      log("c crashes holding every vote, before sending " + std::string(txn::to_string(next)));
      return {};
    }
    const bool partition = o_.scenario == CommitScenario::kPartition;
    log("c sends " + std::string(txn::to_string(next)) + " to p1 only, crashes" +
        (partition ? "; p1 is cut off from the others" : ""));
    std::vector<Msg> kept;
    for (const Msg& m : out) {
      if (m.to == 1) kept.push_back(m);
    }
    // Any partition falls once the message to p1 is on its way.
    for (const Msg& m : kept) schedule(now_ms_ + 1, Event{m.to, false, m});
    partitioned_ = partition;
    return {};
  }

  void deliver(const Msg& m) {
    if (!connected(m.from, m.to)) return;
    std::string line = name(m.from) + " -> " + name(m.to) + " " + txn::to_string(m.type);
    if (m.type == MsgType::kStateReply) line += std::string(" (") + txn::to_string(m.state) + ")";
    log(line);
    if (m.to == 0) return send(0, coordinator_.step(m));
    note_decision(m.to, [&] { return participant(m.to).step(m); });
  }

  void on_timeout(int node) {
    if (node == 0) {
      if (coordinator_.decision()) return;
      log("c times out");
      send(0, coordinator_.timeout());
      return;
    }
    txn::Participant& p = participant(node);
    if (p.decided()) return;
    log(name(node) + " times out (" + txn::to_string(p.state()) + ")");
    note_decision(node, [&] { return p.timeout(); });
    if (!p.decided()) arm(node, 100 + rng_() % 50);
  }

  template <typename F>
  void note_decision(int node, F step) {
    txn::Participant& p = participant(node);
    const State before = p.state();
    std::vector<Msg> out = step();
    if (p.state() != before) {
      log(name(node) + " is " + txn::to_string(p.state()));
      if (p.decided()) decided_ms_ = now_ms_;
    }
    send(node, std::move(out));
  }

  bool all_settled() const {
    for (const txn::Participant& p : participants_) {
      if (!p.decided()) return false;
    }
    return true;
  }

  CommitRunResult result() const {
    CommitRunResult r;
    std::set<State> decisions;
    for (const txn::Participant& p : participants_) {
      r.states.push_back(p.state());
      if (p.decided()) decisions.insert(p.state());
      if (!p.decided()) r.blocked = true;
    }
    r.coordinator = coordinator_.decision();
    r.coordinator_crashed = coordinator_down_;
    if (r.coordinator) decisions.insert(*r.coordinator);
    r.agreement = decisions.size() <= 1;
    r.decided_ms = decided_ms_;
    r.log = log_;
    return r;
  }

  const CommitRunOptions o_;
  std::mt19937_64 rng_;
  txn::Coordinator coordinator_;
  std::vector<txn::Participant> participants_;
  std::map<std::pair<uint64_t, uint64_t>, Event> events_;  // (time, order) -> event
  uint64_t seq_ = 0;
  uint64_t now_ms_ = 0;
  uint64_t decided_ms_ = 0;
  bool faulted_ = false;
  bool coordinator_down_ = false;
  bool partitioned_ = false;
  std::string log_;
};

}  // namespace

CommitRunResult run_commit(const CommitRunOptions& options) {
  return CommitRun(options).run();
}

std::string describe(const CommitRunOptions& o, const CommitRunResult& r) {
  std::ostringstream os;
  os << txn::to_string(o.protocol) << ", " << o.participants << " participants, scenario "
     << to_string(o.scenario) << ", seed " << o.seed << ":\n";
  for (size_t i = 0; i < r.states.size(); ++i) {
    os << "  p" << i + 1 << " " << txn::to_string(r.states[i]) << "\n";
  }
  os << "  coordinator " << (r.coordinator ? txn::to_string(*r.coordinator) : "undecided")
     << (r.coordinator_crashed ? ", then crashed" : "") << "\n";
  if (!r.agreement) {
    os << "  DISAGREEMENT: some committed and some aborted the same transaction\n";
  } else if (r.blocked) {
    os << "  BLOCKED: participants that voted yes are still uncertain at " << o.time_limit_ms
       << " ms; only the coordinator knew the outcome\n";
  } else {
    os << "  terminated: every participant decided the same, the last at " << r.decided_ms
       << " ms\n";
  }
  return os.str();
}

}  // namespace synod::sim
