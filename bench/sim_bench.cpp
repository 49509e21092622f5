// Committed proposals per second through a 3-node cluster of the real Raft core with zero
// latency and instant fsync: the cost of the protocol code itself.
#include <benchmark/benchmark.h>

#include <deque>
#include <memory>
#include <vector>

#include "core/raft/raft.h"

namespace {

using namespace synod::raft;

class Cluster {
 public:
  explicit Cluster(int n) {
    ConfState conf;
    for (int i = 1; i <= n; ++i) conf.voters.push_back(NodeId(i));
    for (int i = 1; i <= n; ++i) {
      Config c;
      c.id = NodeId(i);
      c.seed = i;
      c.initial_conf = conf;
      nodes_.push_back(std::make_unique<Raft>(c, Persisted{}));
    }
    while (leader() == nullptr) {
      for (auto& r : nodes_) r->tick();
      settle();
    }
  }

  Raft* leader() {
    for (auto& r : nodes_) {
      if (r->role() == Role::kLeader) return r.get();
    }
    return nullptr;
  }

  void compact_all() {
    for (auto& r : nodes_) r->compact(r->log().applied(), "image");
  }

  // Runs Ready/Advance and message delivery until quiet; returns entries applied on the leader.
  uint64_t settle() {
    uint64_t applied = 0;
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& r : nodes_) {
        while (r->has_ready()) {
          Ready rd = r->ready();
          for (auto& m : rd.messages) inbox_.push_back(std::move(m));
          if (r->role() == Role::kLeader) applied += rd.committed.size();
          r->advance();
          busy = true;
        }
      }
      while (!inbox_.empty()) {
        Message m = std::move(inbox_.front());
        inbox_.pop_front();
        nodes_[m.to.value - 1]->step(m);
        busy = true;
      }
    }
    return applied;
  }

 private:
  std::vector<std::unique_ptr<Raft>> nodes_;
  std::deque<Message> inbox_;
};

void run(benchmark::State& state, int batch) {
  Cluster cluster(3);
  const std::string payload(64, 'x');
  uint64_t committed = 0;
  int rounds = 0;
  for (auto _ : state) {
    Raft* leader = cluster.leader();
    for (int i = 0; i < batch; ++i) leader->propose(payload);
    committed += cluster.settle();
    // Keep the in-memory log bounded, as a real node would by snapshotting.
    if (++rounds % 64 == 0) cluster.compact_all();
  }
  state.SetItemsProcessed(static_cast<int64_t>(committed));
  state.counters["proposals/s"] =
      benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
}

void BM_ProposeUnbatched(benchmark::State& state) { run(state, 1); }
void BM_ProposeBatched(benchmark::State& state) { run(state, static_cast<int>(state.range(0))); }

BENCHMARK(BM_ProposeUnbatched);
BENCHMARK(BM_ProposeBatched)->Arg(64);

}  // namespace
