#include "check/register_reduction.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace synod::check {

namespace {

// Times follow the search's convention: operations that touch (one returns at the instant the
// other is invoked) are concurrent, so "A precedes B" is a strict A.complete < B.invoke.
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

bool certain(const Operation& op) {
  return op.outcome == Outcome::kOk;
}
bool is_mismatch(const Operation& op) {
  return op.kind == OpKind::kCas && certain(op) && !op.cas_succeeded;
}
// A put, or a cas that swapped or may have (an indeterminate cas that took effect swapped).
bool may_write(const Operation& op) {
  return op.kind == OpKind::kPut || (op.kind == OpKind::kCas && !is_mismatch(op));
}
bool certainly_swaps(const Operation& op) {
  return op.kind == OpKind::kCas && certain(op) && op.cas_succeeded;
}
uint64_t completion(const Operation& op) {
  return certain(op) ? op.complete_time : kNever;
}

// Small ids for values: 0 is "absent" (what a read of a missing key returns).
class ValueIds {
 public:
  static constexpr uint32_t kAbsent = 0;
  uint32_t of(const std::string& v) {
    return ids_.try_emplace(v, static_cast<uint32_t>(ids_.size()) + 1).first->second;
  }
  uint32_t read_by(const Operation& get) { return get.output ? of(*get.output) : kAbsent; }
  uint32_t count() const { return static_cast<uint32_t>(ids_.size()) + 1; }

 private:
  std::unordered_map<std::string, uint32_t> ids_;
};

// Completed operations that show the register holding some value v at their linearization
// point: a completed write of v, a completed read of v. Answers "the earliest completion among
// those invoked after time t that show a value other than e": by then the register has held
// something else than e at least once since t.
class Witnesses {
 public:
  void add(uint64_t invoke, uint64_t complete, uint32_t value) {
    all_.push_back({invoke, complete, value});
  }

  void build() {
    std::sort(all_.begin(), all_.end(),
              [](const Witness& a, const Witness& b) { return a.invoke < b.invoke; });
    suffix_.assign(all_.size() + 1, Earliest{});
    for (size_t i = all_.size(); i-- > 0;) {
      suffix_[i] = suffix_[i + 1];
      suffix_[i].add(all_[i].complete, all_[i].value);
    }
  }

  uint64_t earliest_after(uint64_t t, uint32_t not_value) const {
    const auto first = std::upper_bound(all_.begin(), all_.end(), t,
                                        [](uint64_t x, const Witness& w) { return x < w.invoke; });
    return suffix_[static_cast<size_t>(first - all_.begin())].earliest_except(not_value);
  }

 private:
  struct Witness {
    uint64_t invoke;
    uint64_t complete;
    uint32_t value;
  };
  // The two earliest completions with different values: whatever value is excluded, one of
  // them is the earliest of the rest.
  struct Earliest {
    std::array<std::pair<uint64_t, uint32_t>, 2> best{{{kNever, 0}, {kNever, 0}}};
    void add(uint64_t complete, uint32_t value) {
      if (best[0].first != kNever && best[0].second == value) {
        best[0].first = std::min(best[0].first, complete);
      } else if (best[1].first != kNever && best[1].second == value) {
        best[1].first = std::min(best[1].first, complete);
      } else if (complete < best[1].first) {
        best[1] = {complete, value};
      }
      if (best[1].first < best[0].first) std::swap(best[0], best[1]);
    }
    uint64_t earliest_except(uint32_t value) const {
      for (const auto& [complete, v] : best) {
        if (complete != kNever && v != value) return complete;
      }
      return kNever;
    }
  };
  std::vector<Witness> all_;
  std::vector<Earliest> suffix_;
};

// What the operations of one key say about each value's lifetime.
class Lifetimes {
 public:
  explicit Lifetimes(const std::vector<const Operation*>& ops) {
    std::vector<uint32_t> written(ops.size()), read(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      const Operation& op = *ops[i];
      if (may_write(op)) written[i] = ids_.of(op.value);
      if (op.kind == OpKind::kGet) read[i] = ids_.read_by(op);
      if (op.kind == OpKind::kCas) ids_.of(op.expected);
    }
    writers_.assign(ids_.count(), 0);
    writer_.assign(ids_.count(), nullptr);
    settled_.assign(ids_.count(), kNever);
    observed_.assign(ids_.count(), false);
    Witnesses witnesses;
    for (size_t i = 0; i < ops.size(); ++i) {
      const Operation& op = *ops[i];
      if (may_write(op)) {
        ++writers_[written[i]];
        writer_[written[i]] = &op;
        settled_[written[i]] = std::min(settled_[written[i]], completion(op));
      }
      if (op.kind == OpKind::kGet) observed_[read[i]] = true;
      if (op.kind == OpKind::kCas) observed_[ids_.of(op.expected)] = true;
      if (!certain(op) || is_mismatch(op)) continue;
      // A certain read of v, or a certain swap from v: the writer of v took effect before it.
      const std::optional<uint32_t> needs = op.kind == OpKind::kGet ? std::optional(read[i])
                                            : op.kind == OpKind::kCas
                                                ? std::optional(ids_.of(op.expected))
                                                : std::nullopt;
      if (needs) settled_[*needs] = std::min(settled_[*needs], op.complete_time);
      witnesses.add(op.invoke_time, op.complete_time,
                    op.kind == OpKind::kGet ? read[i] : written[i]);
    }
    witnesses.build();
    ended_.assign(ids_.count(), kNever);
    for (uint32_t v = 1; v < ids_.count(); ++v) {
      if (writers_[v] == 1 && settled_[v] != kNever) {
        ended_[v] = witnesses.earliest_after(settled_[v], v);
      }
    }
  }

  // The value has no writer among the operations: the register, absent at first, never holds it.
  bool never_written(const std::string& v) { return writers_[ids_.of(v)] == 0; }

  // The only operation that may write the value, or nullptr.
  const Operation* sole_writer(const std::string& v) {
    const uint32_t id = ids_.of(v);
    return writers_[id] == 1 ? writer_[id] : nullptr;
  }

  // A time by which the register has certainly stopped holding the value for good, or kNever:
  // the value has one writer W, W took effect by `settled` if at all (its completion, or that of
  // a certain read of the value or a certain swap from it), and a certain operation invoked
  // after `settled` and completed by then showed the register holding another value. W being
  // the value's only writer, the register never holds it again.
  uint64_t ended(const std::string& v) { return ended_[ids_.of(v)]; }

  // Whether some read returns the value or some cas expects it.
  bool observed(const std::string& v) { return observed_[ids_.of(v)]; }

 private:
  ValueIds ids_;
  std::vector<uint32_t> writers_;         // per value: how many operations may write it
  std::vector<const Operation*> writer_;  // per value: one of them (the only one, when one)
  std::vector<uint64_t> settled_;
  std::vector<uint64_t> ended_;
  std::vector<bool> observed_;
};

// Rules 1 and 2: cas operations that read nothing or change nothing.
//
// Rule 1, a mismatch cas M expecting e, in a linearization of the rest: if e is never written
// the register never holds e; if e's only writer W is invoked after M completes, W comes after
// M; if e ended (Lifetimes::ended) before M was invoked, W and the witness O both come before
// M, W before O, and O left another value there. So wherever M goes in its interval the
// register does not hold e, M's answer is right there, and M changes nothing: putting it back
// keeps the linearization, and taking it out of one of the whole history keeps one as well.
//
// Rule 2, an indeterminate cas C expecting e: to have taken effect it swapped, so the register
// held e at a point after C's invocation. Never, if e is never written or ended before C was
// invoked. Nor if another cas S certainly swapped from e: e's only writer puts e there once, and
// the first swap away from it ends it, so S and C cannot both swap. C then took effect in no
// linearization, and a linearization without it is one with it not taking effect.
bool reads_or_changes_nothing(const Operation& op, Lifetimes& life,
                              const std::unordered_map<std::string, uint32_t>& swaps_from) {
  if (op.kind != OpKind::kCas) return false;
  if (life.never_written(op.expected)) return is_mismatch(op) || op.outcome == Outcome::kInfo;
  const Operation* w = life.sole_writer(op.expected);
  if (w == nullptr) return false;
  if (is_mismatch(op)) {
    return w->invoke_time > op.complete_time || life.ended(op.expected) < op.invoke_time;
  }
  if (op.outcome != Outcome::kInfo) return false;
  const auto s = swaps_from.find(op.expected);
  return life.ended(op.expected) < op.invoke_time || (s != swaps_from.end() && s->second > 0);
}

// Rule 3, indeterminate writes of values no remaining operation observes (no read returns
// them, no cas expects them). Take a linearization of the whole history and remove all such
// writes that took effect. Reads and certain swaps see the same register as before: each saw
// an observed value, so the last write before it is not one removed. Indeterminate cas that
// swapped likewise. A mismatch cas M expecting e, at point m, can now fail only if the register
// holds e at m: the last remaining write before m is e's writer W, and a removed write P took
// effect after W and before m, the first such while e was current, at p. So P.invoke <= p <= m
// <= M.complete. If e ended (Lifetimes::ended) at t, with witness O (a certain operation,
// never removed): O took effect after W; before m it would put or show another value after W
// and before m, so a remaining write other than W would follow W there. Hence m <= O's point,
// and p <= t. Removing only the writes invoked after max over M of min(M.complete, end of M's
// e) therefore breaks no M; and a linearization without them is one where they never happened.
std::optional<uint64_t> last_use_of_an_unobserved_write(const std::vector<const Operation*>& ops,
                                                        Lifetimes& life) {
  std::optional<uint64_t> last;
  for (const Operation* op : ops) {
    if (!is_mismatch(*op)) continue;
    const uint64_t use = std::min(op->complete_time, life.ended(op->expected));
    last = std::max(last.value_or(0), use);
  }
  return last;
}

bool reduce_once(std::vector<const Operation*>& ops) {
  const size_t before = ops.size();
  {
    Lifetimes life(ops);
    std::unordered_map<std::string, uint32_t> swaps_from;  // expected value -> certain swaps
    for (const Operation* op : ops) {
      if (certainly_swaps(*op)) ++swaps_from[op->expected];
    }
    std::erase_if(
        ops, [&](const Operation* op) { return reads_or_changes_nothing(*op, life, swaps_from); });
  }
  Lifetimes life(ops);
  const std::optional<uint64_t> last_use = last_use_of_an_unobserved_write(ops, life);
  std::erase_if(ops, [&](const Operation* op) {
    return op->outcome == Outcome::kInfo && may_write(*op) && !life.observed(op->value) &&
           (!last_use || op->invoke_time > *last_use);
  });
  return ops.size() != before;
}

}  // namespace

void reduce_register_history(std::vector<const Operation*>& ops) {
  // Each round drops at least one operation or ends it.
  while (reduce_once(ops)) {
  }
}

}  // namespace synod::check
