// synodpb.Shards: what `synod ctl ring` prints.
#include "server/services.h"

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
  for (uint32_t g = 1; g <= ctx_.shards->count(); ++g) {
    synodpb::GroupStatus* gs = resp->add_groups();
    gs->set_group(g);
    for (uint64_t m : ctx_.shards->replicas(g)) gs->add_replicas(m);
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
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace synod::server
