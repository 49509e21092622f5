// etcdserverpb.Watch: bidirectional streams between watch clients and the node's watch hub.
#include <spdlog/spdlog.h>

#include <deque>
#include <optional>

#include "server/services.h"

namespace synod::server {

namespace {
// A stream whose client reads slower than events arrive is ended once this much is queued;
// the client resumes from the last revision it received (clientv3 does so on UNAVAILABLE).
constexpr size_t kMaxQueuedBytes = 64u << 20;
}  // namespace

class WatchStream final
    : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchStream(WatchService& service, uint64_t id) : service_(service), id_(id) {}

  void start(std::shared_ptr<WatchStream> self) {
    self_ = std::move(self);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client closed its side (or went away): etcd ends the stream.
      end(grpc::Status::OK);
      return;
    }
    service_.ctx_.node->watch(id_, request_);
    request_.Clear();
    {
      std::lock_guard lock(mu_);
      if (finishing_) return;
    }
    StartRead(&request_);
  }

  // Queues responses (any thread); starts a write if none is in flight. gRPC is called
  // outside the lock, so a reaction it runs can never wait for it.
  void send(std::vector<etcdserverpb::WatchResponse>&& responses) {
    etcdserverpb::WatchResponse* first = nullptr;
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      if (finishing_) return;
      for (auto& r : responses) {
        queued_bytes_ += r.ByteSizeLong();
        queue_.push_back(std::move(r));
      }
      if (queued_bytes_ > kMaxQueuedBytes) {
        spdlog::warn("watch: stream {} fell behind ({} bytes queued); ending it", id_,
                     queued_bytes_);
        // The write in flight (if any) keeps the front; the rest is dropped.
        while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
        finish = finish_locked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                            "synod: watch stream fell behind; resume from the "
                                            "last revision received"));
      } else if (!writing_ && !queue_.empty()) {
        writing_ = true;
        first = &queue_.front();
      }
    }
    if (finish) Finish(*finish);
    if (first != nullptr) StartWrite(first);
  }

  void OnWriteDone(bool ok) override {
    etcdserverpb::WatchResponse* next = nullptr;
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      queued_bytes_ -= std::min(queued_bytes_, queue_.front().ByteSizeLong());
      queue_.pop_front();
      if (!ok) queue_.clear();
      if (!ok || queue_.empty()) {
        writing_ = false;
        if (pending_finish_) {
          pending_finish_ = false;
          finish = final_status_;
        } else if (!ok) {
          finish = finish_locked(
              grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch stream write failed"));
        }
      } else {
        next = &queue_.front();
      }
    }
    if (finish) Finish(*finish);
    if (next != nullptr) StartWrite(next);
  }

  void OnDone() override {
    service_.forget(id_);
    service_.ctx_.node->watch_closed(id_);
    std::shared_ptr<WatchStream> keep;
    {
      std::lock_guard lock(mu_);
      keep.swap(self_);
    }
    // `keep` (and any copy the registry handed out) releases the object.
  }

  void end(const grpc::Status& status) {
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      finish = finish_locked(status);
    }
    if (finish) Finish(*finish);
  }

 private:
  // Marks the stream finishing. Returns the status to Finish with now, or nullopt if it was
  // finishing already or a write is in flight (then OnWriteDone finishes it: gRPC allows one
  // write at a time).
  std::optional<grpc::Status> finish_locked(const grpc::Status& status) {
    if (finishing_) return std::nullopt;
    finishing_ = true;
    if (writing_) {
      pending_finish_ = true;
      final_status_ = status;
      return std::nullopt;
    }
    return status;
  }

  WatchService& service_;
  const uint64_t id_;
  etcdserverpb::WatchRequest request_;
  std::shared_ptr<WatchStream> self_;  // held until OnDone
  std::mutex mu_;
  std::deque<etcdserverpb::WatchResponse> queue_;  // front: the write in flight
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool finishing_ = false;
  bool pending_finish_ = false;
  grpc::Status final_status_;
};

WatchService::WatchService(ServerContext& ctx) : ctx_(ctx) {}

WatchService::~WatchService() = default;

grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>*
WatchService::Watch(grpc::CallbackServerContext*) {
  std::shared_ptr<WatchStream> stream;
  {
    std::lock_guard lock(mu_);
    const uint64_t id = next_id_++;
    stream = std::make_shared<WatchStream>(*this, id);
    streams_.emplace(id, stream);
  }
  stream->start(stream);
  return stream.get();
}

void WatchService::forget(uint64_t id) {
  std::lock_guard lock(mu_);
  streams_.erase(id);
}

void WatchService::close_all() {
  std::map<uint64_t, std::shared_ptr<WatchStream>> streams;
  {
    std::lock_guard lock(mu_);
    streams = streams_;
  }
  for (auto& [id, s] : streams)
    s->end(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
}

namespace {

// etcd's sendFragments: a response over the request limit, with more than one event, is split
// into pieces that fit; every piece but the last has fragment set.
std::vector<etcdserverpb::WatchResponse> fragments(etcdserverpb::WatchResponse&& whole) {
  std::vector<etcdserverpb::WatchResponse> out;
  if (whole.ByteSizeLong() < kMaxRequestBytes || whole.events_size() < 2) {
    out.push_back(std::move(whole));
    return out;
  }
  etcdserverpb::WatchResponse piece;
  auto start_piece = [&] {
    piece.Clear();
    *piece.mutable_header() = whole.header();
    piece.set_watch_id(whole.watch_id());
  };
  start_piece();
  for (mvccpb::Event& e : *whole.mutable_events()) {
    const size_t size = e.ByteSizeLong();
    if (piece.events_size() > 0 && piece.ByteSizeLong() + size >= kMaxRequestBytes) {
      piece.set_fragment(true);
      out.push_back(std::move(piece));
      start_piece();
    }
    *piece.add_events() = std::move(e);
  }
  out.push_back(std::move(piece));
  return out;
}

}  // namespace

void WatchService::deliver(std::vector<kv::WatchOutput>&& out) {
  // Group by stream, keeping each stream's order.
  std::map<uint64_t, std::vector<etcdserverpb::WatchResponse>> by_stream;
  for (kv::WatchOutput& o : out) {
    ctx_.fill_header(o.response.mutable_header(), o.response.header().revision());
    auto& dst = by_stream[o.stream];
    if (o.fragment) {
      for (auto& piece : fragments(std::move(o.response))) dst.push_back(std::move(piece));
    } else {
      dst.push_back(std::move(o.response));
    }
  }
  for (auto& [id, responses] : by_stream) {
    std::shared_ptr<WatchStream> stream;
    {
      std::lock_guard lock(mu_);
      auto it = streams_.find(id);
      if (it == streams_.end()) continue;
      stream = it->second;
    }
    stream->send(std::move(responses));
  }
}

}  // namespace synod::server
