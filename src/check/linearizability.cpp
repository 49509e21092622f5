#include "check/linearizability.h"

#include <algorithm>
#include <cassert>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include "check/register_reduction.h"
#include "check/unique_register.h"

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

constexpr uint64_t kNever = UINT64_MAX;  // the return rank of an optional operation
constexpr int32_t kHead = 0;             // sentinel node of an EventList
constexpr int32_t kEnd = -1;

// splitmix64's finalizer: every input bit reaches every output bit, so the low bits that pick a
// hash-table slot are as good as the high ones.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// An operation whose call and return are positions in its partition's event order. Slices of a
// partition reuse these ranks, so they keep exactly the order of the whole.
struct RankedOp {
  uint32_t origin = 0;  // index into the partition: what Model::step is told
  uint64_t call = 0;
  // Required: its return. Optional: the latest it may take effect at, kNever but for an
  // operation open at the start of a slice that returns within it (see slice).
  uint64_t ret = kNever;
  bool optional = false;
};

// Orders calls and returns by time. At equal times calls come first, so operations that touch
// count as concurrent (the permissive reading); then by index, so the order is deterministic.
std::vector<RankedOp> rank_events(const std::vector<SearchOp>& ops) {
  struct Event {
    uint64_t time;
    bool is_return;
    uint32_t op;
  };
  std::vector<Event> events;
  events.reserve(2 * ops.size());
  for (uint32_t i = 0; i < ops.size(); ++i) {
    events.push_back({ops[i].invoke_time, false, i});
    if (!ops[i].optional) events.push_back({ops[i].complete_time, true, i});
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.time, a.is_return, a.op) < std::tie(b.time, b.is_return, b.op);
  });
  std::vector<RankedOp> ranked(ops.size());
  for (uint64_t rank = 0; rank < events.size(); ++rank) {
    const Event& e = events[rank];
    RankedOp& r = ranked[e.op];
    r.origin = e.op;
    r.optional = ops[e.op].optional;
    (e.is_return ? r.ret : r.call) = rank;
  }
  return ranked;
}

// The set of linearized operations of one search, hashed incrementally (Zobrist) and encoded
// compactly for memoization. Required operations are numbered in call order. The search only
// linearizes operations called before the first pending return, so every required operation
// numbered below the lowest pending one is linearized, and only those called between it and
// that return may be: storing just the words between the lowest clear and the highest set bit
// makes a configuration cost a few words, not one bit per operation as a whole bitset would.
// Optional operations may be skipped for good, so their bits are kept whole, apart from the
// key: the memo compares them by inclusion (see ConfigSet). An optional operation whose
// deadline has passed can no longer be linearized, whether it was or not: it is marked spent
// either way, so that configurations differing only in such operations are one.
class LinearizedSet {
 public:
  explicit LinearizedSet(const std::vector<RankedOp>& ops) : slot_(ops.size()), key_(ops.size()) {
    std::vector<uint32_t> by_call(ops.size());
    for (uint32_t i = 0; i < ops.size(); ++i) by_call[i] = i;
    std::sort(by_call.begin(), by_call.end(),
              [&](uint32_t a, uint32_t b) { return ops[a].call < ops[b].call; });
    size_t required = 0, optional = 0;
    for (uint32_t i : by_call) slot_[i] = ops[i].optional ? optional++ : required++;
    for (uint32_t i = 0; i < ops.size(); ++i) key_[i] = mix64((i + 1) * 0x9e3779b97f4a7c15ULL);
    required_.assign((required + 63) / 64, 0);
    optional_.assign((optional + 63) / 64, 0);
    expired_.assign(optional_.size(), 0);
    spent_.assign(optional_.size(), 0);
    is_optional_.resize(ops.size());
    for (uint32_t i = 0; i < ops.size(); ++i) is_optional_[i] = ops[i].optional;
  }

  void insert(uint32_t op) {
    std::vector<uint64_t>& words = words_of(op);
    const size_t w = slot_[op] / 64;
    const uint64_t bit = 1ULL << (slot_[op] % 64);
    assert((words[w] & bit) == 0);
    words[w] |= bit;
    if (is_optional_[op]) return;
    zobrist_ ^= key_[op];
    high_end_ = std::max(high_end_, w + 1);
    while (low_ < required_.size() && required_[low_] == ~0ULL) ++low_;
  }

  void erase(uint32_t op) {
    std::vector<uint64_t>& words = words_of(op);
    const size_t w = slot_[op] / 64;
    const uint64_t bit = 1ULL << (slot_[op] % 64);
    assert((words[w] & bit) != 0);
    words[w] &= ~bit;
    if (is_optional_[op]) return;
    zobrist_ ^= key_[op];
    low_ = std::min(low_, w);
    while (high_end_ > 0 && required_[high_end_ - 1] == 0) --high_end_;
  }

  // The hash of key(state): the required operations linearized and the state.
  uint64_t hash(uint32_t state) const { return mix64(zobrist_ ^ mix64(state + 1ULL)); }

  // Equal keys if and only if equal required sets and states: words below low_ are all ones and
  // words from max(high_end_, low_) on are all zero, so the window and its start say it all.
  void key(uint32_t state, std::vector<uint64_t>& out) const {
    out.clear();
    out.push_back(uint64_t{state} << 32 | low_);
    const size_t end = std::max(high_end_, low_);
    out.insert(out.end(), required_.begin() + low_, required_.begin() + end);
  }

  // An optional operation's deadline passed, or no longer has.
  void expire(uint32_t op) { expired_[slot_[op] / 64] |= 1ULL << (slot_[op] % 64); }
  void unexpire(uint32_t op) { expired_[slot_[op] / 64] &= ~(1ULL << (slot_[op] % 64)); }

  // The optional operations spent, one bit each: linearized, or past their deadline.
  const std::vector<uint64_t>& spent_words() {
    for (size_t w = 0; w < spent_.size(); ++w) spent_[w] = optional_[w] | expired_[w];
    return spent_;
  }

 private:
  std::vector<uint64_t>& words_of(uint32_t op) { return is_optional_[op] ? optional_ : required_; }

  std::vector<uint32_t> slot_;  // bit number in required_ or optional_
  std::vector<uint64_t> key_;   // Zobrist key per operation (required ones only are hashed)
  std::vector<uint8_t> is_optional_;
  std::vector<uint64_t> required_;
  std::vector<uint64_t> optional_;
  std::vector<uint64_t> expired_;  // optional operations past their deadline
  std::vector<uint64_t> spent_;    // scratch: optional_ | expired_
  size_t low_ = 0;                 // every required word below is all ones
  size_t high_end_ = 0;            // every required word from here on is zero
  uint64_t zobrist_ = 0;
};

// The configurations already explored, with subsumption. A configuration is a key (the required
// operations linearized and the model state) and the set O of optional operations spent
// (linearized, or past their deadline). (key, O') subsumes (key, O) when O' is a subset of O:
// the same state, the same required work left, and at least the same optional operations still
// free to take effect, so every continuation of (key, O) is one of (key, O') too. (An optional
// operation has no return it could miss by staying unused. And the latest call linearized in
// (key, O') is no later: its operations are those of (key, O) but for some past their deadline
// there, whose calls come before that latest call; so an optional operation with a deadline
// fits in a continuation of (key, O') whenever it does in one of (key, O).) The search skips a
// configuration a stored one subsumes: stored ones were explored and failed, or are on the
// search's path and will have explored the same continuations by the time the search ends
// (equal sets being the plain memoization of Wing & Gong). Keys sit in open addressing over an
// arena of encodings; each key heads a list of the optional sets stored for it.
class ConfigSet {
 public:
  explicit ConfigSet(size_t optional_words) : optional_words_(optional_words), slots_(1024) {}

  // Adds the configuration; false if a stored one subsumes it.
  bool insert(uint64_t hash, const std::vector<uint64_t>& key,
              const std::vector<uint64_t>& optional) {
    assert(optional.size() == optional_words_);
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {  // ends: at least half the slots are free
      Slot& slot = slots_[i];
      if (slot.offset == kFree) {
        slot = {hash, keys_.size()};
        keys_.push_back(key.size());
        keys_.insert(keys_.end(), key.begin(), key.end());
        keys_.push_back(kNone);  // the head of its list of optional sets
        add_optional(slot.offset + 1 + key.size(), optional);
        if (++keys_stored_ * 2 > slots_.size()) grow();
        return true;
      }
      if (slot.hash != hash || !holds(slot.offset, key)) continue;
      if (optional_words_ == 0) return false;  // the key alone is the configuration
      const uint64_t head = slot.offset + 1 + key.size();
      for (uint64_t node = keys_[head]; node != kNone; node = sets_[node]) {
        if (subset(node + 1, optional)) return false;
      }
      add_optional(head, optional);
      return true;
    }
  }

  uint64_t size() const { return size_; }

 private:
  static constexpr uint64_t kFree = UINT64_MAX;
  static constexpr uint64_t kNone = UINT64_MAX;
  struct Slot {
    uint64_t hash = 0;
    uint64_t offset = kFree;  // of the key's length word in keys_
  };

  bool holds(uint64_t offset, const std::vector<uint64_t>& key) const {
    if (keys_[offset] != key.size()) return false;
    return std::equal(key.begin(), key.end(), keys_.begin() + offset + 1);
  }

  // Whether the optional set stored at sets_[at..] is a subset of `optional`.
  bool subset(uint64_t at, const std::vector<uint64_t>& optional) const {
    for (size_t w = 0; w < optional_words_; ++w) {
      if ((sets_[at + w] & ~optional[w]) != 0) return false;
    }
    return true;
  }

  // Prepends an optional set to the list whose head is keys_[head]. Without optional operations
  // the list stays empty.
  void add_optional(uint64_t head, const std::vector<uint64_t>& optional) {
    ++size_;
    if (optional_words_ == 0) return;
    const uint64_t node = sets_.size();
    sets_.push_back(keys_[head]);
    sets_.insert(sets_.end(), optional.begin(), optional.end());
    keys_[head] = node;
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    const size_t mask = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.offset == kFree) continue;
      size_t i = slot.hash & mask;
      while (slots_[i].offset != kFree) i = (i + 1) & mask;
      slots_[i] = slot;
    }
  }

  const size_t optional_words_;
  std::vector<Slot> slots_;
  std::vector<uint64_t> keys_;  // per key: its length, its words, the head of its list
  std::vector<uint64_t> sets_;  // per optional set: the next in its list, then its words
  uint64_t keys_stored_ = 0;
  uint64_t size_ = 0;  // configurations: optional sets stored, or keys without optional words
};

// Pending events in rank order as a doubly-linked list with a head sentinel (Knuth's dancing
// links): linearizing an operation unlinks its events, and backtracking relinks them in LIFO
// order, which restores the list exactly because an unlinked node keeps its own links.
class EventList {
 public:
  struct Node {
    uint32_t op = 0;
    bool is_return = false;
    uint64_t rank = 0;
    int32_t prev = kEnd;
    int32_t next = kEnd;
  };

  EventList() : nodes_(1) {}
  // Appends an event; precondition: ranks arrive in increasing order. Returns its node.
  int32_t append(uint32_t op, bool is_return, uint64_t rank) {
    const int32_t id = static_cast<int32_t>(nodes_.size());
    assert(id == 1 || nodes_[id - 1].rank < rank);
    nodes_.push_back({op, is_return, rank, id - 1, kEnd});
    nodes_[id - 1].next = id;
    return id;
  }
  int32_t first() const { return nodes_[kHead].next; }
  const Node& operator[](int32_t id) const { return nodes_[id]; }
  void unlink(int32_t id) {
    const Node& n = nodes_[id];
    nodes_[n.prev].next = n.next;
    if (n.next != kEnd) nodes_[n.next].prev = n.prev;
  }
  void relink(int32_t id) {
    const Node& n = nodes_[id];
    nodes_[n.prev].next = id;
    if (n.next != kEnd) nodes_[n.next].prev = id;
  }

 private:
  std::vector<Node> nodes_;
};

struct SearchOutcome {
  Verdict verdict = Verdict::kLinearizable;
  uint64_t states = 0;
  uint32_t failed_op = 0;  // index into the searched ops: the op of the furthest return
  std::vector<uint32_t> states_at_failure;
};

// One depth-first search over one partition or slice (Lowe 2017, section 3; Porcupine's
// checkSingle). Candidates for the next linearization point, in order: the required calls
// before the first pending return, then the optional calls before it (those with a deadline,
// while it is not past). Optional operations come last because an indeterminate write is best
// placed as late as possible, and one that never took effect is then tried only where nothing
// else fits.
//
// Three exact reductions spare it from trying subsets of the optional operations:
//  - an optional operation that would leave the state as it is is not linearized: doing so only
//    uses it up (the configuration it gives is subsumed by the current one, see ConfigSet);
//  - configurations are memoized with subsumption (ConfigSet);
//  - of optional operations without deadline in one symmetry class (Model::symmetry_class) only
//    the earliest called one not yet linearized is a candidate, so the linearized ones of a
//    class are always its first few: k + 1 sets instead of 2^k. Exact: members step alike from
//    every state, and a linearization that uses a set S of them, at points p_1 < ... < p_m, may
//    use the m earliest called instead, the i-th at p_i, because at least i members of S are
//    called by p_i, so the i-th earliest call of the class is no later.
class Search {
 public:
  Search(const std::vector<RankedOp>& ops, Model& model, uint32_t initial_state,
         const CheckOptions& opts)
      : ops_(ops),
        model_(model),
        max_states_(opts.max_states),
        stop_(opts.stop),
        linearized_(ops),
        state_(initial_state),
        seen_(linearized_.spent_words().size()) {
    std::vector<size_t> origins;
    for (const RankedOp& op : ops) origins.push_back(op.origin);
    model_.begin_search(origins);
    build_lists();
    build_classes();
    for (uint32_t i = 0; i < ops_.size(); ++i) {
      if (ops_[i].optional && ops_[i].ret != kNever) by_deadline_.push_back(i);
    }
    std::sort(by_deadline_.begin(), by_deadline_.end(),
              [&](uint32_t a, uint32_t b) { return ops_[a].ret < ops_[b].ret; });
    frames_.reserve(ops.size());
    linearized_.key(state_, key_);
    seen_.insert(linearized_.hash(state_), key_, linearized_.spent_words());
  }

  SearchOutcome run() {
    Cursor cursor = restart();
    while (required_left_ > 0) {
      if (seen_.size() > max_states_) return outcome(Verdict::kUnknown);
      if (stop_ && (++steps_ & 1023) == 0 && stop_()) return outcome(Verdict::kUnknown);
      if (std::optional<uint32_t> op = next_candidate(cursor)) {
        if (linearize(*op, cursor.frontier)) cursor = restart();
        continue;
      }
      if (frames_.empty()) return outcome(Verdict::kNotLinearizable);
      cursor = backtrack();
    }
    return outcome(Verdict::kLinearizable);
  }

 private:
  // Where the enumeration of the current configuration's candidates stands.
  struct Cursor {
    bool in_optional = false;
    int32_t node = kEnd;
    uint64_t frontier = 0;  // rank of the first pending return; set once in_optional
  };
  struct Frame {
    uint32_t op;
    uint32_t state_before;
    uint64_t frontier;          // the configuration's, to resume its optional candidates
    uint64_t last_call_before;  // its last_call_
    size_t expired_before;      // its expired_
  };

  void build_lists() {
    std::vector<std::tuple<uint64_t, bool, uint32_t>> events;  // rank, is_return, op
    for (uint32_t i = 0; i < ops_.size(); ++i) {
      events.emplace_back(ops_[i].call, false, i);
      if (!ops_[i].optional) events.emplace_back(ops_[i].ret, true, i);
    }
    std::sort(events.begin(), events.end());
    call_node_.assign(ops_.size(), kEnd);
    return_node_.assign(ops_.size(), kEnd);
    for (const auto& [rank, is_return, op] : events) {
      if (ops_[op].optional) {
        call_node_[op] = optional_.append(op, false, rank);
      } else {
        (is_return ? return_node_ : call_node_)[op] = required_.append(op, is_return, rank);
        required_left_ += is_return ? 1 : 0;
      }
    }
  }

  // Symmetry classes of the optional operations: members in call order, and where each op sits.
  void build_classes() {
    std::vector<std::pair<uint64_t, uint32_t>> by_call;  // call rank, op
    for (uint32_t i = 0; i < ops_.size(); ++i) {
      if (ops_[i].optional && ops_[i].ret == kNever) by_call.emplace_back(ops_[i].call, i);
    }
    std::sort(by_call.begin(), by_call.end());
    std::unordered_map<uint32_t, uint32_t> index;  // the model's class -> ours
    class_of_.assign(ops_.size(), kNoClass);
    member_.assign(ops_.size(), 0);
    for (const auto& [call, op] : by_call) {
      const std::optional<uint32_t> c = model_.symmetry_class(ops_[op].origin);
      if (!c) continue;
      const auto [it, inserted] = index.try_emplace(*c, static_cast<uint32_t>(members_.size()));
      if (inserted) members_.emplace_back();
      class_of_[op] = it->second;
      member_[op] = static_cast<uint32_t>(members_[it->second].size());
      members_[it->second].push_back(op);
    }
    used_.assign(members_.size(), 0);
  }

  // Whether an optional operation may be linearized next as far as its class goes: it is the
  // earliest called member not yet linearized.
  bool first_free_of_class(uint32_t op) const {
    return class_of_[op] == kNoClass || used_[class_of_[op]] == member_[op];
  }

  Cursor restart() const { return {false, required_.first(), 0}; }

  // The next candidate of the current configuration, advancing the cursor past it.
  std::optional<uint32_t> next_candidate(Cursor& cursor) {
    if (!cursor.in_optional) {
      assert(cursor.node != kEnd);  // a required operation is pending, so is its return
      const EventList::Node& n = required_[cursor.node];
      if (!n.is_return) {
        cursor.node = n.next;
        return n.op;
      }
      note_frontier(n);
      cursor = {true, optional_.first(), n.rank};
    }
    while (cursor.node != kEnd) {
      const EventList::Node& n = optional_[cursor.node];
      if (n.rank > cursor.frontier) return std::nullopt;  // called after the pending return
      cursor.node = n.next;
      // One with a deadline fits if it may follow everything linearized: taking each point as
      // early as its call and the points before allow, the last is at the latest call.
      const bool fits = ops_[n.op].ret == kNever || ops_[n.op].ret > last_call_;
      if (fits && first_free_of_class(n.op)) return n.op;
    }
    return std::nullopt;
  }

  bool linearize(uint32_t op, uint64_t frontier) {
    const std::optional<uint32_t> next = model_.step(state_, ops_[op].origin);
    if (!next) return false;
    if (ops_[op].optional && *next == state_) return false;  // it would only be used up
    const Frame frame{op, state_, frontier, last_call_, expired_};
    linearized_.insert(op);
    pass_call(ops_[op].call);
    linearized_.key(*next, key_);
    if (!seen_.insert(linearized_.hash(*next), key_, linearized_.spent_words())) {
      unpass_calls(frame);
      linearized_.erase(op);
      return false;
    }
    frames_.push_back(frame);
    state_ = *next;
    lift(op);
    return true;
  }

  // The latest call linearized is now at least `call`: deadlines before it have passed.
  void pass_call(uint64_t call) {
    last_call_ = std::max(last_call_, call);
    while (expired_ < by_deadline_.size() && ops_[by_deadline_[expired_]].ret < last_call_) {
      linearized_.expire(by_deadline_[expired_++]);
    }
  }
  void unpass_calls(const Frame& f) {
    last_call_ = f.last_call_before;
    while (expired_ > f.expired_before) linearized_.unexpire(by_deadline_[--expired_]);
  }

  Cursor backtrack() {
    const Frame f = frames_.back();
    frames_.pop_back();
    unlift(f.op);
    unpass_calls(f);
    linearized_.erase(f.op);
    state_ = f.state_before;
    // Resume the undone configuration's enumeration right after the candidate just undone.
    if (ops_[f.op].optional) return {true, optional_[call_node_[f.op]].next, f.frontier};
    return {false, required_[call_node_[f.op]].next, 0};
  }

  void lift(uint32_t op) {
    if (ops_[op].optional) {
      if (class_of_[op] != kNoClass) ++used_[class_of_[op]];
      return optional_.unlink(call_node_[op]);
    }
    required_.unlink(call_node_[op]);
    required_.unlink(return_node_[op]);
    --required_left_;
  }
  void unlift(uint32_t op) {
    if (ops_[op].optional) {
      if (class_of_[op] != kNoClass) --used_[class_of_[op]];
      return optional_.relink(call_node_[op]);
    }
    required_.relink(return_node_[op]);
    required_.relink(call_node_[op]);
    ++required_left_;
  }

  // Tracks the furthest return any configuration reaches, and the states found there: on
  // failure, that return's operation is the one no linearization gets past.
  void note_frontier(const EventList::Node& ret) {
    assert(ret.is_return && ret.rank > 0);
    if (ret.rank > best_frontier_) {
      best_frontier_ = ret.rank;
      failed_op_ = ret.op;
      states_at_failure_.clear();
    }
    if (ret.rank < best_frontier_ || states_at_failure_.size() >= kMaxStatesReported) return;
    if (std::find(states_at_failure_.begin(), states_at_failure_.end(), state_) ==
        states_at_failure_.end()) {
      states_at_failure_.push_back(state_);
    }
  }

  SearchOutcome outcome(Verdict verdict) const {
    SearchOutcome out{verdict, seen_.size()};
    if (verdict == Verdict::kNotLinearizable) {
      out.failed_op = failed_op_;
      out.states_at_failure = states_at_failure_;
    }
    return out;
  }

  const std::vector<RankedOp>& ops_;
  Model& model_;
  const uint64_t max_states_;
  const std::function<bool()>& stop_;
  uint64_t steps_ = 0;
  EventList required_;
  EventList optional_;
  std::vector<int32_t> call_node_;    // per op, in required_ or optional_
  std::vector<int32_t> return_node_;  // per required op
  size_t required_left_ = 0;
  LinearizedSet linearized_;
  uint32_t state_;
  uint64_t last_call_ = 0;             // the latest call among the operations linearized
  std::vector<uint32_t> by_deadline_;  // the optional operations with a deadline, by deadline
  size_t expired_ = 0;                 // how many of them are past it
  ConfigSet seen_;
  static constexpr uint32_t kNoClass = UINT32_MAX;
  std::vector<uint32_t> class_of_;              // per op: its symmetry class, or kNoClass
  std::vector<uint32_t> member_;                // per op in a class: its place in call order
  std::vector<std::vector<uint32_t>> members_;  // per class: its optional ops in call order
  std::vector<uint32_t> used_;                  // per class: how many are linearized
  std::vector<Frame> frames_;
  std::vector<uint64_t> key_;  // scratch
  uint64_t best_frontier_ = 0;
  uint32_t failed_op_ = 0;
  std::vector<uint32_t> states_at_failure_;
};

// The slice of a partition from rank `start` to the failing return `end`. Each rule only
// relaxes the history, so a failing slice proves the partition fails (see failing_window).
std::vector<RankedOp> slice(const std::vector<RankedOp>& ops, uint64_t start, uint64_t end) {
  std::vector<RankedOp> out;
  for (RankedOp op : ops) {
    if (op.call > end) continue;  // invoked after the failing return
    const bool open_at_start = op.call < start;
    if (open_at_start && op.ret < start) continue;  // done before: part of the initial state
    // Open at the start, it may have taken effect before the slice or in it (by its return);
    // open at the end, after it or in it.
    if (open_at_start || op.ret > end) {
      op.optional = true;
      if (op.ret > end) op.ret = kNever;
    }
    out.push_back(op);
  }
  return out;
}

struct Window {
  std::vector<RankedOp> ops;
  bool from_unknown_state = false;
};

// The latest-starting failing slice ending at `end`, by binary search over the call ranks:
// a later start only relaxes the slice further, so failing slices form a prefix of the starts.
// The first start gives the partition's prefix up to `end`, which the search already showed
// fails. Other starts begin in Model::unknown_state().
Window smallest_window(const std::vector<RankedOp>& ops, Model& model, uint64_t end,
                       const CheckOptions& opts, uint64_t& states) {
  std::vector<uint64_t> starts;
  for (const RankedOp& op : ops) {
    if (op.call < end) starts.push_back(op.call);
  }
  std::sort(starts.begin(), starts.end());
  assert(!starts.empty());
  Window best{slice(ops, starts.front(), end), false};
  const std::optional<uint32_t> unknown = model.unknown_state();
  if (!opts.shrink_window || !unknown) return best;
  size_t fails = 0, passes = starts.size();  // invariant: the slice at `fails` fails
  while (passes - fails > 1) {
    const size_t mid = fails + (passes - fails) / 2;
    std::vector<RankedOp> candidate = slice(ops, starts[mid], end);
    const SearchOutcome r = Search(candidate, model, *unknown, opts).run();
    states += r.states;
    if (r.verdict == Verdict::kNotLinearizable) {
      fails = mid;
      best = {std::move(candidate), true};
    } else {
      passes = mid;  // linearizable, or undecided within the budget
    }
  }
  return best;
}

// One key's register. States: absent, "any value" (the start of a window cut from the middle
// of a history), one id per distinct value that an operation of the current search observes
// (a read returned it, a cas expects it), and one id for every value none of them observes.
// That merge is exact: from any such value every operation of the search steps alike (no read
// or swap can follow, every mismatch can, a write leaves its own value), so the search cannot
// tell them apart. It is made per search (begin_search), because a window cut from a history
// leaves out the reads of many of the values written in it. It makes the writes of unobserved
// values step alike from every state, as Model::symmetry_class asks: the puts of such values
// form one class, and the swaps to such values one class per expected value. Values are
// interned up front so that step() is a few comparisons.
class RegisterModel final : public Model {
 public:
  explicit RegisterModel(const std::vector<const Operation*>& ops) {
    effects_.reserve(ops.size());
    for (const Operation* op : ops) effects_.push_back(effect_of(*op));
    observed_.assign(values_.size() + kFirstValue, true);
  }

  void begin_search(const std::vector<size_t>& ops) override {
    std::fill(observed_.begin(), observed_.end(), false);
    for (size_t op : ops) {
      const Effect& e = effects_[op];
      if (e.kind == OpKind::kGet) observed_[e.read] = true;
      if (e.kind == OpKind::kCas) observed_[e.expected] = true;
    }
    unobserved_.clear();
    for (size_t op : ops) {
      const Effect& e = effects_[op];
      if (e.kind != OpKind::kGet && !observed_[e.written]) unobserved_.push_back(e.written);
    }
    std::sort(unobserved_.begin(), unobserved_.end());
    unobserved_.erase(std::unique(unobserved_.begin(), unobserved_.end()), unobserved_.end());
  }

  // Leaves out the optional writes of values no operation of the window observes that are
  // invoked after every required mismatch of the window returned. Exact, from any initial value:
  // take a linearization of the window where such a write P took effect, at p, and remove P.
  // Until the next write the register holds what it held before p instead of P's value: no
  // read or swap there sees P's value, no required mismatch is there (it would be linearized
  // after P's invocation, so after its own return), and an optional mismatch there, if it now
  // fails, changes nothing and may be left out too. Repeated: a cas left out observes nothing.
  void trim_window(std::vector<WindowOp>& window) const override {
    for (size_t before = SIZE_MAX; window.size() != before;) {
      before = window.size();
      std::vector<bool> observed(observed_.size(), false);
      std::optional<uint64_t> last_mismatch;
      for (const WindowOp& w : window) {
        const Effect& e = effects_[w.op];
        if (e.kind == OpKind::kGet) observed[e.read] = true;
        if (e.kind != OpKind::kCas) continue;
        observed[e.expected] = true;
        if (!e.swaps && !w.optional) last_mismatch = std::max(last_mismatch.value_or(0), w.ret);
      }
      std::erase_if(window, [&](const WindowOp& w) {
        const Effect& e = effects_[w.op];
        const bool writes = e.kind == OpKind::kPut || (e.kind == OpKind::kCas && e.swaps);
        return w.optional && writes && !observed[e.written] &&
               (!last_mismatch || w.call > *last_mismatch);
      });
    }
  }

  std::optional<uint32_t> symmetry_class(size_t op) const override {
    const Effect& e = effects_[op];
    if (e.kind == OpKind::kGet || observed_[e.written]) return std::nullopt;
    if (e.kind == OpKind::kPut) return 0;
    if (e.swaps) return 1 + e.expected;
    return std::nullopt;
  }

  uint32_t initial_state() override { return kAbsent; }
  std::optional<uint32_t> unknown_state() override { return kAnyValue; }

  std::optional<uint32_t> step(uint32_t state, size_t op) override {
    const Effect& e = effects_[op];
    const uint32_t written = observed_[e.written] ? e.written : kUnobserved;
    switch (e.kind) {
      case OpKind::kGet:
        if (state != e.read && state != kAnyValue) return std::nullopt;
        return e.read;  // from "any value", the read tells which
      case OpKind::kPut:
        return written;
      case OpKind::kCas:
        if (e.swaps) {
          if (state != e.expected && state != kAnyValue) return std::nullopt;
          return written;
        }
        // A mismatch is a read of something other than `expected`; from "any value" it stays
        // unknown, forgetting the inequality (an over-approximation, as unknown_state allows).
        if (state == e.expected) return std::nullopt;
        return state;
      default:  // not a register operation: check/models.h
        return std::nullopt;
    }
    return std::nullopt;
  }

  std::string describe_state(uint32_t state) const override {
    if (state == kAbsent) return "<absent>";
    if (state == kAnyValue) return "<any value>";
    if (state != kUnobserved) return "\"" + values_[state - kFirstValue] + "\"";
    // Merged for the search, listed for the reader.
    const size_t n = unobserved_.size();
    std::string out = n == 1 ? "" : "one of ";
    for (size_t i = 0; i < n && i < 3; ++i) {
      out += (i ? ", \"" : "\"") + values_[unobserved_[i] - kFirstValue] + "\"";
    }
    if (n > 3) out += ", ... (" + std::to_string(n) + " values)";
    return out + ", which no operation observes";
  }

 private:
  static constexpr uint32_t kAbsent = 0;
  static constexpr uint32_t kAnyValue = 1;
  static constexpr uint32_t kUnobserved = 2;
  static constexpr uint32_t kFirstValue = 3;

  struct Effect {
    OpKind kind = OpKind::kGet;
    bool swaps = false;  // cas: took effect as a successful swap
    uint32_t read = kAbsent;
    uint32_t expected = kAbsent;
    uint32_t written = kAbsent;
  };

  Effect effect_of(const Operation& op) {
    Effect e{op.kind};
    switch (op.kind) {
      case OpKind::kGet:
        e.read = op.output ? intern(*op.output) : kAbsent;
        break;
      case OpKind::kPut:
        e.written = intern(op.value);
        break;
      case OpKind::kCas:
        // An indeterminate cas that took effect as a mismatch changed nothing, which is the
        // same as not taking effect, so only the swap needs modelling.
        e.swaps = op.cas_succeeded || op.outcome == Outcome::kInfo;
        e.expected = intern(op.expected);
        e.written = intern(op.value);
        break;
      default:
        break;
    }
    return e;
  }

  uint32_t intern(const std::string& value) {
    const auto [it, inserted] =
        ids_.try_emplace(value, static_cast<uint32_t>(values_.size()) + kFirstValue);
    if (inserted) values_.push_back(value);
    return it->second;
  }

  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::string> values_;  // by id - kFirstValue
  std::vector<Effect> effects_;
  // By id, for the current search: observed; and the values its operations write unobserved.
  std::vector<bool> observed_;
  std::vector<uint32_t> unobserved_;
};

// Whether an operation can constrain the history: failed operations never took effect, and a
// get that did not complete read nothing.
bool constrains(const Operation& op) {
  if (op.kind == OpKind::kGet || op.kind == OpKind::kReadAll) return op.outcome == Outcome::kOk;
  return op.outcome != Outcome::kFail;
}

std::map<std::string, std::vector<const Operation*>> partition_by_key(
    const std::vector<Operation>& history) {
  std::map<std::string, std::vector<const Operation*>> by_key;
  for (const Operation& op : history) {
    if (constrains(op)) by_key[op.key].push_back(&op);
  }
  return by_key;
}

std::string explain_failure(const std::string& key, const std::vector<const Operation*>& ops,
                            const PartitionResult& r, const Model& model) {
  std::ostringstream os;
  os << "key " << key << ": no linearization reaches the return of\n";
  os << "  " << to_string(*ops[r.failed_op]) << "\n";
  os << "linearizations that get that far leave " << key << " holding ";
  for (size_t i = 0; i < r.states_at_failure.size(); ++i) {
    os << (i ? " or " : "") << model.describe_state(r.states_at_failure[i]);
  }
  if (r.states_at_failure.size() == kMaxStatesReported) os << " or more";
  os << "; from there no order of the operations still open fits their results\n";
  os << "the failing window (" << r.window.size()
     << " operations) is not linearizable by itself, starting from "
     << (r.window_from_unknown_state ? "any value of " + key : "absent") << "\n";
  return os.str();
}

}  // namespace

PartitionResult check_partition(const std::vector<SearchOp>& ops, Model& model,
                                const CheckOptions& opts) {
  assert(ops.size() < (size_t{1} << 31));
  const std::vector<RankedOp> ranked = rank_events(ops);
  const SearchOutcome main = Search(ranked, model, model.initial_state(), opts).run();
  PartitionResult result{main.verdict, main.states};
  if (main.verdict != Verdict::kNotLinearizable) return result;
  const RankedOp& failed = ranked[main.failed_op];
  result.failed_op = failed.origin;
  result.states_at_failure = main.states_at_failure;
  Window window = smallest_window(ranked, model, failed.ret, opts, result.states_explored);
  // Back to the main search's view, which states_at_failure are ids of (Model::begin_search).
  std::vector<size_t> all(ops.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  model.begin_search(all);
  std::vector<Model::WindowOp> trimmed;
  for (const RankedOp& op : window.ops)
    trimmed.push_back({op.origin, op.optional, op.call, op.ret});
  model.trim_window(trimmed);
  std::sort(trimmed.begin(), trimmed.end(),
            [](const Model::WindowOp& a, const Model::WindowOp& b) { return a.call < b.call; });
  for (const Model::WindowOp& op : trimmed) result.window.push_back(op.op);
  result.window_from_unknown_state = window.from_unknown_state;
  return result;
}

LinearizabilityResult check_by_key(const std::vector<Operation>& history, const ModelFactory& make,
                                   const CheckOptions& opts, const FastCheck& fast) {
  LinearizabilityResult out;
  if (const std::optional<std::string> problem = validate(history)) {
    out.verdict = Verdict::kUnknown;
    out.explanation = "invalid history: " + *problem + "\n";
    return out;
  }
  for (auto& [key, ops] : partition_by_key(history)) {
    std::unique_ptr<Model> model = make(ops);
    const std::optional<FastVerdict> decided = fast ? fast(ops) : std::nullopt;
    if (decided) ++out.keys_without_search;
    if (decided && decided->linearizable) continue;
    // Known not linearizable: the search still looks for its smallest window, on a budget; if
    // that runs out, the fast check's own window stands.
    CheckOptions window_opts = opts;
    if (decided) window_opts.max_states = std::min<uint64_t>(opts.max_states, 2'000'000);
    std::vector<SearchOp> search_ops;
    search_ops.reserve(ops.size());
    for (const Operation* op : ops) {
      search_ops.push_back({op->invoke_time, op->complete_time, op->outcome == Outcome::kInfo});
    }
    const PartitionResult r = check_partition(search_ops, *model, window_opts);
    out.states_explored += r.states_explored;
    if (decided && r.verdict != Verdict::kNotLinearizable) {
      out.verdict = r.verdict == Verdict::kLinearizable ? Verdict::kUnknown  // a checker bug
                                                        : Verdict::kNotLinearizable;
      out.key = key;
      for (size_t i : decided->window) out.failing_window.push_back(*ops[i]);
      if (!decided->window.empty()) out.failed_id = ops[decided->window.back()]->id;
      out.explanation = "key " + key + ": not linearizable: " + decided->reason +
                        "\nthe failing window (" + std::to_string(decided->window.size()) +
                        " operations) is not linearizable by itself\n";
      if (r.verdict == Verdict::kLinearizable) {
        out.explanation = "key " + key + ": the unique-value check (" + decided->reason +
                          ") and the search disagree\n";
      }
      return out;
    }
    if (r.verdict == Verdict::kUnknown && out.verdict == Verdict::kLinearizable) {
      out.verdict = Verdict::kUnknown;
      out.key = key;
      out.explanation = "key " + key + ": undecided: the search stopped at its limit (" +
                        std::to_string(opts.max_states) +
                        " configurations, max_states, or the time limit)\n";
    }
    if (r.verdict != Verdict::kNotLinearizable) continue;
    out.verdict = Verdict::kNotLinearizable;
    out.key = key;
    for (size_t i : r.window) out.failing_window.push_back(*ops[i]);
    out.failed_id = ops[r.failed_op]->id;
    out.explanation = explain_failure(key, ops, r, *model);
    return out;
  }
  return out;
}

LinearizabilityResult check_kv(const std::vector<Operation>& history, const CheckOptions& opts) {
  return check_by_key(
      history,
      [](std::vector<const Operation*>& ops) -> std::unique_ptr<Model> {
        reduce_register_history(ops);
        return std::make_unique<RegisterModel>(ops);
      },
      opts,
      [](const std::vector<const Operation*>& ops) -> std::optional<FastVerdict> {
        UniqueRegisterVerdict v = check_unique_register(ops);
        if (!v.applies) return std::nullopt;
        return FastVerdict{v.linearizable, std::move(v.reason), std::move(v.window)};
      });
}

}  // namespace synod::check
