#include "check/linearizability.h"

#include <algorithm>
#include <cassert>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_set>

namespace synod::check {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

namespace {

constexpr uint64_t kInfinity = UINT64_MAX;
constexpr int kAbsent = -1;

// One key's register. States are interned strings (kAbsent for "no value").
class RegisterModel {
 public:
  int intern(const std::optional<std::string>& v) {
    if (!v) return kAbsent;
    auto [it, inserted] = ids_.try_emplace(*v, static_cast<int>(names_.size()));
    if (inserted) names_.push_back(*v);
    return it->second;
  }
  std::string name(int state) const { return state == kAbsent ? "<absent>" : names_[state]; }

 private:
  std::map<std::string, int> ids_;
  std::vector<std::string> names_;
};

// An operation prepared for the search: its effect on the register.
struct Prepared {
  const Operation* op;
  bool optional;  // info: may never take effect
  int read = kAbsent;
  int expected = kAbsent;
  int write = kAbsent;
};

// Returns the next state if `p` can take effect in `state`.
std::optional<int> step(const Prepared& p, int state) {
  switch (p.op->kind) {
    case OpKind::kGet:
      if (p.read != state) return std::nullopt;
      return state;
    case OpKind::kPut:
      return p.write;
    case OpKind::kCas:
      if (p.optional || p.op->cas_succeeded) {
        if (state != p.expected) return std::nullopt;
        return p.write;
      }
      if (state == p.expected) return std::nullopt;  // reported a mismatch
      return state;
  }
  return std::nullopt;
}

struct Event {
  uint64_t time;
  bool is_return;
  size_t op;  // index into prepared
};

struct Node {
  size_t op;
  bool is_return;
  int prev;
  int next;
  int match;  // call <-> return
};

struct Config {
  std::vector<uint64_t> bits;
  int state;
  bool operator==(const Config&) const = default;
};

struct ConfigHash {
  size_t operator()(const Config& c) const {
    uint64_t h = static_cast<uint64_t>(c.state) * 0x9e3779b97f4a7c15ULL;
    for (uint64_t w : c.bits) h = (h ^ w) * 0x100000001b3ULL + (h >> 29);
    return h;
  }
};

struct KeyResult {
  Verdict verdict = Verdict::kLinearizable;
  uint64_t states = 0;
  size_t stuck_op = 0;          // op whose return could not be passed (deepest point)
  std::vector<size_t> pending;  // ops left unlinearized at that point
  int stuck_state = kAbsent;
};

class KeySearch {
 public:
  KeySearch(std::vector<Prepared> ops, uint64_t max_states)
      : ops_(std::move(ops)), max_states_(max_states) {}

  KeyResult run() {
    build_list();
    KeyResult result;
    std::vector<uint64_t> bits((ops_.size() + 63) / 64, 0);
    std::unordered_set<Config, ConfigHash> seen;
    std::vector<std::pair<int, int>> calls;  // (call node, state before it)
    size_t required_left = 0;
    for (const Prepared& p : ops_) required_left += p.optional ? 0 : 1;
    int state = kAbsent;
    int entry = nodes_[head_].next;
    size_t deepest = 0;
    while (required_left > 0) {
      assert(entry != -1);
      const Node& n = nodes_[entry];
      if (!n.is_return) {
        const Prepared& p = ops_[n.op];
        auto next = step(p, state);
        if (next) {
          bits[n.op / 64] |= 1ULL << (n.op % 64);
          if (seen.insert(Config{bits, *next}).second) {
            if (++result.states > max_states_) {
              result.verdict = Verdict::kUnknown;
              return result;
            }
            calls.emplace_back(entry, state);
            state = *next;
            if (!p.optional) --required_left;
            lift(entry);
            entry = nodes_[head_].next;
            continue;
          }
          bits[n.op / 64] &= ~(1ULL << (n.op % 64));
        }
        entry = n.next;
        continue;
      }
      // A return we cannot pass: record the deepest such point, then backtrack.
      if (calls.size() >= deepest) {
        deepest = calls.size();
        result.stuck_op = n.op;
        result.stuck_state = state;
        result.pending.clear();
        for (int i = nodes_[head_].next; i != -1; i = nodes_[i].next) {
          if (!nodes_[i].is_return) result.pending.push_back(nodes_[i].op);
        }
      }
      if (calls.empty()) {
        result.verdict = Verdict::kNotLinearizable;
        return result;
      }
      auto [call, before] = calls.back();
      calls.pop_back();
      state = before;
      const Prepared& p = ops_[nodes_[call].op];
      bits[nodes_[call].op / 64] &= ~(1ULL << (nodes_[call].op % 64));
      if (!p.optional) ++required_left;
      unlift(call);
      entry = nodes_[call].next;
    }
    return result;
  }

 private:
  void build_list() {
    std::vector<Event> events;
    for (size_t i = 0; i < ops_.size(); ++i) {
      const Operation& op = *ops_[i].op;
      events.push_back({op.invoke_time, false, i});
      events.push_back({ops_[i].optional ? kInfinity : op.complete_time, true, i});
    }
    // Calls sort before returns at the same instant: overlapping is the permissive reading.
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      if (a.time != b.time) return a.time < b.time;
      return !a.is_return && b.is_return;
    });
    nodes_.clear();
    nodes_.push_back({0, false, -1, -1, -1});  // head sentinel
    head_ = 0;
    std::vector<int> call_node(ops_.size(), -1);
    for (const Event& e : events) {
      const int id = static_cast<int>(nodes_.size());
      nodes_.push_back({e.op, e.is_return, id - 1, -1, -1});
      nodes_[id - 1].next = id;
      if (e.is_return) {
        nodes_[id].match = call_node[e.op];
        nodes_[call_node[e.op]].match = id;
      } else {
        call_node[e.op] = id;
      }
    }
  }
  void unlink(int i) {
    nodes_[nodes_[i].prev].next = nodes_[i].next;
    if (nodes_[i].next != -1) nodes_[nodes_[i].next].prev = nodes_[i].prev;
  }
  void relink(int i) {
    nodes_[nodes_[i].prev].next = i;
    if (nodes_[i].next != -1) nodes_[nodes_[i].next].prev = i;
  }
  void lift(int call) {
    unlink(call);
    unlink(nodes_[call].match);
  }
  void unlift(int call) {
    relink(nodes_[call].match);
    relink(call);
  }

  std::vector<Prepared> ops_;
  uint64_t max_states_;
  std::vector<Node> nodes_;
  int head_ = 0;
};

std::string explain(const std::string& key, const std::vector<Prepared>& ops, const KeyResult& r,
                    const RegisterModel& model) {
  std::ostringstream os;
  os << "key " << key << ": no linearization places " << to_string(*ops[r.stuck_op].op) << "\n";
  os << "  deepest consistent prefix leaves the register at " << model.name(r.stuck_state)
     << " with " << r.pending.size() << " operation(s) unplaced\n";
  return os.str();
}

}  // namespace

LinearizabilityResult check_kv(const std::vector<Operation>& history, const CheckOptions& opts) {
  LinearizabilityResult out;
  std::map<std::string, std::vector<const Operation*>> by_key;
  for (const Operation& op : history) {
    if (op.kind == OpKind::kGet && op.outcome != Outcome::kOk) continue;  // constrains nothing
    if (op.outcome == Outcome::kFail) continue;                           // never took effect
    by_key[op.key].push_back(&op);
  }
  for (const auto& [key, ops] : by_key) {
    RegisterModel model;
    std::vector<Prepared> prepared;
    for (const Operation* op : ops) {
      Prepared p{op, op->outcome == Outcome::kInfo};
      p.read = model.intern(op->output);
      p.expected = model.intern(op->expected);
      p.write = model.intern(op->value);
      prepared.push_back(p);
    }
    KeySearch search(prepared, opts.max_states);
    KeyResult r = search.run();
    out.states_explored += r.states;
    if (r.verdict == Verdict::kLinearizable) continue;
    if (r.verdict == Verdict::kUnknown) {
      out.verdict = Verdict::kUnknown;
      out.key = key;
      out.explanation = "key " + key + ": state limit reached";
      continue;
    }
    out.verdict = Verdict::kNotLinearizable;
    out.key = key;
    uint64_t from = ops[r.stuck_op]->invoke_time;
    for (size_t i : r.pending) from = std::min(from, prepared[i].op->invoke_time);
    const uint64_t to = ops[r.stuck_op]->complete_time;
    for (const Operation* op : ops) {
      const uint64_t end = op->outcome == Outcome::kInfo ? kInfinity : op->complete_time;
      if (op->invoke_time <= to && end >= from) out.failing_window.push_back(*op);
    }
    out.explanation = explain(key, prepared, r, model);
    return out;
  }
  return out;
}

}  // namespace synod::check
