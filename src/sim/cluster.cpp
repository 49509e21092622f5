#include "sim/cluster.h"

#include <algorithm>
#include <sstream>

#include "base/assert.h"
#include "core/ring/ring.h"

namespace synod::sim {

Cluster::Cluster(World& world, NodeObserver& observer)
    : world_(world),
      ring_({.vnodes = 64,
             .replication = static_cast<uint32_t>(world.options.replication),
             .seed = world.options.seed}) {
  const SimOptions& o = world.options;
  std::vector<GroupSpec> specs;
  if (o.shards == 0) {
    GroupSpec all;  // one group, on every host
    for (int h = 1; h <= o.nodes; ++h) all.hosts.push_back(h);
    specs.push_back(std::move(all));
  } else {
    for (int h = 1; h <= o.nodes; ++h) ring_.add(static_cast<ring::MemberId>(h));
    const ring::Placement placement = layout();
    for (size_t g = 0; g < placement.size(); ++g) {
      GroupSpec spec{static_cast<uint32_t>(g), {}};
      for (ring::MemberId m : placement[g]) spec.hosts.push_back(static_cast<int>(m));
      specs.push_back(std::move(spec));
    }
  }
  on_host_.resize(static_cast<size_t>(o.nodes) + 1);
  for (GroupSpec& spec : specs) {
    const uint32_t g = spec.group;
    SYNOD_ASSERT(g == groups_.size());
    for (size_t slot = 1; slot <= spec.hosts.size(); ++slot) {
      on_host_[static_cast<size_t>(spec.hosts[slot - 1])].emplace_back(g, static_cast<int>(slot));
    }
    truths_.push_back(std::make_unique<Truth>(world));
    groups_.push_back(std::make_unique<Nodes>(world, *truths_.back(), observer, std::move(spec)));
  }
}

void Cluster::start_all() {
  for (auto& g : groups_) g->start_all();
}

uint32_t Cluster::group_of_key(std::string_view key) const {
  const SimOptions& o = world_.options;
  if (o.shards == 0) return 0;
  return 1 + ring::shard_of_key(key, static_cast<uint32_t>(o.shards));
}

ring::Placement Cluster::layout() const {
  ring::Placement out{ring_.owners(0)};  // the metadata group sits at point 0
  ring::Placement shards = ring_.placement(static_cast<uint32_t>(world_.options.shards));
  out.insert(out.end(), shards.begin(), shards.end());
  return out;
}

int Cluster::add_replica(uint32_t g, int host) {
  const int slot = group(g).add_slot(host);
  on_host_[static_cast<size_t>(host)].emplace_back(g, slot);
  return slot;
}

void Cluster::retire(uint32_t g, int slot) {
  Node& n = group(g)[slot];
  auto& here = on_host_[static_cast<size_t>(n.host_id)];
  here.erase(std::remove(here.begin(), here.end(), std::make_pair(g, slot)), here.end());
  group(g).retire(n);
}

bool Cluster::down(int host) const {
  for (const auto& [g, slot] : on_host_[static_cast<size_t>(host)]) {
    const Node& n = group(g)[slot];
    if (!n.up || n.paused) return true;
  }
  return false;
}

int Cluster::down_count() const {
  int down_hosts = 0;
  for (int h = 1; h <= hosts(); ++h) down_hosts += down(h) ? 1 : 0;
  return down_hosts;
}

void Cluster::crash(int host) {
  for (const auto& [g, slot] : on_host_[static_cast<size_t>(host)]) {
    Node& n = group(g)[slot];
    if (n.up) group(g).crash(n);
  }
}

void Cluster::restart(int host) {
  for (const auto& [g, slot] : on_host_[static_cast<size_t>(host)])
    group(g).restart(group(g)[slot]);
}

void Cluster::pause(int host) {
  for (const auto& [g, slot] : on_host_[static_cast<size_t>(host)]) group(g)[slot].paused = true;
}

bool Cluster::paused(int host) const {
  for (const auto& [g, slot] : on_host_[static_cast<size_t>(host)]) {
    if (group(g)[slot].paused) return true;
  }
  return false;
}

void Cluster::resume(int host, bool run) {
  for (const auto& [g, slot] : on_host_[static_cast<size_t>(host)]) {
    Node& n = group(g)[slot];
    if (!n.paused) continue;
    group(g).resume(n);
    if (run) group(g).after_input(n);
  }
}

Node* Cluster::leader(Rng& rng) {
  if (groups_.size() == 1) return groups_[0]->leader();
  return groups_[rng.uniform(groups_.size())]->leader();
}

uint64_t Cluster::leaders_after_heal() const {
  uint64_t last = 0;
  for (const auto& g : groups_) {
    if (g->first_leader_after_heal() == 0) return 0;
    last = std::max(last, g->first_leader_after_heal());
  }
  return last;
}

void Cluster::check_store_convergence() {
  for (auto& g : groups_) g->check_store_convergence();
}

std::vector<check::Violation> Cluster::violations() const {
  std::vector<check::Violation> out;
  for (const auto& g : groups_) {
    for (check::Violation v : g->invariants().violations()) {
      if (groups_.size() > 1) v.detail = "group " + std::to_string(g->group()) + ": " + v.detail;
      out.push_back(std::move(v));
    }
  }
  return out;
}

void Cluster::check_truths() {
  for (auto& t : truths_) t->check();
}

std::string Cluster::describe() const {
  if (groups_.size() == 1) return groups_[0]->describe();
  // The groups that never had a leader after the heal; if every one had, all of them.
  const bool all = leaders_after_heal() != 0;
  std::ostringstream os;
  for (const auto& g : groups_) {
    if (!all && g->first_leader_after_heal() != 0) continue;
    os << "\n  group " << g->group() << " (hosts";
    for (int h : g->hosts()) os << " " << h;
    os << "):" << g->describe();
  }
  return os.str();
}

}  // namespace synod::sim
