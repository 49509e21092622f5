// Clients that each hold one watch open on some node; when the connection breaks (the node
// crashed, or the client gave up on it) the watcher resumes elsewhere from its last revision
// + 1, as clientv3 does. Responses travel in order per connection. A watcher's responses since
// its last compaction cancel form one logical stream, judged as a whole against the truth's
// events (check/watch.h) at the end of the run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "check/watch.h"
#include "sim/nodes.h"
#include "sim/truth.h"
#include "sim/world.h"

namespace synod::sim {

struct Watcher {
  int id = 0;
  std::string key, range_end;
  int node = 0;         // connected to; 0: not connected
  uint64_t stream = 0;  // of the connection
  bool awaiting_created = false;
  bool fresh = true;          // the next connection starts a new logical stream
  int64_t next_revision = 1;  // the last event's revision + 1
  uint64_t last_delivery_us = 0;
  check::WatchSpec spec;  // of the current logical stream
  std::vector<check::WatchReceived> received;
  std::vector<std::pair<check::WatchSpec, std::vector<check::WatchReceived>>> finished;
};

class Watchers {
 public:
  Watchers(World& world, Nodes& nodes, const Truth& truth)
      : world_(world), o_(world.options), nodes_(nodes), truth_(truth) {}

  // Creates `options.watchers` watchers: even ones see every key, odd ones the workload's
  // busiest range. Each connects shortly after the cluster starts.
  void start_all();
  bool empty() const { return watchers_.empty(); }
  // Takes a watcher event (connect, delivery).
  void handle(const Event& e);
  // The node's process is gone: its streams break, and their watchers resume elsewhere.
  void node_gone(const Node& n);
  // Sends what the node's watch hub answered to the watchers of its streams.
  void flush(Node& n);
  // Watchers give up on a connection now and then, and on a frozen node more often.
  void give_up_some();
  // At the end of the run: everything sent arrives, every node catches its watchers up, that
  // arrives too; then every stream is judged. Takes what remains in the world's queue.
  void finish();

 private:
  void connect(Watcher& w);
  void disconnect(Watcher& w, bool close);
  void deliver(Watcher& w, uint64_t stream, const etcdserverpb::WatchResponse& r);
  void check();

  World& world_;
  const SimOptions& o_;
  Nodes& nodes_;
  const Truth& truth_;
  std::vector<Watcher> watchers_;
  std::map<uint64_t, int> watcher_of_stream_;
  uint64_t next_stream_ = 0;
};

}  // namespace synod::sim
