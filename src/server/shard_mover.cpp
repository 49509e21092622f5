#include "server/shard_mover.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <set>
#include <sstream>

#include "core/consensus/conf.h"
#include "kv/store.h"
#include "server/awaited.h"
#include "server/context.h"
#include "server/group_access.h"
#include "server/node.h"

namespace synod::server {

namespace {

constexpr std::string_view kMapPrefix = "/synod/shards/";
constexpr std::chrono::milliseconds kStepWait{5000};
// Groups moved at once: each takes one step per round.
constexpr size_t kMovesAtOnce = 4;

std::string hex_list(const std::vector<uint64_t>& ids) {
  std::ostringstream os;
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? "," : "") << std::hex << ids[i];
  return os.str();
}

std::optional<std::vector<uint64_t>> parse_hex_list(std::string_view text) {
  std::vector<uint64_t> out;
  if (text.empty()) return out;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    uint64_t id = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id, 16);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || id == 0) {
      return std::nullopt;
    }
    out.push_back(id);
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

bool contains(const std::vector<uint64_t>& v, uint64_t id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

bool contains_node(const std::vector<raft::NodeId>& v, raft::NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

}  // namespace

std::string shard_map_key(uint32_t group) {
  return std::string(kMapPrefix) + std::to_string(group);
}

std::string encode_group_replicas(const GroupReplicas& r) {
  return "voters=" + hex_list(r.voters) + " learners=" + hex_list(r.learners);
}

std::optional<GroupReplicas> decode_group_replicas(std::string_view text) {
  constexpr std::string_view kVoters = "voters=", kLearners = " learners=";
  if (!text.starts_with(kVoters)) return std::nullopt;
  const size_t split = text.find(kLearners);
  if (split == std::string_view::npos) return std::nullopt;
  auto voters = parse_hex_list(text.substr(kVoters.size(), split - kVoters.size()));
  auto learners = parse_hex_list(text.substr(split + kLearners.size()));
  if (!voters || !learners || voters->empty()) return std::nullopt;
  return GroupReplicas{std::move(*voters), std::move(*learners)};
}

std::map<uint32_t, GroupReplicas> read_shard_map(const kv::Store& store) {
  std::map<uint32_t, GroupReplicas> out;
  etcdserverpb::RangeRequest req;
  req.set_key(std::string(kMapPrefix));
  std::string end(kMapPrefix);
  end.back() += 1;
  req.set_range_end(end);
  auto resp = store.range(req);
  if (!resp) return out;
  for (const mvccpb::KeyValue& kv : resp->kvs()) {
    const std::string_view number = std::string_view(kv.key()).substr(kMapPrefix.size());
    uint32_t g = 0;
    const auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), g);
    if (ec != std::errc() || p != number.data() + number.size() || g == 0) continue;
    if (auto r = decode_group_replicas(kv.value())) out.emplace(g, std::move(*r));
  }
  return out;
}

ring::Placement target_placement(const std::vector<uint64_t>& members, uint32_t shards,
                                 uint32_t replication) {
  ring::Ring ring(ring::RingOptions{.replication = replication});
  for (uint64_t m : members) ring.add(m);
  return ring.placement(shards);
}

std::optional<kv::Error> local_group_conf_change(Node& node, const raft::ConfChange& change) {
  const NodeStatus s = node.status();
  if (s.role != raft::Role::kLeader) return kv::errors::not_leader();
  const bool voter = contains_node(s.conf.voters, change.node);
  const bool learner = contains_node(s.conf.learners, change.node);
  // Already in effect: the step was made before (by this leader or an earlier one).
  switch (change.type) {
    case raft::ConfChangeType::kAddLearner:
      if (learner || voter) return std::nullopt;
      break;
    case raft::ConfChangeType::kAddVoter:
      if (voter) return std::nullopt;
      break;
    case raft::ConfChangeType::kRemoveNode:
      if (!voter && !learner) return std::nullopt;
      break;
  }
  if (change.type == raft::ConfChangeType::kRemoveNode && change.node == node.id()) {
    // The leader itself is to go: it hands leadership to another voter first, so that clients
    // meet no election; the caller asks again, and the new leader removes this member.
    // A different voter each time asked, so that one that is down is not asked forever.
    static std::atomic<size_t> turn{0};
    std::vector<raft::NodeId> others;
    for (raft::NodeId v : s.conf.voters) {
      if (v != node.id()) others.push_back(v);
    }
    if (!others.empty()) {
      const raft::NodeId v = others[turn++ % others.size()];
      auto moved = std::make_shared<Awaited<std::optional<kv::Error>>>();
      node.transfer_leadership(v, [moved](std::optional<kv::Error> e) { moved->set(e); });
      (void)moved->wait(kStepWait);
      return kv::errors::not_leader();
    }
  }
  auto answer = std::make_shared<Awaited<std::optional<kv::Error>>>();
  node.change_membership(change, [answer](std::optional<kv::Error> e) { answer->set(e); });
  std::optional<std::optional<kv::Error>> result = answer->wait(kStepWait);
  if (!result) return kv::errors::timed_out();
  return *result;
}

std::optional<kv::Error> group_conf_change(ServerContext& ctx, uint32_t group,
                                           const raft::ConfChange& change) {
  std::optional<kv::Error> last = kv::errors::shard_unreachable();
  for (uint64_t member : ctx.shards->replicas(group)) {
    if (member == ctx.self_id) {
      Node* node = ctx.shards->node(group);
      if (node == nullptr) continue;
      last = local_group_conf_change(*node, change);
    } else {
      synodpb::Peer::Stub* stub = ctx.remote_groups->stub(member);
      if (stub == nullptr) continue;
      grpc::ClientContext call;
      call.set_deadline(std::chrono::system_clock::now() + kStepWait);
      synodpb::GroupConfChangeRequest req;
      req.set_group(group);
      req.set_type(static_cast<uint32_t>(change.type));
      req.set_member(change.node.value);
      synodpb::GroupResult resp;
      const grpc::Status status = stub->GroupConfChange(&call, req, &resp);
      if (!status.ok()) {
        last = kv::Error{kv::kGrpcUnavailable, status.error_message()};
        continue;
      }
      last = resp.error_code() == 0
                 ? std::nullopt
                 : std::optional<kv::Error>(kv::Error{resp.error_code(), resp.error_message()});
    }
    if (!last || *last != kv::errors::not_leader()) return last;
  }
  return last;
}

ShardMover::ShardMover(ServerContext& ctx, std::chrono::milliseconds interval)
    : ctx_(ctx), interval_(interval), thread_([this] { run(); }) {}

ShardMover::~ShardMover() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ShardMover::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval_, [&] { return stopping_; })) {
    lock.unlock();
    const std::map<uint32_t, GroupReplicas> map =
        ctx_.node->read_store([](const kv::Store& s) { return read_shard_map(s); });
    follow(map);
    if (ctx_.node->status().role == raft::Role::kLeader) move(map);
    lock.lock();
  }
}

void ShardMover::follow(const std::map<uint32_t, GroupReplicas>& map) {
  for (const auto& [g, r] : map) {
    if (g > ctx_.shards->count()) continue;
    std::vector<uint64_t> replicas = r.voters;
    replicas.insert(replicas.end(), r.learners.begin(), r.learners.end());
    if (replicas == ctx_.shards->replicas(g) &&
        (ctx_.shards->node(g) != nullptr) == contains(replicas, ctx_.self_id)) {
      continue;
    }
    std::string error;
    if (!ctx_.shards->set_replicas(g, std::move(replicas), &error)) {
      spdlog::error("shards: group {}: {}", g, error);
    }
  }
}

bool ShardMover::write_map(const std::map<uint32_t, GroupReplicas>& entries) {
  synodpb::Request request;
  request.set_internal(true);  // written under authentication too
  etcdserverpb::TxnRequest* txn = request.mutable_txn();
  for (const auto& [g, r] : entries) {
    auto* put = txn->add_success()->mutable_request_put();
    put->set_key(shard_map_key(g));
    put->set_value(encode_group_replicas(r));
  }
  auto answer = std::make_shared<Awaited<bool>>();
  ctx_.node->propose(std::move(request),
                     [answer](const kv::ApplyResult& result) { answer->set(result.ok()); });
  return answer->wait(kStepWait).value_or(false);
}

void ShardMover::move(const std::map<uint32_t, GroupReplicas>& map) {
  const uint32_t shards = ctx_.shards->count();
  if (map.size() < shards) {
    // The first map: the founders' placement. Only a founding member knows it.
    const ring::Placement& initial = ctx_.shards->initial_placement();
    if (initial.empty()) return;
    std::map<uint32_t, GroupReplicas> first;
    for (uint32_t g = 1; g <= shards; ++g) {
      if (!map.contains(g)) first[g] = GroupReplicas{initial[g - 1], {}};
    }
    if (write_map(first)) spdlog::info("shards: wrote the shard map ({} groups)", first.size());
    return;
  }
  std::vector<uint64_t> members;
  for (raft::NodeId id : ctx_.node->status().conf.voters) members.push_back(id.value);
  if (members.empty()) return;
  const ring::Placement target = target_placement(members, shards, ctx_.shards->replication());
  size_t moving = 0;
  for (const auto& [g, now] : map) {
    if (g > shards || moving >= kMovesAtOnce) continue;
    if (step(g, now, target[g - 1])) ++moving;
  }
}

bool ShardMover::step(uint32_t g, const GroupReplicas& now, const std::vector<uint64_t>& target) {
  auto in_target = [&](uint64_t id) { return contains(target, id); };
  if (!now.learners.empty()) {
    const uint64_t l = now.learners.front();
    GroupReplicas next = now;
    next.learners.erase(next.learners.begin());
    if (!in_target(l)) {
      // The target moved on: this learner is not wanted after all.
      if (group_conf_change(ctx_, g, {raft::ConfChangeType::kRemoveNode, raft::NodeId(l)})) {
        return true;
      }
      write_map({{g, next}});
      return true;
    }
    // (Re)add as learner first: a map written before its group's change is completed here.
    if (auto e = group_conf_change(ctx_, g, {raft::ConfChangeType::kAddLearner, raft::NodeId(l)})) {
      spdlog::info("shards: group {}: adding learner {:x}: {}", g, l, e->message);
      return true;
    }
    if (auto e = group_conf_change(ctx_, g, {raft::ConfChangeType::kAddVoter, raft::NodeId(l)})) {
      // Most often not caught up yet (the Raft core refuses): the next round tries again.
      spdlog::debug("shards: group {}: promoting {:x}: {}", g, l, e->message);
      return true;
    }
    next.voters.push_back(l);
    if (write_map({{g, next}})) spdlog::info("shards: group {}: {:x} promoted to voter", g, l);
    return true;
  }
  for (uint64_t a : target) {
    if (contains(now.voters, a)) continue;
    // A new replica: named in the map first (its member opens it), then added as a learner.
    GroupReplicas next = now;
    next.learners.push_back(a);
    if (!write_map({{g, next}})) return true;
    spdlog::info("shards: group {}: moving a replica to {:x} (learner)", g, a);
    (void)group_conf_change(ctx_, g, {raft::ConfChangeType::kAddLearner, raft::NodeId(a)});
    return true;
  }
  for (uint64_t r : now.voters) {
    if (in_target(r)) continue;
    // Every target replica is a voter: the old one goes.
    if (auto e = group_conf_change(ctx_, g, {raft::ConfChangeType::kRemoveNode, raft::NodeId(r)})) {
      spdlog::info("shards: group {}: removing {:x}: {}", g, r, e->message);
      return true;
    }
    GroupReplicas next = now;
    next.voters.erase(std::find(next.voters.begin(), next.voters.end(), r));
    if (write_map({{g, next}})) spdlog::info("shards: group {}: {:x} removed", g, r);
    return true;
  }
  return false;
}

}  // namespace synod::server
