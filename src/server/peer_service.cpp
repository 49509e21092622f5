// synodpb.Peer: Raft frames from other members, and the member directory for joiners.
#include <spdlog/spdlog.h>

#include "net/raft_codec.h"
#include "server/apply_result.h"
#include "server/services.h"

namespace synod::server {

grpc::Status PeerService::Stream(grpc::ServerContext*,
                                 grpc::ServerReader<synodpb::RaftBatch>* reader,
                                 synodpb::StreamAck*) {
  synodpb::RaftBatch batch;
  uint64_t bad_frames = 0;
  while (reader->Read(&batch)) {
    if (batch.cluster_id() != ctx_.node->cluster_id()) {
      spdlog::warn("peer: frame from member {:x} of cluster {:x} refused (this is {:x})",
                   batch.from(), batch.cluster_id(), ctx_.node->cluster_id());
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch");
    }
    for (const synodpb::RaftMessage& pm : batch.messages()) {
      std::string error;
      std::optional<raft::Message> m = net::decode(pm, &error);
      if (!m || m->to.value != ctx_.self_id) {
        if (bad_frames++ == 0)
          spdlog::warn("peer: dropped a message from {:x}: {}", batch.from(),
                       m ? "addressed to another member" : error);
        continue;
      }
      ctx_.node->receive(std::move(*m));
    }
  }
  return grpc::Status::OK;
}

grpc::Status PeerService::Members(grpc::ServerContext*, const synodpb::MembersRequest*,
                                  synodpb::MembersResponse* resp) {
  resp->set_cluster_id(ctx_.node->cluster_id());
  for (const etcdserverpb::Member& m : ctx_.members()) {
    synodpb::PeerMember* pm = resp->add_members();
    pm->set_id(m.id());
    pm->set_name(m.name());
    for (const std::string& u : m.peerurls()) pm->add_peer_urls(u);
    for (const std::string& u : m.clienturls()) pm->add_client_urls(u);
    pm->set_is_learner(m.islearner());
  }
  return grpc::Status::OK;
}

grpc::Status PeerService::FetchState(grpc::ServerContext*, const synodpb::FetchStateRequest* req,
                                     grpc::ServerWriter<synodpb::StateChunk>* writer) {
  uint64_t applied = 0;
  const std::string image = ctx_.node->state_image(&applied);
  if (applied < req->min_index()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "state at applied index " + std::to_string(applied) + " is behind " +
                            std::to_string(req->min_index()));
  }
  constexpr size_t kChunkBytes = 1 << 20;
  for (size_t offset = 0; offset < image.size() || offset == 0; offset += kChunkBytes) {
    synodpb::StateChunk chunk;
    if (offset == 0) {
      chunk.set_applied_index(applied);
      chunk.set_total_bytes(image.size());
    }
    chunk.set_data(image.substr(offset, kChunkBytes));
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "peer went away");
    if (image.empty()) break;
  }
  return grpc::Status::OK;
}

}  // namespace synod::server
