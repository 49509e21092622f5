#include "check/kv_model.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "check/kv_structure.h"

namespace synod::check {

namespace {

std::string_view read_value(const Operation& op) {
  return op.output ? std::string_view(*op.output) : std::string_view();
}

// Drops the indeterminate puts and appends that no get can have seen:
//  - an append whose value occurs in no get's value (an empty append changes nothing at all);
//  - a put whose value begins no get's value.
// Exact. Take a linearization in which such a write W took effect. From W on, until the next put
// takes effect (or to the end), the key's value contains W's value — an append only adds at the
// end — and, after a put, begins with it. So no get takes effect in that stretch: it would have
// read W's value. Remove W: only that stretch's values change, and it holds only puts and
// appends, which succeed from any value and return nothing; from the next put on the values
// are as before. What is left is a linearization of the history without W. Conversely, a
// linearization without W is one of the history in which the indeterminate W never took
// effect. Gets do not change, so each drop leaves the others' conditions as they were.
//
// This is what keeps histories with many timed-out writes within reach: each one left in
// could have taken effect at any point after its invocation, or never.
void drop_unobserved_writes(std::vector<const Operation*>& ops) {
  std::vector<std::string_view> values;
  for (const Operation* op : ops) {
    if (op->kind == OpKind::kGet && op->outcome == Outcome::kOk) values.push_back(read_value(*op));
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  // A string that occurs in, or begins, some value read does so in a longest one: in sorted
  // order a value that begins another begins the one right after it.
  std::vector<std::string_view> longest;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i + 1 < values.size() && values[i + 1].starts_with(values[i])) continue;
    longest.push_back(values[i]);
  }
  std::unordered_map<size_t, std::unordered_set<std::string_view>> appended;  // by length
  for (const Operation* op : ops) {
    if (op->kind == OpKind::kAppend && op->outcome == Outcome::kInfo && !op->value.empty()) {
      appended[op->value.size()].insert(op->value);
    }
  }
  std::unordered_set<std::string_view> seen;
  for (const auto& [length, candidates] : appended) {
    for (std::string_view v : longest) {
      for (size_t pos = 0; pos + length <= v.size(); ++pos) {
        if (auto it = candidates.find(v.substr(pos, length)); it != candidates.end()) {
          seen.insert(*it);
        }
      }
    }
  }
  auto begins_a_value = [&](std::string_view put) {
    auto it = std::lower_bound(longest.begin(), longest.end(), put);
    return it != longest.end() && it->starts_with(put);
  };
  std::erase_if(ops, [&](const Operation* op) {
    if (op->outcome != Outcome::kInfo) return false;
    if (op->kind == OpKind::kAppend) return !seen.contains(op->value);
    if (op->kind == OpKind::kPut) return !begins_a_value(op->value);
    return false;
  });
}

// One key's string, for the search. A state is a node of a trie over the written values: the
// root "" and the root "any value" (the start of a window cut from the middle of a history),
// and below them one node per sequence of values appended. A put starts again from "". Equal
// strings built by different sequences get different ids, which costs only time; a get
// compares the strings themselves.
class KvModel final : public Model {
 public:
  explicit KvModel(const std::vector<const Operation*>& ops) : ops_(ops) {
    nodes_.push_back({kEmpty, 0, 0});
    nodes_.push_back({kAny, 0, 0});
  }

  uint32_t initial_state() override { return kEmpty; }
  std::optional<uint32_t> unknown_state() override { return kAny; }

  std::optional<uint32_t> step(uint32_t state, size_t i) override {
    const Operation& op = *ops_[i];
    switch (op.kind) {
      case OpKind::kGet: {
        if (!holds(state, i)) return std::nullopt;
        if (anchored_[state]) return state;
        return exactly(read_value(op));  // from "any value", the get tells which
      }
      case OpKind::kPut:
        return exactly(op.value);
      case OpKind::kAppend:
        if (op.value.empty()) return state;
        return child(state, token(op.value));
      default:  // not a kv operation
        return std::nullopt;
    }
  }

  std::string describe_state(uint32_t state) const override {
    std::vector<std::string_view> parts;
    for (uint32_t n = state; n != kEmpty && n != kAny; n = nodes_[n].parent) {
      parts.push_back(tokens_[nodes_[n].token]);
    }
    std::string s;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) s += *it;
    constexpr size_t kShown = 100;  // long values show their end, where histories differ
    if (s.size() > kShown) {
      s = "..." + s.substr(s.size() - kShown) + "\" (" + std::to_string(s.size()) + " characters)";
    } else {
      s += "\"";
    }
    return (anchored_[state] ? "\"" : "<any value> followed by \"") + s;
  }

 private:
  static constexpr uint32_t kEmpty = 0;
  static constexpr uint32_t kAny = 1;

  struct Node {
    uint32_t parent = kEmpty;
    uint32_t token = 0;
    uint64_t length = 0;  // characters below the root
  };

  uint32_t token(std::string_view value) {
    auto [it, inserted] = token_ids_.try_emplace(value, static_cast<uint32_t>(tokens_.size()));
    if (inserted) tokens_.push_back(value);
    return it->second;
  }

  uint32_t child(uint32_t parent, uint32_t t) {
    const uint64_t key = uint64_t{parent} << 32 | t;
    auto [it, inserted] = children_.try_emplace(key, static_cast<uint32_t>(nodes_.size()));
    if (inserted) {
      nodes_.push_back({parent, t, nodes_[parent].length + tokens_[t].size()});
      anchored_.push_back(anchored_[parent]);
    }
    return it->second;
  }

  uint32_t exactly(std::string_view value) {
    return value.empty() ? kEmpty : child(kEmpty, token(value));
  }

  // Whether state `n` can be the string get i read: equal to it, or for a node below "any
  // value", a suffix of it. Memoized per (state, get).
  bool holds(uint32_t n, size_t i) {
    const uint64_t key = uint64_t{n} << 32 | i;
    if (auto it = holds_.find(key); it != holds_.end()) return it->second;
    const std::string_view read = read_value(*ops_[i]);
    const bool exact = anchored_[n];
    bool ok = exact ? nodes_[n].length == read.size() : nodes_[n].length <= read.size();
    size_t end = read.size();
    for (uint32_t m = n; ok && m != kEmpty && m != kAny; m = nodes_[m].parent) {
      const std::string_view t = tokens_[nodes_[m].token];
      ok = read.substr(end - t.size(), t.size()) == t;
      end -= t.size();
    }
    holds_.emplace(key, ok);
    return ok;
  }

  const std::vector<const Operation*>& ops_;
  std::vector<Node> nodes_;
  std::vector<uint8_t> anchored_ = {1, 0};  // per node: below "" (1) or below "any value" (0)
  std::unordered_map<uint64_t, uint32_t> children_;
  std::vector<std::string_view> tokens_;  // the values appended or put, and values read
  std::unordered_map<std::string_view, uint32_t> token_ids_;
  std::unordered_map<uint64_t, bool> holds_;
};

// The budget of a key's first search: keys that fail within it are found before any key's
// search runs long.
constexpr uint64_t kFirstPassStates = 100'000;

// The budget of the search over the structure's failing window. The window holds whole chains
// of appends (each get with every write its value names), whose orders a search can take long
// to rule out; past the budget, the structure's window is reported as it is.
constexpr uint64_t kWindowStates = 1'000'000;

// Whether an operation can constrain the history: a failed write never took effect, and a get
// that did not complete ok read nothing.
bool constrains(const Operation& op) {
  if (op.kind == OpKind::kGet) return op.outcome == Outcome::kOk;
  return op.outcome != Outcome::kFail;
}

// One key's operations, searched.
LinearizabilityResult search(const std::vector<const Operation*>& ops, const CheckOptions& opts) {
  std::vector<Operation> key_history;
  key_history.reserve(ops.size());
  for (const Operation* op : ops) key_history.push_back(*op);
  return check_by_key(
      key_history,
      [](std::vector<const Operation*>& key_ops) -> std::unique_ptr<Model> {
        drop_unobserved_writes(key_ops);
        return std::make_unique<KvModel>(key_ops);
      },
      opts);
}

// The key decided without search (check/kv_structure.h), or nullopt when its values are not a
// prefix code. When it is not linearizable, the structure's window, which fails by itself, is
// searched for the usual explanation and the smallest failing window inside it.
std::optional<LinearizabilityResult> decide_by_structure(const std::string& key,
                                                         std::vector<const Operation*> ops,
                                                         const CheckOptions& opts) {
  std::erase_if(ops, [](const Operation* op) { return !constrains(*op); });
  drop_unobserved_writes(ops);
  const KvStructureVerdict v = check_kv_structure(ops);
  if (!v.applies) return std::nullopt;
  LinearizabilityResult r;
  if (v.linearizable) return r;
  std::vector<const Operation*> window;
  for (size_t i : v.window) window.push_back(ops[i]);
  CheckOptions window_opts = opts;
  window_opts.max_states = std::min(opts.max_states, kWindowStates);
  r = search(window, window_opts);
  if (r.verdict == Verdict::kNotLinearizable) {
    r.explanation = "key " + key + ": " + v.reason + "\n" + r.explanation;
    return r;
  }
  // The search of the window was cut short: the structure's window stands by itself.
  const bool disagree = r.verdict == Verdict::kLinearizable;  // a checker bug
  r.verdict = disagree ? Verdict::kUnknown : Verdict::kNotLinearizable;
  r.key = key;
  r.failing_window.clear();
  for (const Operation* op : window) r.failing_window.push_back(*op);
  uint64_t latest = 0;
  for (const Operation* op : window) {
    if (op->outcome == Outcome::kOk && op->complete_time >= latest) {
      latest = op->complete_time;
      r.failed_id = op->id;  // the last to complete
    }
  }
  r.explanation = "key " + key + ": not linearizable: " + v.reason + "\nthe failing window (" +
                  std::to_string(window.size()) + " operations) is not linearizable by itself\n";
  if (disagree) {
    r.explanation = "key " + key + ": the structure (" + v.reason + ") and the search disagree\n";
  }
  return r;
}

// Folds one key's result into the history's; true once the history is known not linearizable.
bool merge(LinearizabilityResult& out, LinearizabilityResult r) {
  out.states_explored += r.states_explored;
  if (r.verdict == Verdict::kLinearizable) return false;
  if (r.verdict == Verdict::kUnknown) {
    if (out.verdict == Verdict::kLinearizable) {
      out.verdict = Verdict::kUnknown;
      out.key = r.key;
      out.explanation = r.explanation;
    }
    return false;
  }
  out.verdict = Verdict::kNotLinearizable;
  out.key = r.key;
  out.failing_window = std::move(r.failing_window);
  out.failed_id = r.failed_id;
  out.explanation = std::move(r.explanation);
  return true;
}

}  // namespace

LinearizabilityResult check_string_kv(const std::vector<Operation>& history,
                                      const CheckOptions& opts, KvDecision decision) {
  LinearizabilityResult out;
  if (const std::optional<std::string> problem = validate(history)) {
    out.verdict = Verdict::kUnknown;
    out.explanation = "invalid history: " + *problem + "\n";
    return out;
  }
  std::map<std::string, std::vector<const Operation*>> by_key;
  for (const Operation& op : history) by_key[op.key].push_back(&op);
  // Keys the structure decides first; then the searched ones on a small budget, so that a key
  // that fails quickly is found before one whose search runs long (keys are independent, so
  // any failing key decides the history); then those still undecided on the full budget.
  std::vector<const std::string*> searched;
  for (auto& [key, ops] : by_key) {
    std::optional<LinearizabilityResult> r;
    if (decision == KvDecision::kStructure) r = decide_by_structure(key, ops, opts);
    if (!r) {
      searched.push_back(&key);
      continue;
    }
    out.keys_without_search += 1;
    if (merge(out, std::move(*r))) return out;
  }
  CheckOptions first = opts;
  first.max_states = std::min<uint64_t>(opts.max_states, kFirstPassStates);
  std::vector<const std::string*> undecided;
  for (const std::string* key : searched) {
    LinearizabilityResult r = search(by_key[*key], first);
    if (r.verdict == Verdict::kUnknown && first.max_states < opts.max_states) {
      out.states_explored += r.states_explored;
      undecided.push_back(key);
      continue;
    }
    if (merge(out, std::move(r))) return out;
  }
  for (const std::string* key : undecided) {
    if (merge(out, search(by_key[*key], opts))) return out;
  }
  return out;
}

}  // namespace synod::check
