// synodpb.Peer: Raft frames from other members, and the member directory for joiners.
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <thread>

#include "net/raft_codec.h"
#include "server/apply_result.h"
#include "server/awaited.h"
#include "server/group_access.h"
#include "server/server.h"
#include "server/services.h"
#include "server/shard_mover.h"
#include "server/timestamp_oracle.h"

namespace synod::server {

namespace {

const std::string kRaft = "raft";

// One inbound peer stream: reads frames until the sender goes away. A frame from another
// cluster ends the stream; a message that does not decode is dropped (logged once per stream).
class StreamReader final : public grpc::ServerReadReactor<synodpb::RaftBatch> {
 public:
  explicit StreamReader(ServerContext& ctx) : ctx_(ctx) { StartRead(&frame_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (frame_.cluster_id() != ctx_.node->cluster_id()) {
      spdlog::warn("peer: frame from member {:x} of cluster {:x} refused (this is {:x})",
                   frame_.from(), frame_.cluster_id(), ctx_.node->cluster_id());
      Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch"));
      return;
    }
    const std::string& engine = frame_.engine().empty() ? kRaft : frame_.engine();
    if (engine != ctx_.node->engine_name()) {
      spdlog::warn("peer: frame from member {:x} running engine {} refused (this member runs {})",
                   frame_.from(), engine, ctx_.node->engine_name());
      Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "consensus engine mismatch"));
      return;
    }
    // A frame may carry several groups' messages (net/transport.h): each group's go to its
    // node together, in frame order.
    std::map<uint32_t, std::vector<raft::Message>> by_group;
    for (const synodpb::RaftMessage& pm : frame_.messages()) {
      const uint32_t group = pm.group() != 0 ? pm.group() : frame_.group();
      std::string error;
      std::optional<raft::Message> m = net::decode(pm, &error);
      if (!m || m->to.value != ctx_.self_id) {
        if (bad_messages_++ == 0)
          spdlog::warn("peer: dropped a message from {:x}: {}", frame_.from(),
                       m ? "addressed to another member" : error);
        continue;
      }
      by_group[group].push_back(std::move(*m));
    }
    for (auto& [group, messages] : by_group) {
      Node* target = ctx_.group_node(group);
      if (target == nullptr) {
        if (bad_messages_++ == 0)
          spdlog::warn(
              "peer: dropped messages from {:x} for group {}, which this member does not host",
              frame_.from(), group);
        continue;
      }
      target->receive(std::move(messages));
    }
    StartRead(&frame_);
  }

  void OnDone() override { delete this; }

 private:
  ServerContext& ctx_;
  synodpb::RaftBatch frame_;
  uint64_t bad_messages_ = 0;
};

}  // namespace

grpc::ServerReadReactor<synodpb::RaftBatch>* PeerService::Stream(grpc::CallbackServerContext*,
                                                                 synodpb::StreamAck*) {
  return new StreamReader(ctx_);
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
  Node* node = ctx_.group_node(req->group());
  if (node == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "group " + std::to_string(req->group()) + " is not hosted here");
  }
  uint64_t applied = 0;
  std::string image;
  if (req->retained()) {
    std::optional<std::string> kept = node->retained_image(req->min_index(), &applied);
    if (!kept) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "no state retained at or past index " + std::to_string(req->min_index()));
    }
    image = std::move(*kept);
  } else {
    image = node->state_image(&applied);
  }
  if (applied < req->min_index()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "state at applied index " + std::to_string(applied) + " is behind " +
                            std::to_string(req->min_index()));
  }
  if (const ServedStateFilter& filter = served_state_filter()) filter(image);  // tests only
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

grpc::Status PeerService::Timestamps(grpc::ServerContext*, const synodpb::TimestampsRequest* req,
                                     synodpb::TimestampsResponse* resp) {
  if (ctx_.oracle == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this cluster is not sharded");
  }
  if (req->count() == 0 || req->count() > TimestampOracle::kWindow) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "count out of range");
  }
  struct Answer {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::optional<int64_t> first;
  };
  auto answer = std::make_shared<Answer>();
  ctx_.oracle->allocate_here(req->count(), [answer](std::optional<int64_t> first) {
    std::lock_guard lock(answer->mu);
    answer->first = first;
    answer->done = true;
    answer->cv.notify_all();
  });
  std::unique_lock lock(answer->mu);
  answer->cv.wait_for(lock, std::chrono::seconds(2), [&] { return answer->done; });
  if (!answer->first) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not the metadata group's leader");
  }
  resp->set_first(*answer->first);
  return grpc::Status::OK;
}

namespace {

constexpr std::chrono::milliseconds kGroupCallWait{4500};  // under the caller's 5 s deadline

}  // namespace

grpc::Status PeerService::GroupPropose(grpc::ServerContext*,
                                       const synodpb::GroupProposeRequest* req,
                                       synodpb::GroupResult* resp) {
  Node* node = ctx_.shards != nullptr ? ctx_.shards->node(req->group()) : nullptr;
  if (node == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this member does not replicate the group");
  }
  if (!proposable_to_group(req->request())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a request a peer may propose");
  }
  auto answer = std::make_shared<Awaited<synodpb::GroupResult>>();
  synodpb::Request request = req->request();
  request.set_id(0);  // the proposing node numbers it
  propose_hosted(*node, std::move(request),
                 [answer](const kv::ApplyResult& r) { answer->set(to_group_result(r)); });
  std::optional<synodpb::GroupResult> result = answer->wait(kGroupCallWait);
  if (!result) return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no answer in time");
  *resp = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status PeerService::GroupCut(grpc::ServerContext*, const synodpb::GroupCutRequest* req,
                                   grpc::ServerWriter<synodpb::GroupCutChunk>* writer) {
  constexpr size_t kChunkBytes = 1 << 20;
  Node* node = ctx_.group_node(req->group());
  std::optional<kv::CutRecord> record = node != nullptr ? node->cut(req->epoch()) : std::nullopt;
  if (!record) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no record of that cut of the group here");
  }
  synodpb::GroupCutChunk chunk;
  chunk.set_revision(record->revision);
  size_t offset = 0;
  do {
    chunk.set_data(record->image.substr(offset, kChunkBytes));
    offset += kChunkBytes;
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken");
    chunk.clear_revision();
  } while (offset < record->image.size());
  return grpc::Status::OK;
}

grpc::Status PeerService::GroupRange(grpc::ServerContext*, const synodpb::GroupRangeRequest* req,
                                     etcdserverpb::RangeResponse* resp) {
  Node* node = ctx_.shards != nullptr ? ctx_.shards->node(req->group()) : nullptr;
  if (node == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this member does not replicate the group");
  }
  using Read = std::pair<std::optional<kv::Error>, etcdserverpb::RangeResponse>;
  auto answer = std::make_shared<Awaited<Read>>();
  // `req` lives until this handler returns; the read is done by then or its answer unused.
  auto range = std::make_shared<etcdserverpb::RangeRequest>(req->range());
  read_hosted_group(ctx_, *node, *range,
                    [answer, range](std::optional<kv::Error> e, etcdserverpb::RangeResponse&& r) {
                      answer->set(Read(std::move(e), std::move(r)));
                    });
  std::optional<Read> result = answer->wait(kGroupCallWait);
  if (!result) return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no answer in time");
  if (result->first) return to_status(*result->first);
  *resp = std::move(result->second);
  return grpc::Status::OK;
}

grpc::Status PeerService::GroupHash(grpc::ServerContext*, const synodpb::GroupHashRequest* req,
                                    etcdserverpb::HashKVResponse* resp) {
  Node* node = ctx_.shards != nullptr ? ctx_.shards->node(req->group()) : nullptr;
  if (node == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this member does not replicate the group");
  }
  std::optional<kv::Error> error;
  *resp = hash_hosted_group(*node, req->revision(), &error);
  if (error) return to_status(*error);
  return grpc::Status::OK;
}

grpc::Status PeerService::GroupConfChange(grpc::ServerContext*,
                                          const synodpb::GroupConfChangeRequest* req,
                                          synodpb::GroupResult* resp) {
  Node* node = ctx_.shards != nullptr ? ctx_.shards->node(req->group()) : nullptr;
  if (node == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this member does not replicate the group");
  }
  if (req->type() > static_cast<uint32_t>(raft::ConfChangeType::kRemoveNode) ||
      req->member() == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a membership change");
  }
  const raft::ConfChange change{static_cast<raft::ConfChangeType>(req->type()),
                                raft::NodeId(req->member())};
  if (std::optional<kv::Error> e = local_group_conf_change(*node, change)) {
    resp->set_error_code(e->grpc_code);
    resp->set_error_message(e->message);
  }
  return grpc::Status::OK;
}

// Another member's watch streams over a group hosted here: this thread reads their requests
// into a relay of the watch service; a writer thread sends the relay's outputs back, in order.
grpc::Status PeerService::GroupWatch(
    grpc::ServerContext* c,
    grpc::ServerReaderWriter<synodpb::GroupWatchOutput, synodpb::GroupWatchRequest>* rw) {
  synodpb::GroupWatchRequest request;
  if (!rw->Read(&request)) return grpc::Status::OK;
  const uint32_t group = request.group();
  if (ctx_.shards == nullptr || ctx_.watch_service == nullptr ||
      ctx_.shards->node(group) == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this member does not replicate the group");
  }
  struct Outbox {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<synodpb::GroupWatchOutput> queue;
    bool done = false;
  };
  auto outbox = std::make_shared<Outbox>();
  const uint64_t relay = ctx_.watch_service->open_relay(
      group,
      [outbox](synodpb::GroupWatchOutput&& o) {
        std::lock_guard lock(outbox->mu);
        outbox->queue.push_back(std::move(o));
        outbox->cv.notify_one();
      },
      [c] { c->TryCancel(); });
  std::thread writer([outbox, rw, c] {
    std::unique_lock lock(outbox->mu);
    while (true) {
      outbox->cv.wait(lock, [&] { return outbox->done || !outbox->queue.empty(); });
      if (outbox->queue.empty()) return;
      synodpb::GroupWatchOutput o = std::move(outbox->queue.front());
      outbox->queue.pop_front();
      lock.unlock();
      const bool written = rw->Write(o);
      lock.lock();
      if (!written) {
        c->TryCancel();
        return;
      }
    }
  });
  do {
    if (request.group() != group) break;
    ctx_.watch_service->relay_request(relay, request);
  } while (rw->Read(&request));
  ctx_.watch_service->close_relay(relay);
  {
    std::lock_guard lock(outbox->mu);
    outbox->done = true;
    outbox->queue.clear();
  }
  outbox->cv.notify_one();
  writer.join();
  return grpc::Status::OK;
}

}  // namespace synod::server
