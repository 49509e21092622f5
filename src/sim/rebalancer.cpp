#include "sim/rebalancer.h"

#include <algorithm>
#include <sstream>

#include "base/assert.h"

namespace synod::sim {

namespace {

// Groups moving at once, and the most steps one move may take before it is reported stuck.
constexpr size_t kConcurrentMoves = 4;
constexpr uint64_t kStepUs = 50'000;
// The metadata writes' client: past every simulated client's number.
constexpr uint32_t kMetaClient = static_cast<uint32_t>(RequestId::kMaxClient);

std::string hosts_text(const std::vector<ring::MemberId>& members) {
  std::string out;
  for (ring::MemberId m : members) out += (out.empty() ? "" : ",") + std::to_string(m);
  return out;
}

}  // namespace

Rebalancer::Rebalancer(World& world, Cluster& cluster)
    : world_(world), o_(world.options), cluster_(cluster) {}

bool Rebalancer::start_change() {
  if (o_.shards == 0 || !idle()) return false;
  ring::Ring& ring = cluster_.ring();
  const ring::Placement before = cluster_.layout();
  std::string what;
  if (!off_ring_.empty() && (ring.members().size() <= static_cast<size_t>(o_.replication) ||
                             world_.fault_rng.chance(0.6))) {
    auto it = off_ring_.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(world_.fault_rng.uniform(off_ring_.size())));
    const int host = *it;
    off_ring_.erase(it);
    ring.add(static_cast<ring::MemberId>(host));
    what = "add n" + std::to_string(host);
  } else if (ring.members().size() > static_cast<size_t>(o_.replication)) {
    const int host = 1 + static_cast<int>(world_.fault_rng.uniform(o_.nodes));
    if (!ring.members().contains(static_cast<ring::MemberId>(host))) return false;
    ring.remove(static_cast<ring::MemberId>(host));
    off_ring_.insert(host);
    what = "remove n" + std::to_string(host);
  } else {
    return false;
  }
  const std::vector<ring::Move> moves = ring::plan_moves(before, cluster_.layout());
  queued_.assign(moves.begin(), moves.end());
  world_.result.moves_planned += moves.size();
  if (o_.verbose) world_.at() << "rebalance: " << what << ", " << moves.size() << " moves\n";
  std::vector<ring::MemberId> members(ring.members().begin(), ring.members().end());
  write_meta("/synod/ring", hosts_text(members));
  schedule_step();
  return true;
}

void Rebalancer::handle(const Event& e) {
  SYNOD_ASSERT(e.type == EventType::kRebalance);
  stepping_ = false;
  step();
}

void Rebalancer::schedule_step() {
  if (stepping_) return;
  stepping_ = true;
  world_.schedule(world_.now() + kStepUs, EventType::kRebalance);
}

void Rebalancer::step() {
  ++steps_;
  check_replication();
  // Start queued moves, one per group, a few at a time.
  for (auto it = queued_.begin(); it != queued_.end() && active_.size() < kConcurrentMoves;) {
    if (active_.contains(it->shard)) {
      ++it;
      continue;
    }
    Active a;
    a.move = *it;
    a.started_us = world_.now();
    active_.emplace(it->shard, a);
    it = queued_.erase(it);
  }
  for (auto it = active_.begin(); it != active_.end();) {
    if (advance(it->second)) {
      ++world_.result.moves_done;
      std::vector<ring::MemberId> hosts;
      for (int slot : cluster_.live_slots(it->first)) {
        hosts.push_back(static_cast<ring::MemberId>(cluster_.group(it->first)[slot].host_id));
      }
      write_meta("/synod/shards/" + std::to_string(it->first), hosts_text(hosts));
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
  push_meta();
  if (!idle()) schedule_step();
}

// One step of a move, on the group's leader: each stage proposes its configuration change and
// is done once the leader's configuration has it and is committed (a change the leader
// appended but lost, deposed first, is proposed again by the next one).
bool Rebalancer::advance(Active& a) {
  Nodes& g = cluster_.group(a.move.shard);
  static constexpr Stage kOrder[] = {Stage::kAddLearner, Stage::kPromote, Stage::kRemoveOld};
  static constexpr Stage kBuggyOrder[] = {Stage::kRemoveOld, Stage::kAddLearner, Stage::kPromote};
  const Stage* order = o_.workload_bugs.remove_before_catch_up ? kBuggyOrder : kOrder;
  if (a.old_slot == 0 && a.move.remove != 0) {
    for (int slot : g.live_slots()) {
      if (g[slot].host_id == static_cast<int>(a.move.remove)) a.old_slot = slot;
    }
  }
  if (a.new_slot == 0 && a.move.add != 0) {
    // The new replica starts on its host once the host is up.
    if (cluster_.down(static_cast<int>(a.move.add))) return false;
    a.new_slot = cluster_.add_replica(a.move.shard, static_cast<int>(a.move.add));
  }
  while (a.stage < 3) {
    Node* lead = g.leader();
    if (lead == nullptr) return false;
    Engine& r = *lead->engine;
    const raft::ConfState& conf = r.conf();
    const bool committed = r.committed_index() >= r.conf_index();
    raft::ConfChange change;
    bool needed = false;
    switch (order[a.stage]) {
      case Stage::kAddLearner:
        if (a.new_slot == 0) break;
        change = {raft::ConfChangeType::kAddLearner, g[a.new_slot].member};
        needed = !conf.contains(change.node);
        break;
      case Stage::kPromote:
        if (a.new_slot == 0) break;
        change = {raft::ConfChangeType::kAddVoter, g[a.new_slot].member};
        needed = !conf.is_voter(change.node);
        break;
      case Stage::kRemoveOld:
        if (a.old_slot == 0) break;
        change = {raft::ConfChangeType::kRemoveNode, g[a.old_slot].member};
        needed = conf.contains(change.node);
        break;
    }
    if (needed) {
      r.propose_conf_change(change);  // refused while behind or pending: tried next step
      g.after_input(*lead);
      return false;
    }
    if (!committed) return false;
    if (order[a.stage] == Stage::kRemoveOld && a.old_slot != 0) {
      // Removed and committed: the replica goes, and its state with it.
      cluster_.retire(a.move.shard, a.old_slot);
    }
    if (o_.verbose) {
      static constexpr const char* kName[] = {"learner added", "promoted", "old replica removed"};
      world_.at() << "rebalance: group " << a.move.shard << " n" << a.move.add << " for n"
                  << a.move.remove << ": " << kName[static_cast<int>(order[a.stage])] << "\n";
    }
    ++a.stage;
  }
  return true;
}

// ReplicationKept: every group keeps as many voters as the replication factor (the ring has
// at least that many hosts).
void Rebalancer::check_replication() {
  const auto want = static_cast<size_t>(std::min<int>(o_.replication, o_.nodes));
  for (uint32_t g = 0; g < cluster_.groups(); ++g) {
    if (flagged_.contains(g)) continue;
    Node* lead = cluster_.group(g).leader();
    if (lead == nullptr) continue;
    const Engine& r = *lead->engine;
    if (r.committed_index() < r.conf_index()) continue;
    if (r.conf().voters.size() >= want) continue;
    flagged_.insert(g);
    std::ostringstream os;
    os << "group " << g << " committed a configuration of " << r.conf().voters.size() << " voters ("
       << raft::to_string(r.conf()) << "), replication " << want;
    world_.flag("ReplicationKept", os.str());
  }
}

void Rebalancer::write_meta(const std::string& key, const std::string& value) {
  meta_pending_[key] = value;
}

// The metadata writes, proposed on the metadata group's leader until its store has them.
void Rebalancer::push_meta() {
  Nodes& meta = cluster_.group(0);
  Node* lead = meta.leader();
  if (lead == nullptr) return;
  for (auto it = meta_pending_.begin(); it != meta_pending_.end();) {
    const KvResult now = lead->kv->read(it->first);
    if (now.value == it->second) {
      it = meta_pending_.erase(it);
      continue;
    }
    if (steps_ % 10 == 1 || steps_ < 2) {
      KvCommand put;
      put.client = kMetaClient;
      put.seq = ++meta_seq_;
      put.op = KvOp::kPut;
      put.key = it->first;
      put.value = it->second;
      lead->engine->propose(put.encode());
    }
    ++it;
  }
  meta.after_input(*lead);
}

std::string Rebalancer::describe() const {
  std::ostringstream os;
  os << queued_.size() << " moves queued";
  for (const auto& [group, a] : active_) {
    os << "; group " << group << " (n" << a.move.add << " for n" << a.move.remove << ") at stage "
       << a.stage << " since " << a.started_us / 1000 << " ms";
  }
  if (!meta_pending_.empty()) os << "; " << meta_pending_.size() << " metadata writes pending";
  return os.str();
}

}  // namespace synod::sim
