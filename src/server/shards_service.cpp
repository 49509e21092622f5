// synodpb.Shards: what `synod ctl ring` prints.
#include "server/services.h"

#include <algorithm>
#include <thread>

#include "server/cluster_cut.h"
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

namespace {

// Takes the cut on its own thread (it waits on the groups), then streams it: for each group a
// header chunk and its state in pieces.
class ClusterSnapshotWriter final : public grpc::ServerWriteReactor<synodpb::ClusterSnapshotChunk> {
 public:
  explicit ClusterSnapshotWriter(ServerContext& ctx) : ctx_(ctx) {
    std::thread([this] { take(); }).detach();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "snapshot stream broken"));
      return;
    }
    next();
  }
  void OnDone() override { delete this; }

 private:
  static constexpr size_t kChunkBytes = 1 << 20;

  void take() {
    kv::Expected<ClusterCutTaken, kv::Error> cut = take_cluster_cut(ctx_);
    if (!cut) {
      Finish(to_status(cut.error()));
      return;
    }
    cut_ = std::move(cut.value());
    next();
  }

  void next() {
    chunk_.Clear();
    if (group_ >= cut_.groups.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    const GroupCutImage& g = cut_.groups[group_];
    chunk_.set_group(g.group);
    if (offset_ == std::string::npos) {  // the group's header
      chunk_.set_epoch(cut_.epoch);
      chunk_.set_revision(g.revision);
      chunk_.set_size(g.image.size());
      if (group_ == 0) chunk_.set_shards(static_cast<uint32_t>(cut_.groups.size() - 1));
      offset_ = 0;
    } else {
      chunk_.set_data(g.image.substr(offset_, kChunkBytes));
      offset_ += kChunkBytes;
      if (offset_ >= g.image.size()) {
        ++group_;
        offset_ = std::string::npos;
      }
    }
    StartWrite(&chunk_);
  }

  ServerContext& ctx_;
  ClusterCutTaken cut_;
  size_t group_ = 0;
  size_t offset_ = std::string::npos;  // npos: the group's header is next
  synodpb::ClusterSnapshotChunk chunk_;
};

}  // namespace

grpc::ServerWriteReactor<synodpb::ClusterSnapshotChunk>* ShardsService::Snapshot(
    grpc::CallbackServerContext*, const synodpb::ClusterSnapshotRequest*) {
  return new ClusterSnapshotWriter(ctx_);
}

}  // namespace synod::server
