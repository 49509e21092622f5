// DeadlineTable: the deadlines of things that wait, ordered so that those whose time is up are
// found without looking at the others. Each entry is a key (what waits: whatever lets its owner
// find and answer it) and a deadline (any ordered time: a steady_clock time point, a tick).
//
//   add(deadline, key)   O(log n)  registers a waiter when it is accepted
//   cancel(key)          O(log n)  removes it when it is answered before its deadline
//   rekey(from, to)      O(log n)  follows it when it moves, its deadline unchanged
//   pop_expired(now)     O(k log n) for the k entries whose deadline <= now, and only them
//
// Expired keys come out earliest deadline first, and entries with equal deadlines in the order
// they were added, so that a deterministic caller (the simulator's replica driver) replays
// exactly. Keys are unique: adding a key already present is a bug (asserted).
//
// Thread-safety: none; the owner's thread only. Keys must be ordered (operator<).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "base/assert.h"

namespace synod::base {

template <typename Time, typename Key>
class DeadlineTable {
 public:
  // Registers `key` to expire at `deadline`. Precondition: `key` is not in the table.
  void add(Time deadline, Key key) {
    const Slot slot{deadline, next_order_++};
    const auto [it, added] = by_key_.emplace(std::move(key), slot);
    SYNOD_ASSERT(added);
    by_deadline_.emplace(slot, it->first);
  }

  // Removes `key`; false if it is not in the table (already expired, or never added).
  bool cancel(const Key& key) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return false;
    const size_t erased = by_deadline_.erase(it->second);
    SYNOD_ASSERT(erased == 1);
    by_key_.erase(it);
    return true;
  }

  // Moves the entry under `from` to the key `to`, keeping its deadline and its place among
  // equal deadlines (a waiter that changed hands). False if `from` is not in the table.
  // Precondition: `to` is not in the table.
  bool rekey(const Key& from, Key to) {
    auto entry = by_key_.extract(from);
    if (entry.empty()) return false;
    auto slot = by_deadline_.find(entry.mapped());
    SYNOD_ASSERT(slot != by_deadline_.end());
    entry.key() = std::move(to);
    auto moved = by_key_.insert(std::move(entry));
    SYNOD_ASSERT(moved.inserted);
    slot->second = moved.position->first;
    return true;
  }

  // Removes every entry whose deadline is at or before `now` and returns their keys, earliest
  // deadline first, equal deadlines in the order added. All are removed before the caller sees
  // any, so answering them may add or cancel entries freely.
  std::vector<Key> pop_expired(Time now) {
    std::vector<Key> expired;
    while (!by_deadline_.empty() && !(now < by_deadline_.begin()->first.deadline)) {
      auto first = by_deadline_.begin();
      const size_t erased = by_key_.erase(first->second);
      SYNOD_ASSERT(erased == 1);
      expired.push_back(std::move(first->second));
      by_deadline_.erase(first);
    }
    return expired;
  }

  bool contains(const Key& key) const { return by_key_.contains(key); }
  // When `key` expires, if it is in the table.
  std::optional<Time> deadline_of(const Key& key) const {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return std::nullopt;
    return it->second.deadline;
  }
  // The earliest deadline in the table, if any.
  std::optional<Time> next_deadline() const {
    if (by_deadline_.empty()) return std::nullopt;
    return by_deadline_.begin()->first.deadline;
  }
  size_t size() const { return by_key_.size(); }
  bool empty() const { return by_key_.empty(); }
  void clear() {
    by_deadline_.clear();
    by_key_.clear();
  }

 private:
  // An entry's place in deadline order; `order` (the count of entries added before it) breaks
  // ties by insertion.
  struct Slot {
    Time deadline;
    uint64_t order = 0;
    bool operator<(const Slot& other) const {
      if (deadline < other.deadline) return true;
      if (other.deadline < deadline) return false;
      return order < other.order;
    }
  };

  std::map<Slot, Key> by_deadline_;
  std::map<Key, Slot> by_key_;
  uint64_t next_order_ = 0;
};

}  // namespace synod::base
