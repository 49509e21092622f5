// Virtual time for the simulator: a queue of actions keyed by (time, sequence number).
//
// Events at the same virtual instant run in the order they were scheduled, so a run is a pure
// function of its seed: no wall clock, no address-dependent ordering. Single-threaded.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace synod::sim {

class EventQueue {
 public:
  using Action = std::function<void()>;
  // A bound on pending events: a run that exceeds it has a runaway feedback loop.
  static constexpr size_t kMaxPending = 4'000'000;

  uint64_t now_us() const { return now_us_; }
  bool empty() const { return heap_.empty(); }
  size_t pending() const { return heap_.size(); }

  // Schedules `action` at virtual time `time_us`. Precondition: time_us >= now_us().
  void at(uint64_t time_us, Action action) {
    assert(time_us >= now_us_);
    assert(heap_.size() < kMaxPending);
    heap_.push_back({time_us, next_seq_++, std::move(action)});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
  }
  void after(uint64_t delay_us, Action action) { at(now_us_ + delay_us, std::move(action)); }

  // Advances virtual time to the earliest event and runs it. Returns false when none is left.
  bool run_next() {
    if (heap_.empty()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    Event event = std::move(heap_.back());
    heap_.pop_back();
    assert(event.time_us >= now_us_);
    now_us_ = event.time_us;
    event.action();
    return true;
  }

 private:
  struct Event {
    uint64_t time_us;
    uint64_t seq;
    Action action;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time_us != b.time_us ? a.time_us > b.time_us : a.seq > b.seq;
    }
  };

  std::vector<Event> heap_;
  uint64_t now_us_ = 0;
  uint64_t next_seq_ = 0;
};

}  // namespace synod::sim
