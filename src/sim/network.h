// The simulated network between nodes: per-link latency and bandwidth, loss, duplication,
// reordering (latency jitter), partitions, and routed topologies. Pure: draws only from the
// generator it is given, so a seed replays the same deliveries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/rand.h"

namespace synod::sim {

enum class Topology : uint8_t { kMesh, kRing, kStar, kTree };
const char* to_string(Topology t);

struct LinkParams {
  uint64_t latency_min_us = 500;
  uint64_t latency_max_us = 2'000;  // jitter beyond min reorders messages
  uint64_t bandwidth_bytes_per_ms = 10'000'000;
  double loss = 0.0;
  double duplicate = 0.0;
};

enum class PartitionKind : uint8_t { kHalves, kMajorityMinority, kBridge, kMajoritiesRing };
const char* to_string(PartitionKind k);

class Network {
 public:
  // The longest a message waits in a link's queue before the link drops it instead.
  static constexpr uint64_t kMaxQueueUs = 1'000'000;
  // Nodes are numbered 1..nodes.
  explicit Network(int nodes);

  void set_params(const LinkParams& p) { params_ = p; }
  const LinkParams& params() const { return params_; }
  void set_topology(Topology t);
  Topology topology() const { return topology_; }
  // Cuts links according to `kind`; returns a description such as "{1,2} | {3,4,5}".
  std::string partition(PartitionKind kind, Rng& rng);
  // Cuts every link of one node, except to `keep` if that names another node.
  void isolate(int node, int keep = 0);
  void heal();  // restores every link the topology has
  bool partitioned() const { return partitioned_; }

  // Delivery times (0, 1 or 2 of them) for a message of `bytes` sent at `now_us`.
  std::vector<uint64_t> send(int from, int to, uint64_t bytes, uint64_t now_us, Rng& rng);
  // Number of hops on the current route, or -1 when unreachable.
  int hops(int from, int to) const;

 private:
  void recompute_routes();

  int n_;
  LinkParams params_;
  Topology topology_ = Topology::kMesh;
  bool partitioned_ = false;
  std::vector<std::vector<bool>> physical_;  // links the topology has
  // Partitions are end-to-end (a grudge between two nodes, as in Jepsen): a routed message
  // still cannot cross one. Topology only decides the route, hence latency and bandwidth.
  std::vector<std::vector<bool>> up_;
  std::vector<std::vector<int>> dist_;                // hop counts over physical links
  std::vector<std::vector<uint64_t>> busy_until_us_;  // per directed link, for bandwidth
};

}  // namespace synod::sim
