// The reference for the checker's tests: tries every order of the constraining operations that
// respects real time, skipping indeterminate ones at will, straight from the definition of
// linearizability (Herlihy & Wing) and the register model of check_kv. Exponential; orders that
// reach an already failed (placed set, value) are not tried again.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "check/history.h"

namespace synod::check::testing {

inline bool brute_force_linearizable(const std::vector<Operation>& history) {
  std::map<std::string, std::vector<Operation>> by_key;
  for (const Operation& op : history) {
    const bool dropped =
        op.outcome == Outcome::kFail || (op.kind == OpKind::kGet && op.outcome == Outcome::kInfo);
    if (!dropped) by_key[op.key].push_back(op);
  }
  using State = std::optional<std::string>;
  auto apply = [](const Operation& op, const State& s) -> std::optional<State> {
    const bool holds_expected = s && *s == op.expected;
    switch (op.kind) {
      case OpKind::kGet:
        return s == op.output ? std::optional<State>(s) : std::nullopt;
      case OpKind::kPut:
        return State(op.value);
      case OpKind::kCas:
        if (op.cas_succeeded || op.outcome == Outcome::kInfo) {
          return holds_expected ? std::optional<State>(State(op.value)) : std::nullopt;
        }
        return holds_expected ? std::nullopt : std::optional<State>(s);
      default:  // register histories only
        return std::nullopt;
    }
    return std::nullopt;
  };
  for (const auto& [key, ops] : by_key) {
    const auto required = [&](size_t i) { return ops[i].outcome == Outcome::kOk; };
    std::set<std::pair<uint32_t, State>> failed;
    std::function<bool(uint32_t, const State&)> search = [&](uint32_t used, const State& s) {
      bool done = true;
      for (size_t i = 0; i < ops.size(); ++i) done &= !required(i) || (used >> i & 1);
      if (done) return true;
      if (failed.contains({used, s})) return false;
      for (size_t i = 0; i < ops.size(); ++i) {
        if (used >> i & 1) continue;
        bool blocked = false;  // an unplaced operation returned before this one was invoked
        for (size_t j = 0; j < ops.size(); ++j) {
          blocked |= !(used >> j & 1) && required(j) && ops[j].complete_time < ops[i].invoke_time;
        }
        if (blocked) continue;
        const std::optional<State> next = apply(ops[i], s);
        if (next && search(used | 1u << i, *next)) return true;
      }
      failed.insert({used, s});
      return false;
    };
    if (!search(0, std::nullopt)) return false;
  }
  return true;
}

}  // namespace synod::check::testing
