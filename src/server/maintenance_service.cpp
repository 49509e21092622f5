// etcdserverpb.Maintenance: status, hashes, snapshot streaming, defragmentation, alarms and
// leadership transfer.
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <map>
#include <thread>

#include "kv/cluster_cut.h"
#include "server/apply_result.h"
#include "server/cluster_cut.h"
#include "server/services.h"
#include "server/sharded_kv.h"
#include "storage/etcd_snapshot.h"

namespace synod::server {

namespace {

constexpr size_t kSnapshotChunkBytes = 32 * 1024;

}  // namespace

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::AlarmRequest*,
                                                    etcdserverpb::AlarmResponse* resp) {
  // Synod raises no alarms yet (no space quota, no corruption check): the list is empty and
  // activating or deactivating one records nothing. etcd 3.4 answers alarms without a header.
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  (void)resp;
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* c,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  const NodeStatus s = ctx_.node->status();
  resp->set_version(kApiVersion);
  int64_t size = static_cast<int64_t>(ctx_.node->backend_size_bytes());
  if (ctx_.shards != nullptr) {
    for (auto& [group, node] : ctx_.shards->hosted()) {
      size += static_cast<int64_t>(node->backend_size_bytes());
    }
  }
  resp->set_dbsize(size);
  resp->set_dbsizeinuse(size);
  resp->set_leader(s.leader.value);
  resp->set_raftindex(s.committed);
  resp->set_raftterm(s.term.value);
  resp->set_raftappliedindex(s.applied);
  resp->set_islearner(s.conf.is_learner(raft::NodeId(ctx_.self_id)));
  if (s.leader == raft::kNoNode) resp->add_errors(kv::errors::no_leader().message);
  ctx_.fill_header(resp->mutable_header(), ctx_.revision());
  if (ctx_.shards == nullptr) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  // Sharded: the cluster's revision, as etcd's member reports its store's.
  sharded::cluster_revision(ctx_, resp->header().revision(), [reactor, resp](int64_t revision) {
    resp->mutable_header()->set_revision(revision);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Defragment(grpc::CallbackServerContext* c,
                                                         const etcdserverpb::DefragmentRequest*,
                                                         etcdserverpb::DefragmentResponse* resp) {
  if (auto e = check_admin(ctx_, *c, AdminErrors::kRaw)) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  ctx_.executor->post([this, reactor, resp] {
    ctx_.node->defragment();
    if (ctx_.shards != nullptr) {
      for (auto& [group, node] : ctx_.shards->hosted()) node->defragment();
    }
    ctx_.fill_header(resp->mutable_header(), ctx_.revision());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Hash(grpc::CallbackServerContext* c,
                                                   const etcdserverpb::HashRequest*,
                                                   etcdserverpb::HashResponse* resp) {
  if (auto e = check_admin(ctx_, *c, AdminErrors::kRaw)) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  HashKvResult h = ctx_.node->read_store([](const kv::Store& s) { return store_hash_kv(s, 0); });
  resp->set_hash(h.hash);
  ctx_.fill_header(resp->mutable_header(), h.revision);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* c,
                                                     const etcdserverpb::HashKVRequest* req,
                                                     etcdserverpb::HashKVResponse* resp) {
  if (auto e = check_admin(ctx_, *c, AdminErrors::kRaw)) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (ctx_.shards != nullptr) {
    sharded::hash_kv(ctx_, reactor, req, resp);
    return reactor;
  }
  std::optional<Error> error;
  HashKvResult h = ctx_.node->read_store(
      [&](const kv::Store& s) { return store_hash_kv(s, req->revision(), &error); });
  if (error) {
    reactor->Finish(to_status(*error));
    return reactor;
  }
  resp->set_hash(h.hash);
  resp->set_compact_revision(h.compact_revision);
  ctx_.fill_header(resp->mutable_header(), h.revision);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {

// Streams one state-machine image in chunks; remaining_bytes counts down to zero.
class SnapshotWriter final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  SnapshotWriter(ServerContext& ctx, std::string image) : ctx_(ctx) { start(std::move(image)); }
  // A sharded cluster's: a consistent cut of every shard, taken on its own thread (it waits on
  // the groups), its in-flight steps delivered and undecided transactions settled, the data
  // groups' histories in one etcd backend (storage::etcd_snapshot_image).
  explicit SnapshotWriter(ServerContext& ctx) : ctx_(ctx) {
    std::thread([this] {
      kv::Expected<std::string, kv::Error> image = cluster_image(ctx_);
      if (!image) {
        Finish(to_status(image.error()));
        return;
      }
      start(std::move(image.value()));
    }).detach();
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
  static kv::Expected<std::string, kv::Error> cluster_image(ServerContext& ctx) {
    kv::Expected<ClusterCutTaken, kv::Error> cut = take_cluster_cut(ctx);
    if (!cut) return kv::Unexpected{cut.error()};
    std::map<uint32_t, std::string> images;
    for (GroupCutImage& g : cut.value().groups) images[g.group] = std::move(g.image);
    kv::Expected<kv::ClusterCut, std::string> loaded = kv::ClusterCut::load(images);
    if (!loaded) return kv::Unexpected{kv::Error{kv::kGrpcInternal, loaded.error()}};
    loaded.value().settle();
    std::vector<const kv::Store*> shards;
    for (const auto& [group, store] : loaded.value().stores()) {
      if (group != 0) shards.push_back(store.get());
    }
    return storage::etcd_snapshot_image(shards);
  }

  // etcd's clients expect a stream of whole 512-byte pages (a bbolt file) followed by the
  // SHA-256 of those pages; etcdctl snapshot save refuses anything else. The image is padded
  // with zeros to a page multiple.
  void start(std::string image) {
    image_ = std::move(image);
    image_.resize((image_.size() + 511) / 512 * 512, '\0');
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(image_.data()), image_.size(), digest);
    image_.append(reinterpret_cast<const char*>(digest), sizeof digest);
    next();
  }

  void next() {
    if (offset_ >= image_.size() && sent_any_) {
      Finish(grpc::Status::OK);
      return;
    }
    const size_t n = std::min(kSnapshotChunkBytes, image_.size() - offset_);
    response_.Clear();
    ctx_.fill_header(response_.mutable_header(), ctx_.revision());
    response_.set_blob(image_.substr(offset_, n));
    offset_ += n;
    response_.set_remaining_bytes(image_.size() - offset_);
    sent_any_ = true;
    StartWrite(&response_);
  }

  ServerContext& ctx_;
  std::string image_;
  size_t offset_ = 0;
  bool sent_any_ = false;
  etcdserverpb::SnapshotResponse response_;
};

// A snapshot the caller may not take: the stream ends at once with the error.
class RefusedSnapshot final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  explicit RefusedSnapshot(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* MaintenanceService::Snapshot(
    grpc::CallbackServerContext* c, const etcdserverpb::SnapshotRequest*) {
  if (auto e = check_admin(ctx_, *c, AdminErrors::kRaw)) return new RefusedSnapshot(to_status(*e));
  // A sharded member's own groups hold part of the data only: the file is the whole cluster's,
  // from a consistent cut.
  if (ctx_.shards != nullptr) return new SnapshotWriter(ctx_);
  return new SnapshotWriter(ctx_, ctx_.node->snapshot_image());
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(grpc::CallbackServerContext* c,
                                                         const etcdserverpb::MoveLeaderRequest* req,
                                                         etcdserverpb::MoveLeaderResponse* resp) {
  if (auto e = check_admin(ctx_, *c, AdminErrors::kRaw)) return finish_with(c, *e);
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  const NodeStatus s = ctx_.node->status();
  if (s.role != raft::Role::kLeader) {
    reactor->Finish(to_status(kv::errors::not_leader()));
    return reactor;
  }
  if (req->targetid() == ctx_.self_id) {
    // Already the leader: etcd reports a transfer to itself as done.
    ctx_.fill_header(resp->mutable_header(), ctx_.revision());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  if (!s.conf.is_voter(raft::NodeId(req->targetid()))) {
    reactor->Finish(to_status(kv::errors::bad_leader_transferee()));
    return reactor;
  }
  ctx_.node->transfer_leadership(raft::NodeId(req->targetid()),
                                 [this, reactor, resp](std::optional<Error> e) {
                                   if (e) {
                                     reactor->Finish(to_status(*e));
                                     return;
                                   }
                                   ctx_.fill_header(resp->mutable_header(), ctx_.revision());
                                   reactor->Finish(grpc::Status::OK);
                                 });
  return reactor;
}

}  // namespace synod::server
