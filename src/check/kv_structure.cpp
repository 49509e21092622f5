#include "check/kv_structure.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <set>
#include <string_view>
#include <unordered_map>

namespace synod::check {

namespace {

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();  // an open write's completion
constexpr size_t kNone = std::numeric_limits<size_t>::max();
// The initial "" as a pseudo-write: a get that read "" read from it, and an append that a get's
// value names first followed it.
constexpr size_t kInitial = kNone - 1;

bool is_write(const Operation& op) {
  return op.kind == OpKind::kPut || op.kind == OpKind::kAppend;
}

std::string name(const Operation& op) {
  return "#" + std::to_string(op.id);
}

// A block: a put (or the initial value), then its chain of appends, each write followed by the
// gets that read from it; or a write no get saw, alone. Operations keep the order of the block
// in every linearization, and blocks do not interleave (see parse and build_blocks).
struct Block {
  size_t base = kNone;         // its first write, or kInitial
  uint64_t deadline = kNever;  // the earliest completion of an operation in the block
  uint64_t release = 0;        // the latest invocation of an operation in the block
  size_t deadline_op = kNone;
  size_t release_op = kNone;
};

class Structure {
 public:
  explicit Structure(const std::vector<const Operation*>& ops)
      : ops_(ops),
        pred_(ops.size(), kNone),
        succ_(ops.size(), kNone),
        witness_(ops.size(), kNone),
        read_from_(ops.size(), kNone),
        reads_(ops.size()),
        reads_summary_(ops.size()) {}

  KvStructureVerdict run() {
    if (!collect()) return verdict_;
    verdict_.applies = true;
    for (size_t g : gets_) {
      if (!parse(g)) return verdict_;
    }
    std::vector<Block> blocks;
    if (!build_blocks(blocks) || !order_blocks(blocks)) return verdict_;
    verdict_.linearizable = true;
    return verdict_;
  }

 private:
  // What a write's gets have in common: the earliest completion and the latest invocation.
  struct Reads {
    uint64_t deadline = kNever;
    uint64_t release = 0;
    size_t deadline_op = kNone;
    size_t release_op = kNone;
  };

  const Operation& op(size_t i) const { return *ops_[i]; }
  uint64_t completion(size_t i) const {
    return op(i).outcome == Outcome::kInfo ? kNever : op(i).complete_time;
  }

  // Sorts the key's operations into gets and writes, and checks the written values form a
  // prefix code: distinct, non-empty, none a prefix of another. Sorted, a value that is a prefix
  // of some other is a prefix of the one right after it.
  bool collect() {
    for (size_t i = 0; i < ops_.size(); ++i) {
      const Operation& o = op(i);
      if (o.kind == OpKind::kGet) {
        if (o.outcome == Outcome::kOk) gets_.push_back(i);
      } else if (!is_write(o)) {
        return false;
      } else if (o.outcome != Outcome::kFail) {
        if (o.value.empty()) return false;
        writes_.push_back(i);
      }
    }
    std::vector<std::string_view> values;
    for (size_t w : writes_) values.push_back(op(w).value);
    std::sort(values.begin(), values.end());
    for (size_t i = 1; i < values.size(); ++i) {
      if (values[i].starts_with(values[i - 1])) return false;
    }
    for (size_t w : writes_) {
      by_value_.emplace(op(w).value, w);
      lengths_.push_back(op(w).value.size());
    }
    std::sort(lengths_.begin(), lengths_.end());
    lengths_.erase(std::unique(lengths_.begin(), lengths_.end()), lengths_.end());
    return true;
  }

  // Splits get g's value into the written values, left to right. In a prefix code at most one
  // value starts at each position, so the split, when there is one, is the only one; and the
  // state of the key is always the concatenation of the values of the writes that took effect
  // since the last put (or since the start), in order. So the split names exactly the writes
  // that built the value g read, in the order they took effect: the first a put or an append
  // onto the initial "", the others appends, each a distinct operation (one operation takes
  // effect once). Each append must then follow, right after, the write before it in the split:
  // a write in between would have added its own value (an append) or replaced the value (a
  // put), and as each write takes effect once, the value could not have come back. Records
  // those predecessors; fails when two gets name different ones, or one write right after two.
  bool parse(size_t g) {
    const std::string_view value = op(g).output ? std::string_view(*op(g).output) : "";
    if (auto it = parsed_.find(value); it != parsed_.end()) {
      read_from_[g] = read_from_[it->second];
      reads_of(read_from_[g]).push_back(g);
      return true;
    }
    std::vector<size_t> split;
    for (size_t pos = 0; pos < value.size();) {
      const size_t w = write_at(value, pos);
      if (w == kNone) {
        return fail(name(op(g)) + " read a value that no sequence of the key's writes builds",
                    chain_window(g, split));
      }
      if (op(w).kind == OpKind::kPut && !split.empty()) {
        split.push_back(w);
        return fail(name(op(g)) + " read the value of put " + name(op(w)) +
                        " after other writes' (a put replaces the value)",
                    chain_window(g, split));
      }
      const size_t pred =
          split.empty() ? (op(w).kind == OpKind::kPut ? kNone : kInitial) : split.back();
      split.push_back(w);
      if (!link(w, pred, g, split)) return false;
      pos += op(w).value.size();
    }
    read_from_[g] = split.empty() ? kInitial : split.back();
    reads_of(read_from_[g]).push_back(g);
    parsed_.emplace(value, g);
    return true;
  }

  // The write whose value starts at `pos`, or kNone.
  size_t write_at(std::string_view value, size_t pos) const {
    for (size_t len : lengths_) {
      if (pos + len > value.size()) break;
      if (auto it = by_value_.find(value.substr(pos, len)); it != by_value_.end())
        return it->second;
    }
    return kNone;
  }

  // Records that write w follows `pred` (kNone for a put) in get g's value.
  bool link(size_t w, size_t pred, size_t g, const std::vector<size_t>& split) {
    if (witness_[w] == kNone) {
      witness_[w] = g;
      pred_[w] = pred;
      if (pred == kNone) return true;
      size_t& next = pred == kInitial ? initial_succ_ : succ_[pred];
      if (next == kNone) {
        next = w;
        return true;
      }
      std::vector<size_t> window = chain_window(g, split);
      append_read(witness_[next], window);
      return fail(name(op(g)) + " read " + name(op(w)) + " right after " + describe(pred) +
                      ", and " + name(op(witness_[next])) + " read " + name(op(next)) +
                      " right after it: one of them would have changed the value in between",
                  window);
    }
    if (pred_[w] == pred) return true;
    std::vector<size_t> window = chain_window(g, split);
    if (witness_[w] == g) {
      return fail(
          name(op(g)) + " read the value of " + name(op(w)) + " twice (a write takes effect once)",
          window);
    }
    append_read(witness_[w], window);
    return fail(name(op(g)) + " read " + name(op(w)) + " right after " + describe(pred) + ", but " +
                    name(op(witness_[w])) + " read it right after " + describe(pred_[w]),
                window);
  }

  std::string describe(size_t w) const {
    if (w == kInitial) return "the initial empty value";
    if (w == kNone) return "nothing (as a put)";
    return name(op(w));
  }

  std::vector<size_t>& reads_of(size_t w) { return w == kInitial ? initial_reads_ : reads_[w]; }

  // Get g and the writes of its value that are split so far.
  std::vector<size_t> chain_window(size_t g, const std::vector<size_t>& split) const {
    std::vector<size_t> window = split;
    window.push_back(g);
    return window;
  }

  // Adds get g, fully split, and the writes its value names (its chain of predecessors).
  void append_read(size_t g, std::vector<size_t>& window) const {
    window.push_back(g);
    for (size_t w = read_from_[g]; w != kInitial && w != kNone; w = pred_[w]) window.push_back(w);
  }

  // An operation with what ties it to its block: a get with the writes of its value; a write a
  // get saw with that get; a write nobody saw alone.
  void append_with_context(size_t i, std::vector<size_t>& window) const {
    if (op(i).kind == OpKind::kGet) return append_read(i, window);
    if (witness_[i] == kNone) return window.push_back(i);
    append_read(witness_[i], window);
  }

  bool fail(std::string reason, std::vector<size_t> window) {
    std::sort(window.begin(), window.end());
    window.erase(std::unique(window.begin(), window.end()), window.end());
    verdict_.reason = std::move(reason);
    verdict_.window = std::move(window);
    return false;
  }

  // Walks each block in its forced order, taking every operation at the earliest point of its
  // interval: the latest invocation so far. Given the order, that is the best any
  // linearization can do (points never decrease along it, and an operation ordered after
  // another cannot take effect before that one's invocation), so condition 1 of the header is
  // that each operation completes no earlier than that point. The gets of one write may go in
  // any order among themselves: in order of invocation, each needs only the point reached at
  // their write. Also records each block's earliest completion and latest invocation.
  bool build_blocks(std::vector<Block>& blocks) {
    for (size_t i = 0; i < ops_.size(); ++i) {
      for (size_t g : reads_[i]) note_read(reads_summary_[i], g);
    }
    for (size_t g : initial_reads_) note_read(initial_summary_, g);
    if (!initial_reads_.empty() || initial_succ_ != kNone) {
      blocks.push_back({kInitial});
      if (!walk(blocks.back())) return false;
    }
    for (size_t w : writes_) {
      const bool seen = witness_[w] != kNone;
      if (seen && op(w).kind == OpKind::kAppend) continue;  // inside another write's block
      // A write no get saw: if it is indeterminate, it may be taken never to have happened (had
      // it happened, no get took effect between it and the next put, or the end: its value would
      // be in what that get read; so the rest stays a linearization without it). If it
      // completed ok, it took effect somewhere no get follows before the next put: between
      // blocks, as a block of its own.
      if (!seen && op(w).outcome == Outcome::kInfo) continue;
      blocks.push_back({w});
      if (!walk(blocks.back())) return false;
    }
    return true;
  }

  static void note(uint64_t invoke, uint64_t complete, size_t i, Reads& r) {
    if (r.deadline_op == kNone || complete < r.deadline) {
      r.deadline = complete;
      r.deadline_op = i;
    }
    if (r.release_op == kNone || invoke > r.release) {
      r.release = invoke;
      r.release_op = i;
    }
  }
  void note_read(Reads& r, size_t g) { note(op(g).invoke_time, op(g).complete_time, g, r); }

  bool walk(Block& b) {
    Reads seen;  // so far: the earliest completion, and the latest invocation (the point)
    size_t w = b.base;
    while (w != kNone) {
      if (w != kInitial) {
        note(op(w).invoke_time, completion(w), w, seen);
        if (completion(w) < seen.release) return order_violation(seen.release_op, w);
      }
      const Reads& r = w == kInitial ? initial_summary_ : reads_summary_[w];
      if (r.deadline_op != kNone) {
        if (r.deadline < seen.release) return order_violation(seen.release_op, r.deadline_op);
        note_read(seen, r.release_op);
        note_read(seen, r.deadline_op);
      }
      w = w == kInitial ? initial_succ_ : succ_[w];
    }
    b.deadline = seen.deadline;
    b.deadline_op = seen.deadline_op;
    b.release = seen.release;
    b.release_op = seen.release_op;
    return true;
  }

  bool order_violation(size_t before, size_t after) {
    std::vector<size_t> window;
    append_with_context(before, window);
    append_with_context(after, window);
    return fail("the values the gets read order " + name(op(before)) + " before " +
                    name(op(after)) +
                    " (a put or the initial value, then its appends in order, each write before "
                    "the gets that read it), but " +
                    name(op(before)) + " was invoked at " + std::to_string(op(before).invoke_time) +
                    ", after " + name(op(after)) + " completed at " +
                    std::to_string(op(after).complete_time),
                window);
  }

  // Condition 2: an order of the blocks in which none starts after another that must follow it
  // ended. Block B may precede block C only if B's latest invocation is no later than C's
  // earliest completion (every operation of C comes after all of B's, and the points never
  // decrease); and given that for every pair in order, the earliest points fit (the point at
  // which C starts is the latest invocation before it). So an order exists exactly when the
  // relation "C must precede B when C's earliest completion is before B's latest invocation"
  // has no cycle. The initial block comes first. Among the rest, a block no other must precede
  // can go next: the one with the earliest completion, if its latest invocation is no later
  // than the second earliest completion; else any other whose latest invocation is no later
  // than that earliest completion, and the one invoked earliest is the best candidate. When
  // neither exists, the two blocks with the earliest completions each must precede the other.
  bool order_blocks(const std::vector<Block>& blocks) {
    std::set<std::pair<uint64_t, size_t>> by_deadline, by_release;
    size_t first = 0;
    if (!blocks.empty() && blocks.front().base == kInitial) first = 1;
    for (size_t i = first; i < blocks.size(); ++i) {
      by_deadline.emplace(blocks[i].deadline, i);
      by_release.emplace(blocks[i].release, i);
    }
    if (first == 1 && !by_deadline.empty() && blocks.front().release > by_deadline.begin()->first) {
      return overlap(blocks.front(), blocks[by_deadline.begin()->second]);
    }
    while (by_deadline.size() > 1) {
      const size_t x = by_deadline.begin()->second;
      const uint64_t second_deadline = std::next(by_deadline.begin())->first;
      size_t next = kNone;
      if (blocks[x].release <= second_deadline) {
        next = x;
      } else {
        auto y = by_release.begin();
        if (y->second == x) ++y;
        if (y->first <= blocks[x].deadline) next = y->second;
      }
      if (next == kNone) return overlap(blocks[x], blocks[std::next(by_deadline.begin())->second]);
      by_deadline.erase({blocks[next].deadline, next});
      by_release.erase({blocks[next].release, next});
    }
    return true;
  }

  std::string describe_block(const Block& b) const {
    if (b.base == kInitial) return "the initial empty value (with its appends)";
    if (op(b.base).kind == OpKind::kPut && witness_[b.base] != kNone) {
      return "the value of put " + name(op(b.base)) + " (with its appends)";
    }
    return "the write " + name(op(b.base)) + ", which no get saw,";
  }

  // When a block must be in effect: all along its span if an operation of it was invoked
  // after another completed, else at some point between.
  std::string span(const Block& b) const {
    const std::string completed =
        std::to_string(b.deadline) + " (" + name(op(b.deadline_op)) + " completed)";
    const std::string invoked =
        std::to_string(b.release) + " (" + name(op(b.release_op)) + " invoked)";
    if (b.deadline < b.release) return "must hold from " + completed + " until " + invoked;
    return "must take effect between " + invoked + " and " + completed;
  }

  // Blocks b and c must each come before the other: each has an operation invoked after the
  // other's earliest completion.
  bool overlap(const Block& b, const Block& c) {
    std::vector<size_t> window;
    for (size_t i : {b.deadline_op, b.release_op, c.deadline_op, c.release_op}) {
      append_with_context(i, window);
    }
    return fail(describe_block(b) + " " + span(b) + ", and " + describe_block(c) + " " + span(c) +
                    ": neither can come before the other",
                window);
  }

  const std::vector<const Operation*>& ops_;
  std::vector<size_t> gets_;    // ok gets
  std::vector<size_t> writes_;  // puts and appends that did not fail
  std::unordered_map<std::string_view, size_t> by_value_;
  std::vector<size_t> lengths_;  // distinct lengths of the written values, ascending
  std::unordered_map<std::string_view, size_t> parsed_;  // a value read -> a get that read it
  std::vector<size_t> pred_;       // per write a get saw: the write right before it, kInitial or
                                   // kNone (a put)
  std::vector<size_t> succ_;       // per write: the append a get saw right after it
  std::vector<size_t> witness_;    // per write: the first get whose value names it
  std::vector<size_t> read_from_;  // per get: the last write of its value, or kInitial
  std::vector<std::vector<size_t>> reads_;  // per write: the gets that read from it
  std::vector<Reads> reads_summary_;  // per write: its gets' earliest completion, latest invocation
  std::vector<size_t> initial_reads_;
  Reads initial_summary_;
  size_t initial_succ_ = kNone;
  KvStructureVerdict verdict_;
};

}  // namespace

KvStructureVerdict check_kv_structure(const std::vector<const Operation*>& ops) {
  KvStructureVerdict v = Structure(ops).run();
  if (!v.applies || v.linearizable) return v;
  // The window is built to fail by itself (the condition it breaks involves only its
  // operations). Confirm it, and fall back to all of the key's operations if it does not.
  std::vector<const Operation*> window;
  for (size_t i : v.window) window.push_back(ops[i]);
  const KvStructureVerdict w = Structure(window).run();
  assert(w.applies && !w.linearizable);
  if (!w.applies || w.linearizable) {
    v.window.resize(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) v.window[i] = i;
  }
  return v;
}

}  // namespace synod::check
