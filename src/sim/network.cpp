#include "sim/network.h"

#include <algorithm>
#include <cassert>
#include <deque>
#include <sstream>

namespace synod::sim {

const char* to_string(Topology t) {
  switch (t) {
    case Topology::kMesh:
      return "mesh";
    case Topology::kRing:
      return "ring";
    case Topology::kStar:
      return "star";
    case Topology::kTree:
      return "tree";
  }
  return "?";
}

const char* to_string(PartitionKind k) {
  switch (k) {
    case PartitionKind::kHalves:
      return "halves";
    case PartitionKind::kMajorityMinority:
      return "majority-minority";
    case PartitionKind::kBridge:
      return "bridge";
    case PartitionKind::kMajoritiesRing:
      return "majorities-ring";
  }
  return "?";
}

Network::Network(int nodes)
    : n_(nodes),
      physical_(nodes + 1, std::vector<bool>(nodes + 1, false)),
      up_(physical_),
      dist_(nodes + 1, std::vector<int>(nodes + 1, -1)),
      busy_until_us_(nodes + 1, std::vector<uint64_t>(nodes + 1, 0)) {
  assert(nodes >= 1);
  set_topology(Topology::kMesh);
}

void Network::set_topology(Topology t) {
  topology_ = t;
  for (auto& row : physical_) std::fill(row.begin(), row.end(), false);
  auto connect = [&](int a, int b) { physical_[a][b] = physical_[b][a] = true; };
  for (int a = 1; a <= n_; ++a) {
    for (int b = a + 1; b <= n_; ++b) {
      switch (t) {
        case Topology::kMesh:
          connect(a, b);
          break;
        case Topology::kRing:
          if (b == a + 1 || (a == 1 && b == n_)) connect(a, b);
          break;
        case Topology::kStar:
          if (a == 1) connect(a, b);  // node 1 is the hub
          break;
        case Topology::kTree:
          if (a == b / 2) connect(a, b);  // binary tree rooted at 1
          break;
      }
    }
  }
  recompute_routes();
  heal();
}

void Network::heal() {
  for (auto& row : up_) std::fill(row.begin(), row.end(), true);
  partitioned_ = false;
}

void Network::isolate(int node, int keep) {
  for (int i = 1; i <= n_; ++i) {
    if (i != keep) up_[node][i] = up_[i][node] = false;
  }
  partitioned_ = true;
}

std::string Network::partition(PartitionKind kind, Rng& rng) {
  // A random order of the nodes, then groups cut out of it.
  std::vector<int> order;
  for (int i = 1; i <= n_; ++i) order.push_back(i);
  for (int i = n_ - 1; i > 0; --i) std::swap(order[i], order[rng.uniform(i + 1)]);
  std::vector<int> side(n_ + 1, 0);
  std::vector<std::vector<bool>> allowed(n_ + 1, std::vector<bool>(n_ + 1, false));
  std::ostringstream desc;
  auto group_desc = [&](int begin, int end) {
    desc << "{";
    for (int i = begin; i < end; ++i) desc << (i > begin ? "," : "") << order[i];
    desc << "}";
  };
  int split = n_ / 2;
  switch (kind) {
    case PartitionKind::kHalves:
    case PartitionKind::kMajorityMinority: {
      if (kind == PartitionKind::kMajorityMinority) split = static_cast<int>(rng.range(1, n_ / 2));
      for (int i = 0; i < n_; ++i) side[order[i]] = i < split ? 0 : 1;
      for (int a = 1; a <= n_; ++a)
        for (int b = 1; b <= n_; ++b) allowed[a][b] = side[a] == side[b];
      group_desc(0, split);
      desc << " | ";
      group_desc(split, n_);
      break;
    }
    case PartitionKind::kBridge: {
      // Two halves that only the bridge node (order[split]) connects.
      const int bridge = order[split];
      for (int i = 0; i < n_; ++i) side[order[i]] = i < split ? 0 : 1;
      for (int a = 1; a <= n_; ++a)
        for (int b = 1; b <= n_; ++b)
          allowed[a][b] = side[a] == side[b] || a == bridge || b == bridge;
      group_desc(0, split);
      desc << " <" << bridge << "> ";
      group_desc(split + 1, n_);
      break;
    }
    case PartitionKind::kMajoritiesRing: {
      // Each node sees the n/2 nodes on either side of it in a ring: its own majority, and no
      // two nodes see the same one.
      std::vector<int> pos(n_ + 1);
      for (int i = 0; i < n_; ++i) pos[order[i]] = i;
      const int reach = n_ / 2;
      for (int a = 1; a <= n_; ++a) {
        for (int b = 1; b <= n_; ++b) {
          const int d = std::abs(pos[a] - pos[b]);
          allowed[a][b] = std::min(d, n_ - d) <= reach / 2 + (reach % 2);
        }
      }
      desc << "ring ";
      group_desc(0, n_);
      break;
    }
  }
  up_ = allowed;
  partitioned_ = true;
  return desc.str();
}

void Network::recompute_routes() {
  for (int s = 1; s <= n_; ++s) {
    std::fill(dist_[s].begin(), dist_[s].end(), -1);
    std::deque<int> queue{s};
    dist_[s][s] = 0;
    while (!queue.empty()) {
      const int u = queue.front();
      queue.pop_front();
      for (int v = 1; v <= n_; ++v) {
        if (physical_[u][v] && dist_[s][v] < 0) {
          dist_[s][v] = dist_[s][u] + 1;
          queue.push_back(v);
        }
      }
    }
  }
}

int Network::hops(int from, int to) const {
  return dist_[from][to];
}

std::vector<uint64_t> Network::send(int from, int to, uint64_t bytes, uint64_t now_us, Rng& rng) {
  std::vector<uint64_t> out;
  const int h = hops(from, to);
  if (h < 0 || !up_[from][to]) return out;
  if (params_.loss > 0 && rng.chance(params_.loss)) return out;
  // Bandwidth: a message leaves once the link has finished sending the previous ones. The
  // queue is bounded, as the server's peer transport bounds its own (it drops new messages past
  // net::Transport::kMaxQueuedMessages): one that would wait more than kMaxQueueUs is dropped,
  // so a slow link that heals is not left with a backlog of stale messages it takes long to
  // drain.
  const uint64_t serialize_us =
      bytes * 1000 / std::max<uint64_t>(1, params_.bandwidth_bytes_per_ms);
  uint64_t& busy = busy_until_us_[from][to];
  if (busy > now_us + kMaxQueueUs) return out;
  const uint64_t departs = std::max(now_us, busy) + serialize_us;
  busy = departs;
  uint64_t latency = 0;
  for (int i = 0; i < std::max(h, 1); ++i) {
    latency += rng.range(params_.latency_min_us, params_.latency_max_us);
  }
  out.push_back(departs + latency);
  if (params_.duplicate > 0 && rng.chance(params_.duplicate)) {
    out.push_back(departs + latency + rng.range(params_.latency_min_us, params_.latency_max_us));
  }
  return out;
}

}  // namespace synod::sim
