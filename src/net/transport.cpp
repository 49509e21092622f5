#include "net/transport.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "net/raft_codec.h"
#include "synodpb/peer.grpc.pb.h"

namespace synod::net {

using namespace std::chrono_literals;

class Transport::Peer {
 public:
  Peer(raft::NodeId self, raft::NodeId id, uint64_t cluster_id, std::string address)
      : self_(self), id_(id), cluster_id_(cluster_id), address_(std::move(address)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Peer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (context_) context_->TryCancel();
    }
    cv_.notify_all();
    thread_.join();
  }

  void set_address(const std::string& address) {
    std::lock_guard lock(mu_);
    if (address == address_) return;
    address_ = address;
    address_changed_ = true;
    if (context_) context_->TryCancel();
  }

  void enqueue(raft::Message&& m) {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= kMaxQueuedMessages) {
        ++dropped_;
        return;
      }
      queue_.push_back(std::move(m));
    }
    cv_.notify_one();
  }

 private:
  struct Stream {
    std::unique_ptr<synodpb::Peer::Stub> stub;
    std::unique_ptr<grpc::ClientContext> context;
    synodpb::StreamAck ack;
    std::unique_ptr<grpc::ClientWriter<synodpb::RaftBatch>> writer;
  };

  void run() {
    std::chrono::milliseconds backoff = 50ms;
    std::shared_ptr<grpc::Channel> channel;
    std::string channel_address;
    while (true) {
      std::vector<raft::Message> batch;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        size_t bytes = 0;
        while (!queue_.empty() && (batch.empty() || bytes < kMaxFrameBytes)) {
          bytes += queue_.front().byte_size();
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        if (address_changed_ || !channel) {
          address_changed_ = false;
          channel_address = address_;
          channel.reset();
        }
      }
      if (!channel) {
        grpc::ChannelArguments args;
        args.SetMaxSendMessageSize(64 << 20);
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
        channel =
            grpc::CreateCustomChannel(channel_address, grpc::InsecureChannelCredentials(), args);
        stream_.reset();
      }
      if (!stream_ && !open(channel)) {
        sleep_backoff(backoff);
        continue;
      }
      if (!write(batch)) {
        close();
        sleep_backoff(backoff);
        continue;
      }
      backoff = 50ms;
    }
  }

  bool open(const std::shared_ptr<grpc::Channel>& channel) {
    auto s = std::make_unique<Stream>();
    s->stub = synodpb::Peer::NewStub(channel);
    s->context = std::make_unique<grpc::ClientContext>();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      context_ = s->context.get();
    }
    s->writer = s->stub->Stream(s->context.get(), &s->ack);
    if (!s->writer) return false;
    stream_ = std::move(s);
    return true;
  }

  bool write(const std::vector<raft::Message>& batch) {
    synodpb::RaftBatch frame;
    frame.set_cluster_id(cluster_id_);
    frame.set_from(self_.value);
    for (const raft::Message& m : batch) encode(m, frame.add_messages());
    return stream_->writer->Write(frame);
  }

  void close() {
    if (!stream_) return;
    stream_->context->TryCancel();
    stream_->writer->Finish().ok();
    {
      std::lock_guard lock(mu_);
      context_ = nullptr;
    }
    stream_.reset();
  }

  void sleep_backoff(std::chrono::milliseconds& backoff) {
    std::unique_lock lock(mu_);
    // Messages that piled up while the peer was unreachable are stale; Raft resends.
    queue_.clear();
    cv_.wait_for(lock, backoff, [&] { return stopping_ || address_changed_; });
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1000ms);
  }

  raft::NodeId self_;
  raft::NodeId id_;
  uint64_t cluster_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<raft::Message> queue_;
  std::string address_;
  bool address_changed_ = false;
  bool stopping_ = false;
  grpc::ClientContext* context_ = nullptr;  // the open stream's, for cancellation
  uint64_t dropped_ = 0;
  std::unique_ptr<Stream> stream_;  // sender thread only
  std::thread thread_;
};

Transport::Transport(raft::NodeId self, uint64_t cluster_id)
    : self_(self), cluster_id_(cluster_id) {}

Transport::~Transport() {
  stop();
}

void Transport::set_peer(raft::NodeId id, const std::string& address) {
  std::lock_guard lock(mu_);
  if (stopped_ || id == self_) return;
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    it->second->set_address(address);
    return;
  }
  peers_.emplace(id, std::make_unique<Peer>(self_, id, cluster_id_, address));
}

void Transport::remove_peer(raft::NodeId id) {
  std::unique_ptr<Peer> peer;
  {
    std::lock_guard lock(mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    peer = std::move(it->second);
    peers_.erase(it);
  }
  // Joins the sender thread outside the lock.
}

bool Transport::has_peer(raft::NodeId id) const {
  std::lock_guard lock(mu_);
  return peers_.count(id) > 0;
}

void Transport::send(std::vector<raft::Message> messages) {
  std::lock_guard lock(mu_);
  for (raft::Message& m : messages) {
    auto it = peers_.find(m.to);
    if (it != peers_.end()) it->second->enqueue(std::move(m));
  }
}

void Transport::stop() {
  std::map<raft::NodeId, std::unique_ptr<Peer>> peers;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    peers.swap(peers_);
  }
}

}  // namespace synod::net
