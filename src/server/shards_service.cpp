// synodpb.Shards: what `synod ctl ring` prints.
#include "server/services.h"

#include <algorithm>

#include "server/shard_mover.h"

namespace synod::server {

grpc::ServerUnaryReactor* ShardsService::Status(grpc::CallbackServerContext* c,
                                                const synodpb::ShardsRequest*,
                                                synodpb::ShardsResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  resp->set_member(ctx_.self_id);
  resp->set_metadata_leader(ctx_.node->status().leader.value);
  if (ctx_.shards == nullptr) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  resp->set_shards(ctx_.shards->count());
  resp->set_replication(ctx_.config.raw.replication);
  std::vector<uint64_t> members;
  for (raft::NodeId id : ctx_.node->status().conf.voters) members.push_back(id.value);
  for (uint64_t m : members) resp->add_members(m);
  const ring::Placement target =
      members.empty() ? ring::Placement()
                      : target_placement(members, ctx_.shards->count(), ctx_.shards->replication());
  const std::map<uint32_t, GroupReplicas> map =
      ctx_.node->read_store([](const kv::Store& s) { return read_shard_map(s); });
  uint32_t placed = 0;
  for (uint32_t g = 1; g <= ctx_.shards->count(); ++g) {
    synodpb::GroupStatus* gs = resp->add_groups();
    gs->set_group(g);
    for (uint64_t m : ctx_.shards->replicas(g)) gs->add_replicas(m);
    if (!target.empty()) {
      for (uint64_t m : target[g - 1]) gs->add_target(m);
    }
    if (auto it = map.find(g); it != map.end()) {
      for (uint64_t m : it->second.learners) gs->add_learners(m);
      std::vector<uint64_t> voters = it->second.voters,
                            want = target.empty() ? voters : target[g - 1];
      std::sort(voters.begin(), voters.end());
      std::sort(want.begin(), want.end());
      if (voters == want && it->second.learners.empty()) ++placed;
    }
    const Node* node = ctx_.shards->node(g);
    if (node == nullptr) continue;
    const NodeStatus s = node->status();
    gs->set_hosted(true);
    gs->set_leader(s.leader.value);
    gs->set_term(s.term.value);
    gs->set_applied(s.applied);
    node->read_store([&](const kv::Store& st) {
      gs->set_revision(st.revision());
      gs->set_keys(static_cast<int64_t>(st.key_count()));
    });
  }
  resp->set_placed(placed);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace synod::server
