#include "check/unique_register.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

namespace synod::check {

namespace {

// Times are shifted by one so that 0 can stand for "before everything", when the initial absent
// value is written.
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();  // an open write's completion
uint64_t at(uint64_t t) {
  return t + 1;
}

struct Cluster {
  std::string value;  // "" with absent = true for the initial value
  bool absent = false;
  std::vector<size_t> ops;  // its write and reads, as indices into the key's operations
  uint64_t write_invoke = 0;
  uint64_t first_complete = kNever;  // f: the earliest completion in the cluster
  uint64_t last_invoke = 0;          // s: the latest invocation in the cluster
  bool forward() const { return first_complete < last_invoke; }
  std::string name() const { return absent ? "<absent>" : "\"" + value + "\""; }
};

}  // namespace

UniqueRegisterVerdict check_unique_register(const std::vector<const Operation*>& ops) {
  UniqueRegisterVerdict v;
  std::map<std::string, size_t> writes;  // value -> the index of its write
  std::set<std::string> read_values;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation* op = ops[i];
    if (op->kind == OpKind::kPut) {
      if (!writes.emplace(op->value, i).second) return v;  // a value written twice
    } else if (op->kind != OpKind::kGet || op->outcome != Outcome::kOk) {
      return v;  // a cas, or an incomplete read
    } else if (op->output) {
      read_values.insert(*op->output);
    }
  }
  v.applies = true;
  // One cluster per value; index 0 is the initial absent value, written before everything.
  std::vector<Cluster> clusters(1);
  clusters[0].absent = true;
  clusters[0].first_complete = 0;
  std::map<std::string, size_t> index;
  for (const auto& [value, at_index] : writes) {
    const Operation* w = ops[at_index];
    const bool open = w->outcome == Outcome::kInfo;
    if (open && !read_values.contains(value)) continue;  // may never have happened
    Cluster c;
    c.value = value;
    c.write_invoke = at(w->invoke_time);
    c.first_complete = open ? kNever : at(w->complete_time);
    c.last_invoke = at(w->invoke_time);
    c.ops.push_back(at_index);
    index[value] = clusters.size();
    clusters.push_back(c);
  }
  auto fail = [&](std::string reason, std::vector<const Cluster*> involved) {
    v.reason = std::move(reason);
    for (const Cluster* c : involved) v.window.insert(v.window.end(), c->ops.begin(), c->ops.end());
    std::sort(v.window.begin(), v.window.end());
    return v;
  };
  for (size_t k = 0; k < ops.size(); ++k) {
    const Operation* op = ops[k];
    if (op->kind != OpKind::kGet) continue;
    size_t i = 0;
    if (op->output) {
      auto it = index.find(*op->output);
      if (it == index.end()) {
        v.window = {k};
        return fail("a read returned \"" + *op->output + "\", which no write wrote", {});
      }
      i = it->second;
    }
    Cluster& c = clusters[i];
    if (!c.absent && at(op->complete_time) < c.write_invoke) {
      v.window = {k, c.ops.front()};
      return fail("a read of " + c.name() + " completed before its write was invoked", {});
    }
    c.ops.push_back(k);
    c.first_complete = std::min(c.first_complete, at(op->complete_time));
    c.last_invoke = std::max(c.last_invoke, at(op->invoke_time));
  }
  // Forward zones, sorted by start: none may overlap the next.
  std::vector<const Cluster*> forward;
  for (const Cluster& c : clusters) {
    if (c.forward()) forward.push_back(&c);
  }
  std::sort(forward.begin(), forward.end(), [](const Cluster* a, const Cluster* b) {
    return a->first_complete < b->first_complete;
  });
  for (size_t i = 1; i < forward.size(); ++i) {
    if (forward[i]->first_complete < forward[i - 1]->last_invoke) {
      return fail("the values " + forward[i - 1]->name() + " and " + forward[i]->name() +
                      " must each stay current over overlapping intervals",
                  {forward[i - 1], forward[i]});
    }
  }
  // A backward zone inside a forward zone: the forward zones are disjoint and sorted, so only the
  // one starting last at or before the backward zone's start can contain it.
  for (const Cluster& c : clusters) {
    if (c.forward()) continue;
    const uint64_t lo = c.last_invoke, hi = c.first_complete;  // the zone [s, f]
    auto after =
        std::upper_bound(forward.begin(), forward.end(), lo,
                         [](uint64_t t, const Cluster* z) { return t < z->first_complete; });
    if (after == forward.begin()) continue;
    const Cluster* z = *(after - 1);
    if (z != &c && z->first_complete < lo && hi < z->last_invoke) {
      return fail("the value " + c.name() + " had to take effect and be read while " + z->name() +
                      " had to stay current",
                  {&c, z});
    }
  }
  v.linearizable = true;
  return v;
}

}  // namespace synod::check
