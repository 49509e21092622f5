// etcdserverpb.Watch: bidirectional streams between watch clients and the node's watch hub.
#include "server/bidi_stream.h"
#include "server/services.h"

namespace synod::server {

class WatchStream final
    : public BidiStream<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchStream(WatchService& service, uint64_t id, const grpc::CallbackServerContext& call)
      : service_(service), id_(id), call_(call) {}

 private:
  void on_request(etcdserverpb::WatchRequest& request) override {
    Node::WatchCaller caller;
    if (request.has_create_request()) caller = caller_of(service_.ctx_, call_);
    service_.ctx_.node->watch(id_, request, std::move(caller));
  }
  void on_done() override {
    service_.forget(id_);
    service_.ctx_.node->watch_closed(id_);
  }
  const char* name() const override { return "watch"; }

  WatchService& service_;
  const uint64_t id_;
  const grpc::CallbackServerContext& call_;  // lives until the stream's OnDone
};

WatchService::WatchService(ServerContext& ctx) : ctx_(ctx) {}

WatchService::~WatchService() = default;

grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>*
WatchService::Watch(grpc::CallbackServerContext* c) {
  std::shared_ptr<WatchStream> stream;
  {
    std::lock_guard lock(mu_);
    const uint64_t id = next_id_++;
    stream = std::make_shared<WatchStream>(*this, id, *c);
    streams_.emplace(id, stream);
    ctx_.node->metrics().watch_streams.fetch_add(1, std::memory_order_relaxed);
  }
  stream->start(stream);
  return stream.get();
}

void WatchService::forget(uint64_t id) {
  std::lock_guard lock(mu_);
  if (streams_.erase(id) > 0)
    ctx_.node->metrics().watch_streams.fetch_sub(1, std::memory_order_relaxed);
}

uint64_t WatchService::open_internal(InternalSink sink) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  internal_.emplace(id, std::make_shared<InternalSink>(std::move(sink)));
  return id;
}

void WatchService::close_internal(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    if (internal_.erase(id) == 0) return;
  }
  ctx_.node->watch_closed(id);
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
std::vector<etcdserverpb::WatchResponse> fragments(etcdserverpb::WatchResponse&& whole,
                                                   size_t limit) {
  std::vector<etcdserverpb::WatchResponse> out;
  if (whole.ByteSizeLong() < limit || whole.events_size() < 2) {
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
    if (piece.events_size() > 0 && piece.ByteSizeLong() + size >= limit) {
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
  const uint64_t term = ctx_.node->status().term.value;  // once per batch, not per event
  for (kv::WatchOutput& o : out) {
    ctx_.fill_header(o.response.mutable_header(), o.response.header().revision(), term);
    auto& dst = by_stream[o.stream];
    if (o.fragment) {
      for (auto& piece : fragments(std::move(o.response), ctx_.config.raw.max_request_bytes))
        dst.push_back(std::move(piece));
    } else {
      dst.push_back(std::move(o.response));
    }
  }
  for (auto& [id, responses] : by_stream) {
    std::shared_ptr<WatchStream> stream;
    std::shared_ptr<InternalSink> sink;
    {
      std::lock_guard lock(mu_);
      if (auto it = streams_.find(id); it != streams_.end()) {
        stream = it->second;
      } else if (auto in = internal_.find(id); in != internal_.end()) {
        sink = in->second;
      }
    }
    if (stream) stream->send(std::move(responses));
    if (sink) {
      for (auto& r : responses) (*sink)(std::move(r));
    }
  }
}

}  // namespace synod::server
