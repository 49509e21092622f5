#include "sim/nemesis.h"

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "base/assert.h"

namespace synod::sim {

using raft::Index;
using raft::NodeId;

void Nemesis::inject_fault() {
  if (!world_.fault_phase()) return;
  std::vector<Fault> enabled(o_.faults.begin(), o_.faults.end());
  enabled.erase(std::remove(enabled.begin(), enabled.end(), Fault::kDrift), enabled.end());
  // Byzantine replicas misbehave all along (sim/byzantine.h); nothing to inject.
  enabled.erase(std::remove(enabled.begin(), enabled.end(), Fault::kByzantine), enabled.end());
  if (!enabled.empty()) {
    const Fault f = enabled[world_.fault_rng.uniform(enabled.size())];
    const uint64_t duration = world_.fault_rng.range(100'000, 1'500'000);
    bool injected = true;
    Node* lead = cluster_.leader(world_.fault_rng);
    // Watchers give up on a connection now and then, and on a frozen node more often.
    watchers_.give_up_some();
    const bool recipes = o_.workload == Workload::kLock || o_.workload == Workload::kSemaphore;
    if (f == Fault::kPause && recipes && world_.fault_rng.chance(0.5)) {
      clients_.pause_one();
    } else {
      switch (f) {
        case Fault::kPartition: {
          if (partition_active_) {
            injected = false;
            break;
          }
          partition_active_ = true;
          std::string desc;
          if (lead != nullptr && world_.fault_rng.chance(0.3)) {
            world_.net.isolate(lead->host_id);
            desc = "isolate leader n" + std::to_string(lead->host_id);
          } else {
            const auto kind = static_cast<PartitionKind>(world_.fault_rng.uniform(4));
            desc =
                std::string(to_string(kind)) + " " + world_.net.partition(kind, world_.fault_rng);
          }
          if (o_.verbose) world_.at() << "partition " << desc << "\n";
          break;
        }
        case Fault::kCrash:
        case Fault::kPause: {
          // Fewer hosts down than any group's majority needs (every group spans at most
          // replication hosts, all of them when unsharded).
          const int span = o_.shards > 0 ? std::min(o_.replication, o_.nodes) : o_.nodes;
          if (cluster_.down_count() >= (span - 1) / 2) {
            injected = false;
            break;
          }
          int victim = lead != nullptr ? lead->host_id : 0;
          if (victim == 0 || world_.fault_rng.chance(0.6)) {
            victim = 1 + static_cast<int>(world_.fault_rng.uniform(o_.nodes));
          }
          if (cluster_.down(victim)) {
            injected = false;
            break;
          }
          if (f == Fault::kCrash) {
            cluster_.crash(victim);
          } else {
            cluster_.pause(victim);
            if (o_.verbose) world_.at() << "pause n" << victim << "\n";
          }
          Event& h = world_.schedule(world_.now() + duration, EventType::kHeal);
          h.tag = static_cast<int>(f);
          h.node = victim;
          break;
        }
        case Fault::kLoss:
        case Fault::kDuplicate:
        case Fault::kReorder:
        case Fault::kLatency: {
          if (net_fault_active_) {
            injected = false;
            break;
          }
          net_fault_active_ = true;
          LinkParams p = world_.baseline;
          if (f == Fault::kLoss) p.loss = 0.05 + 0.25 * world_.fault_rng.uniform(100) / 100.0;
          if (f == Fault::kDuplicate)
            p.duplicate = 0.05 + 0.25 * world_.fault_rng.uniform(100) / 100.0;
          if (f == Fault::kReorder) p.latency_max_us = 30'000;
          if (f == Fault::kLatency) {
            p.latency_min_us = 5'000;
            p.latency_max_us = 15'000;
            p.bandwidth_bytes_per_ms = 200;
          }
          world_.net.set_params(p);
          if (o_.verbose) world_.at() << "network " << to_string(f) << "\n";
          break;
        }
        case Fault::kTopology: {
          if (topology_active_) {
            injected = false;
            break;
          }
          topology_active_ = true;
          const auto t = static_cast<Topology>(1 + world_.fault_rng.uniform(3));
          world_.net.set_topology(t);
          if (partition_active_) partition_active_ = false;  // set_topology heals cuts
          if (o_.verbose) world_.at() << "topology " << to_string(t) << "\n";
          break;
        }
        case Fault::kMembership:
          if (membership_stage_ != 0 || o_.nodes < 4 || o_.shards > 0) {
            injected = false;
            break;
          }
          membership_stage_ = 1;
          membership_tries_ = 0;
          membership_step();
          break;
        case Fault::kTransfer: {
          if (lead == nullptr) {
            injected = false;
            break;
          }
          const auto& voters = lead->engine->conf().voters;
          const NodeId target = voters[world_.fault_rng.uniform(voters.size())];
          const raft::Status st = lead->engine->transfer_leadership(target);
          if (o_.verbose) {
            world_.at() << "transfer leadership n" << lead->id << " -> n" << target << ": "
                        << raft::to_string(st) << "\n";
          }
          cluster_.group(lead->group).after_input(*lead);
          break;
        }
        case Fault::kRebalance:
          injected = rebalancer_.start_change();
          break;
        case Fault::kDrift:
        case Fault::kByzantine:
          injected = false;
          break;
      }
      if (injected) {
        ++world_.result.faults_injected[to_string(f)];
        if (f != Fault::kCrash && f != Fault::kPause && f != Fault::kMembership &&
            f != Fault::kTransfer && f != Fault::kRebalance) {
          Event& h = world_.schedule(world_.now() + duration, EventType::kHeal);
          h.tag = static_cast<int>(f);
        }
      }
    }
  }
  world_.schedule(world_.now() + world_.fault_rng.range(
                                     100'000, std::max<uint64_t>(100'000, o_.fault_gap_max_us)),
                  EventType::kFault);
}

void Nemesis::heal(Fault f) {
  switch (f) {
    case Fault::kPartition:
      if (!partition_active_) return;
      world_.net.heal();
      partition_active_ = false;
      if (o_.verbose) world_.at() << "heal partition\n";
      return;
    case Fault::kLoss:
    case Fault::kDuplicate:
    case Fault::kReorder:
    case Fault::kLatency:
      if (!net_fault_active_) return;
      world_.net.set_params(world_.baseline);
      net_fault_active_ = false;
      if (o_.verbose) world_.at() << "heal network " << to_string(f) << "\n";
      return;
    case Fault::kTopology:
      if (!topology_active_) return;
      world_.net.set_topology(Topology::kMesh);
      partition_active_ = false;
      topology_active_ = false;
      if (o_.verbose) world_.at() << "topology mesh\n";
      return;
    default:
      return;
  }
}

void Nemesis::heal_all() {
  world_.heal();
  if (o_.verbose) world_.at() << "heal all: final phase begins\n";
  world_.net.set_params(world_.baseline);
  world_.net.set_topology(Topology::kMesh);
  partition_active_ = net_fault_active_ = topology_active_ = false;
  for (int h = 1; h <= cluster_.hosts(); ++h) {
    cluster_.restart(h);
    cluster_.resume(h, /*run=*/false);
  }
}

void Nemesis::isolate_after_election(int node) {
  if (!world_.fault_phase() || partition_active_ || topology_active_) return;
  partition_active_ = true;
  // Half the time it keeps one follower: its entries then reach a minority before it loses
  // leadership, the start of Raft's figure 8.
  int keep = 0;
  if (world_.fault_rng.chance(0.5)) {
    keep = 1 + static_cast<int>(world_.fault_rng.uniform(o_.nodes));
    if (keep == node) keep = 0;
  }
  world_.net.isolate(node, keep);
  ++world_.result
        .faults_injected[keep != 0 ? "isolate-after-election-but-one" : "isolate-after-election"];
  if (o_.verbose) {
    world_.at() << "isolate new leader n" << node
                << (keep != 0 ? " but for n" + std::to_string(keep) : "") << "\n";
  }
  Event& h =
      world_.schedule(world_.now() + world_.fault_rng.range(50'000, 500'000), EventType::kHeal);
  h.tag = static_cast<int>(Fault::kPartition);
}

void Nemesis::draw_swarm() {
  SimOptions& o = world_.options;
  Rng r(o.seed ^ 0x5357'4152'4d00'0000ULL);
  if (o.swarm) {
    o.faults.clear();
    for (Fault fault : kAllFaults) {
      if (r.chance(0.5)) o.faults.insert(fault);
    }
    // Lease reads assume clocks that keep running: a frozen process breaks that assumption,
    // not the protocol (docs/raft.md), so a lease-read run draws no pauses.
    if (o.read_mode == raft::ReadMode::kLease) o.faults.erase(Fault::kPause);
    if (o.faults.empty()) o.faults.insert(Fault::kPartition);
    if (o.shards > 0) {
      // Sharded: replicas move by rebalancing, not by the membership cycle.
      if (o.faults.erase(Fault::kMembership) > 0 || r.chance(0.5))
        o.faults.insert(Fault::kRebalance);
    }
    if (o.engine == replica::EngineKind::kPbft) {
      // A fixed membership; and a PBFT run is a run with Byzantine replicas.
      o.faults.erase(Fault::kMembership);
      o.faults.erase(Fault::kTransfer);
      o.faults.insert(Fault::kByzantine);
    }
    static constexpr double kCrashChances[] = {0.0, 0.25, 0.6, 1.0, 1.0};
    static constexpr uint64_t kDelaysUs[] = {500, 3'000, 20'000, 20'000};
    static constexpr uint64_t kGapsUs[] = {200'000, 600'000, 1'500'000};
    o.election_crash_probability = kCrashChances[r.uniform(std::size(kCrashChances))];
    o.election_crash_max_delay_us = kDelaysUs[r.uniform(std::size(kDelaysUs))];
    o.election_isolate_probability = r.chance(0.5) ? 0.0 : 0.5;
    o.fault_gap_max_us = kGapsUs[r.uniform(std::size(kGapsUs))];
    o.buggify = r.chance(0.75);
    std::ostringstream os;
    os << "--faults " << fault_list(o.faults) << " --election-crash "
       << o.election_crash_probability << " --election-crash-delay-us "
       << o.election_crash_max_delay_us << " --election-isolate " << o.election_isolate_probability
       << " --fault-gap-us " << o.fault_gap_max_us << (o.buggify ? " --buggify" : "");
    world_.result.swarm = os.str();
  }
  if (o.buggify) {
    world_.sites.crash_in_vote_fsync = r.chance(0.75);
    world_.sites.slow_fsync = r.chance(0.5);
    world_.sites.failed_fetch = r.chance(0.5);
    world_.sites.store_written_out = r.chance(0.5);
  }
}

void Nemesis::membership_step() {
  // remove a voter -> wipe it and re-add it as a learner -> promote it once caught up
  if (membership_stage_ == 0) return;
  Node* lead = nodes_.leader();
  bool advanced = false;
  if (lead != nullptr) {
    Engine& r = *lead->engine;
    const raft::ConfState& conf = r.conf();
    // Each step is done once the configuration that makes it is committed; a change the leader
    // appended but lost (it was deposed first) is proposed again.
    const bool conf_committed = r.committed_index() >= r.conf_index();
    if (membership_stage_ == 1) {
      std::vector<NodeId> candidates;
      for (NodeId v : conf.voters) {
        if (v != r.id()) candidates.push_back(v);
      }
      if (membership_member_ == raft::kNoNode && !candidates.empty()) {
        membership_member_ = candidates[world_.fault_rng.uniform(candidates.size())];
      }
      if (conf.contains(membership_member_)) {
        r.propose_conf_change({raft::ConfChangeType::kRemoveNode, membership_member_});
      } else {
        // Only once the removal is committed may the node lose its state: until then its
        // acknowledgements may be what makes earlier entries committed.
        advanced = conf_committed;
      }
    } else if (membership_stage_ == 2) {
      if (!conf.contains(membership_member_)) {
        r.propose_conf_change({raft::ConfChangeType::kAddLearner, membership_member_});
      } else {
        advanced = conf_committed;
      }
    } else {
      if (!conf.is_voter(membership_member_)) {
        r.propose_conf_change({raft::ConfChangeType::kAddVoter, membership_member_});
      } else {
        advanced = conf_committed;
      }
    }
    nodes_.after_input(*lead);
  }
  if (advanced) {
    if (o_.verbose) {
      static constexpr const char* kStage[] = {"", "remove", "add learner", "promote"};
      world_.at() << "membership: " << kStage[membership_stage_] << " member " << membership_member_
                  << "\n";
    }
    // The removed member's node is wiped and comes back empty, under a new member ID, as an
    // operator replaces a member: an old ID never returns without its state, so no log that
    // still counts it as a voter can get a vote from an empty member under it.
    const int slot = nodes_.slot_of(membership_member_);
    if (membership_stage_ == 1 && slot != 0) {
      ++world_.result.faults_injected["membership-wipe"];
      nodes_.wipe(nodes_[slot]);
      membership_member_ = nodes_[slot].member;
    }
    membership_stage_ = membership_stage_ == 3 ? 0 : membership_stage_ + 1;
    membership_tries_ = 0;
    if (membership_stage_ == 0) {
      membership_member_ = raft::kNoNode;
      return;
    }
  } else if (++membership_tries_ > 400) {
    if (o_.verbose) world_.at() << "membership: giving up at stage " << membership_stage_ << "\n";
    membership_stage_ = 0;
    membership_member_ = raft::kNoNode;
    return;
  }
  world_.schedule(world_.now() + 50'000, EventType::kMembership);
}

void Nemesis::start() {
  if (!o_.faults.empty()) world_.schedule(300'000, EventType::kFault);
}

void Nemesis::handle(const Event& e) {
  switch (e.type) {
    case EventType::kFault:
      return inject_fault();
    case EventType::kHeal: {
      const auto f = static_cast<Fault>(e.tag);
      if (f == Fault::kCrash) {
        cluster_.restart(e.node);
      } else if (f == Fault::kPause) {
        if (!cluster_.paused(e.node)) return;
        if (o_.verbose) world_.at() << "resume n" << e.node << "\n";
        cluster_.resume(e.node);
      } else {
        heal(f);
      }
      return;
    }
    case EventType::kMembership:
      return membership_step();
    case EventType::kTargetedIsolate:
      return isolate_after_election(e.node);
    case EventType::kTargetedCrash:
      return targeted_crash(e);
    default:
      SYNOD_ASSERT(false && "not a nemesis event");
  }
}

void Nemesis::elected(const Node& n) {
  // Leader-targeted nemesis: elections are where Raft's subtle bugs live (a vote not yet
  // durable, a new leader's first Appends half-sent), so crash someone right after one.
  // Sharded, every group elects: the chance is shared out over the groups, so that the
  // cluster sees as many of these as one group would.
  const double share = 1.0 / static_cast<double>(cluster_.groups());
  if (world_.fault_phase() && o_.faults.contains(Fault::kCrash) &&
      world_.fault_rng.chance(o_.election_crash_probability * share)) {
    Event& e =
        world_.schedule(world_.now() + world_.fault_rng.range(0, o_.election_crash_max_delay_us),
                        EventType::kTargetedCrash);
    e.node = world_.fault_rng.chance(0.5)
                 ? n.host_id
                 : 1 + static_cast<int>(world_.fault_rng.uniform(o_.nodes));
  }
  // A leader cut off right after its election, while clients still reach it: what a deposed
  // leader may still answer is where stale reads and lost writes show.
  if (world_.fault_phase() && o_.faults.contains(Fault::kPartition) &&
      world_.fault_rng.chance(o_.election_isolate_probability * share)) {
    Event& e =
        world_.schedule(world_.now() + world_.fault_rng.range(0, o_.election_crash_max_delay_us),
                        EventType::kTargetedIsolate);
    e.node = n.host_id;
  }
}

void Nemesis::targeted_crash(const Event& e) {
  // A crash inside a vote's fsync names the replica (its group and slot); one after an
  // election names the host.
  const int host = e.tag == 1 ? cluster_.group(e.group).host(e.node) : e.node;
  // Unlike random crashes, these may take down a majority for a moment (a rack losing
  // power): that is what Raft figure 8 needs, and it is only liveness that suffers.
  // Sharded, no more than a group's replicas minus one: every group keeps a replica up.
  const int most = o_.shards > 0 ? std::min(o_.replication, o_.nodes) - 1 : o_.nodes - 1;
  if (!world_.fault_phase() || cluster_.down(host) || cluster_.down_count() >= most) {
    return;
  }
  cluster_.crash(host);
  ++world_.result.faults_injected[e.tag == 1 ? "crash-in-vote-fsync" : "crash-after-election"];
  // Half the time the process comes straight back, as under a supervisor.
  const uint64_t downtime = world_.fault_rng.chance(0.5)
                                ? world_.fault_rng.range(500, 20'000)
                                : world_.fault_rng.range(100'000, 1'000'000);
  Event& h = world_.schedule(world_.now() + downtime, EventType::kHeal);
  h.tag = static_cast<int>(Fault::kCrash);
  h.node = host;
}

}  // namespace synod::sim
