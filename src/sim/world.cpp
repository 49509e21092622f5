#include "sim/world.h"

#include <algorithm>

namespace synod::sim {

namespace {

struct EventOrder {
  bool operator()(const std::unique_ptr<Event>& a, const std::unique_ptr<Event>& b) const {
    return a->time != b->time ? a->time > b->time : a->seq > b->seq;
  }
};

}  // namespace

World::World(const SimOptions& o, std::ostream& log_to)
    : options(o),
      log(log_to),
      rng(o.seed),
      net_rng(rng.fork()),
      fault_rng(rng.fork()),
      client_rng(rng.fork()),
      disk_rng(rng.fork()),
      net(o.nodes) {
  baseline = net.params();
}

Event& World::schedule(uint64_t at, EventType type) {
  auto owned = std::make_unique<Event>();
  Event& e = *owned;
  e.time = at;
  e.seq = next_seq_++;
  e.type = type;
  queue_.push_back(std::move(owned));
  std::push_heap(queue_.begin(), queue_.end(), EventOrder{});
  return e;
}

void World::schedule(uint64_t at, Event event) {
  Event& e = schedule(at, event.type);
  const uint64_t seq = e.seq;
  e = std::move(event);
  e.time = at;
  e.seq = seq;
}

std::unique_ptr<Event> World::next_event() {
  std::pop_heap(queue_.begin(), queue_.end(), EventOrder{});
  std::unique_ptr<Event> e = std::move(queue_.back());
  queue_.pop_back();
  return e;
}

std::ostream& World::at() {
  log << "[" << now_ / 1000 << "ms] ";
  return log;
}

void World::flag(const std::string& invariant, const std::string& detail) {
  violations.push_back({invariant, detail});
}

}  // namespace synod::sim
