#include "sim/watchers.h"

#include <algorithm>
#include <sstream>

#include "base/assert.h"
#include "kv/recipe.h"
#include "sim/recipe_client.h"

namespace synod::sim {

void Watchers::start_all() {
  watchers_.resize(o_.watchers);
  for (int i = 0; i < o_.watchers; ++i) {
    Watcher& w = watchers_[i];
    w.id = i;
    // Even watchers see every key; odd ones the workload's busiest range.
    if (i % 2 == 0) {
      w.key = w.range_end = std::string(1, '\0');
    } else if (o_.workload == Workload::kRegister) {
      w.key = "k1";
    } else {
      w.key = o_.workload == Workload::kLock ? "lock/" : kSlotPrefix;
      w.range_end = kv::recipe::prefix_end(w.key);
    }
    Event& e =
        world_.schedule(100'000 + world_.watch_rng.range(0, 50'000), EventType::kWatchConnect);
    e.client = i;
  }
}

void Watchers::handle(const Event& e) {
  Watcher& w = watchers_[static_cast<size_t>(e.client)];
  switch (e.type) {
    case EventType::kWatchConnect:
      return connect(w);
    case EventType::kWatchDeliver:
      return deliver(w, e.gen, e.watch);
    default:
      SYNOD_ASSERT(false && "not a watcher event");
  }
}

void Watchers::node_gone(const Node& n) {
  for (Watcher& w : watchers_) {
    if (w.node == n.id) disconnect(w, false);
  }
}

void Watchers::give_up_some() {
  for (Watcher& w : watchers_) {
    const bool frozen = w.node != 0 && nodes_[w.node].paused;
    if (w.node != 0 && world_.fault_rng.chance(frozen ? 0.5 : 0.15)) disconnect(w, true);
  }
}

void Watchers::finish() {
  auto drain = [&] {
    while (!world_.idle()) {
      const std::unique_ptr<Event> e = world_.next_event();
      if (e->type == EventType::kWatchDeliver) handle(*e);
    }
  };
  drain();
  for (int i = 1; i <= nodes_.count(); ++i) {
    Node& n = nodes_[i];
    if (!n.up) continue;
    for (int k = 0; k < 10'000 && n.hub->has_unsynced(); ++k) {
      n.hub->catch_up(n.kv->store(), &n.watch_out);
    }
    flush(n);
  }
  drain();
  check();
}

void Watchers::connect(Watcher& w) {
  if (w.node != 0) return;
  Node& n = nodes_[1 + static_cast<int>(world_.watch_rng.uniform(o_.nodes))];
  if (!n.up || n.paused) {
    Event& e = world_.schedule(world_.now() + world_.watch_rng.range(20'000, 100'000),
                               EventType::kWatchConnect);
    e.client = w.id;
    return;
  }
  etcdserverpb::WatchCreateRequest create;
  create.set_key(w.key);
  create.set_range_end(w.range_end);
  int64_t start = w.next_revision;
  if (w.fresh) {
    start = w.finished.empty() ? 1 : 0;  // the first from the beginning, later ones from now
  } else if (o_.workload_bugs.watch_resume_gap) {
    start = w.next_revision + 1;
  } else if (o_.workload_bugs.watch_resume_duplicate && w.next_revision > 1) {
    start = w.next_revision - 1;
  }
  create.set_start_revision(start);
  if (w.fresh) {
    w.spec = check::WatchSpec{w.key, w.range_end, start == 0 ? n.kv->revision() + 1 : start};
    w.received.clear();
    w.next_revision = w.spec.start_revision;
    w.fresh = false;
  }
  w.node = n.id;
  w.stream = ++next_stream_;
  w.awaiting_created = true;
  watcher_of_stream_[w.stream] = w.id;
  ++world_.result.watch_streams;
  if (o_.trace)
    world_.at() << "watcher w" << w.id << " connects to n" << n.id << " from " << start << "\n";
  n.hub->create(w.stream, create, n.kv->store(), &n.watch_out);
  for (int i = 0; i < 100 && n.hub->has_unsynced(); ++i)
    n.hub->catch_up(n.kv->store(), &n.watch_out);
  flush(n);
}

void Watchers::disconnect(Watcher& w, bool close) {
  if (w.node == 0) return;
  if (close && nodes_[w.node].up) nodes_[w.node].hub->close_stream(w.stream);
  watcher_of_stream_.erase(w.stream);
  w.node = 0;
  w.stream = 0;
  Event& e = world_.schedule(world_.now() + world_.watch_rng.range(20'000, 200'000),
                             EventType::kWatchConnect);
  e.client = w.id;
}

void Watchers::flush(Node& n) {
  for (kv::WatchOutput& out : n.watch_out) {
    auto it = watcher_of_stream_.find(out.stream);
    if (it == watcher_of_stream_.end()) continue;
    Watcher& w = watchers_[it->second];
    // One connection delivers in order: never before what it sent earlier.
    w.last_delivery_us =
        std::max(w.last_delivery_us, world_.now() + world_.watch_rng.range(200, 1000));
    Event& e = world_.schedule(w.last_delivery_us, EventType::kWatchDeliver);
    e.client = w.id;
    e.gen = out.stream;
    e.watch = std::move(out.response);
  }
  n.watch_out.clear();
}

void Watchers::deliver(Watcher& w, uint64_t stream, const etcdserverpb::WatchResponse& r) {
  if (stream != w.stream) return;  // from a connection already given up
  auto flag = [&](const char* what) {
    std::ostringstream os;
    os << "watcher w" << w.id << " on n" << w.node << ": " << what;
    world_.flag("WatchStream", os.str());
  };
  if (r.created()) {
    if (!w.awaiting_created) flag("a second created response");
    if (r.canceled()) flag(("its watch was refused: " + r.cancel_reason()).c_str());
    w.awaiting_created = false;
    return;
  }
  if (w.awaiting_created) flag("a response before the created one");
  check::WatchReceived got;
  for (const mvccpb::Event& e : r.events()) {
    got.events.push_back(
        check::WatchEvent{e.kv().mod_revision(), e.kv().key(), e.type() == mvccpb::Event::DELETE});
    w.next_revision = e.kv().mod_revision() + 1;
    ++world_.result.watch_events;
  }
  got.canceled = r.canceled();
  got.compact_revision = r.compact_revision();
  w.received.push_back(std::move(got));
  if (r.canceled()) {
    // Compacted past what it is owed: the logical stream ends; a new one starts from now.
    ++world_.result.watch_compaction_cancels;
    w.finished.emplace_back(w.spec, std::move(w.received));
    w.received.clear();
    w.fresh = true;
    disconnect(w, true);
  }
}

// Every logical stream must match the log's history; the current one must also be complete up
// to its node's revision, once that node is caught up and everything sent has arrived.
void Watchers::check() {
  for (Watcher& w : watchers_) {
    auto judge = [&](const check::WatchSpec& spec, const std::vector<check::WatchReceived>& got,
                     const std::vector<check::WatchEvent>& history, bool complete) {
      auto verdict = check::check_watch_stream(spec, history, got, complete);
      if (!verdict) return;
      std::ostringstream os;
      os << "watcher w" << w.id << " (from revision " << spec.start_revision << "): " << *verdict;
      world_.flag("WatchStream", os.str());
    };
    for (const auto& [spec, got] : w.finished) judge(spec, got, truth_.events(), false);
    if (w.fresh) continue;
    const bool connected = w.node != 0 && !w.awaiting_created;
    std::vector<check::WatchEvent> history = truth_.events();
    if (connected) {
      // Its node may be behind what earlier connections delivered (it restarted, say).
      const int64_t revision = std::max(nodes_[w.node].kv->revision(), w.next_revision - 1);
      std::erase_if(history, [&](const check::WatchEvent& e) { return e.revision > revision; });
    }
    judge(w.spec, w.received, history, connected);
  }
}

}  // namespace synod::sim
