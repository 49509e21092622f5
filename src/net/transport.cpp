#include "net/transport.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "net/raft_codec.h"
#include "synodpb/peer.grpc.pb.h"

namespace synod::net {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::chrono::milliseconds kFirstBackoff = 50ms;
constexpr std::chrono::milliseconds kMaxBackoff = 250ms;
}  // namespace

class Transport::Peer {
 public:
  Peer(raft::NodeId self, raft::NodeId id, uint64_t cluster_id, std::string engine,
       std::shared_ptr<grpc::ChannelCredentials> credentials, std::string address)
      : self_(self),
        id_(id),
        cluster_id_(cluster_id),
        engine_(std::move(engine)),
        credentials_(std::move(credentials)),
        address_(std::move(address)) {}

  // Waits until gRPC is done with the stream (OnDone), so no reaction runs on a destroyed peer.
  ~Peer() {
    cancel();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return call_ == nullptr; });
  }

  // Stops sending for good and cancels the open stream; does not wait.
  void cancel() {
    Call* release = nullptr;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      queue_.clear();
      release = close_locked();
    }
    if (release != nullptr) release->RemoveHold();
  }

  void set_address(const std::string& address) {
    Call* release = nullptr;
    {
      std::lock_guard lock(mu_);
      if (address == address_) return;
      address_ = address;
      channel_.reset();
      next_attempt_ = Clock::time_point{};
      release = close_locked();
    }
    if (release != nullptr) release->RemoveHold();
  }

  // Queues the messages; starts a write unless `hold` (Transport::cork).
  void send(uint32_t group, std::vector<raft::Message>&& messages, bool hold) {
    Call* start_call = nullptr;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      if (call_ == nullptr) {
        // Reconnecting is driven by sends (Raft's heartbeats keep them coming); inside the
        // backoff the messages are dropped, as they would be lost on the broken stream anyway.
        if (Clock::now() < next_attempt_) return;
        start_call = open_locked();
      }
      for (raft::Message& m : messages) {
        if (queue_.size() >= kMaxQueuedMessages) {
          ++dropped_;
          continue;
        }
        queue_.push_back(Queued{group, std::move(m)});
      }
    }
    if (!hold) flush();
    if (start_call != nullptr) start_call->StartCall();
  }

  // Starts a write of what is queued, unless one is in flight (its completion takes it).
  void flush() {
    Call* start_write = nullptr;
    std::vector<Queued> batch;
    {
      std::lock_guard lock(mu_);
      if (call_ == nullptr || writing_ || call_->closed || queue_.empty()) return;
      writing_ = true;
      start_write = call_;
      take_batch_locked(&batch);
    }
    // gRPC calls outside the lock: a reaction may run before they return. The call cannot end
    // meanwhile: its hold is removed only once no write is in flight or about to start.
    fill(start_write, batch);
    start_write->StartWrite(&start_write->frame);
  }

 private:
  struct Call final : public grpc::ClientWriteReactor<synodpb::RaftBatch> {
    explicit Call(Peer& p) : peer(p) {}
    void OnWriteDone(bool ok) override { peer.write_done(this, ok); }
    void OnDone(const grpc::Status& status) override {
      peer.call_done(this, status);
      delete this;
    }

    Peer& peer;
    std::shared_ptr<grpc::Channel> channel;  // outlives the call
    grpc::ClientContext context;
    synodpb::StreamAck ack;
    synodpb::RaftBatch frame;  // the write in flight
    // Writes are started from send(), outside gRPC's reactions, so each call holds itself
    // open (AddHold before StartCall): gRPC runs OnDone, and deletes it, only after the hold
    // is removed. Under the peer's mutex:
    bool closed = false;  // broken or cancelled: no write starts on it any more
    bool held = true;     // the hold is not yet removed
  };

  // Marks the open call closed and cancels it; returns it if its hold is to be removed now
  // (outside the lock: that may run OnDone), which is when no write is in flight. Otherwise
  // the write's completion removes it.
  Call* close_locked() {
    if (call_ == nullptr) return nullptr;
    call_->context.TryCancel();
    call_->closed = true;
    return writing_ ? nullptr : release_locked(call_);
  }

  // The call if its hold is still to be removed (once), else nullptr.
  static Call* release_locked(Call* call) {
    if (!call->held) return nullptr;
    call->held = false;
    return call;
  }

  Call* open_locked() {
    if (!channel_) {
      grpc::ChannelArguments args;
      args.SetMaxSendMessageSize(64 << 20);
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
      channel_ = grpc::CreateCustomChannel(address_, credentials_, args);
      stub_ = synodpb::Peer::NewStub(channel_);
    }
    auto* call = new Call(*this);
    call->channel = channel_;
    stub_->async()->Stream(&call->context, &call->ack, call);
    call->AddHold();
    call_ = call;
    writing_ = false;
    return call;
  }

  struct Queued {
    uint32_t group;
    raft::Message message;
  };

  // Moves up to kMaxFrameBytes of queued messages (at least one) into batch.
  void take_batch_locked(std::vector<Queued>* batch) {
    size_t bytes = 0;
    while (!queue_.empty() && (batch->empty() || bytes < kMaxFrameBytes)) {
      bytes += queue_.front().message.byte_size();
      batch->push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }

  // The frame names the first message's group (0 if any message is group 0's); a message of
  // another group names its own.
  void fill(Call* call, const std::vector<Queued>& batch) const {
    call->frame.Clear();
    call->frame.set_cluster_id(cluster_id_);
    if (engine_ != "raft") call->frame.set_engine(engine_);  // empty means raft
    uint32_t frame_group = batch.front().group;
    for (const Queued& q : batch) {
      if (q.group == 0) frame_group = 0;
    }
    call->frame.set_group(frame_group);
    call->frame.set_from(self_.value);
    for (const Queued& q : batch) {
      synodpb::RaftMessage* pm = call->frame.add_messages();
      encode(q.message, pm);
      if (q.group != frame_group) pm->set_group(q.group);
    }
  }

  void write_done(Call* call, bool ok) {
    std::vector<Queued> batch;
    Call* release = nullptr;
    {
      std::lock_guard lock(mu_);
      // A failed write means the stream is broken; OnDone follows (once the hold is removed)
      // and clears it. writing_ stays set so nothing else is written on it.
      if (!ok) call->closed = true;
      if (call->closed) {
        release = release_locked(call);
      } else {
        backoff_ = kFirstBackoff;
        if (queue_.empty()) {
          writing_ = false;
        } else {
          take_batch_locked(&batch);
        }
      }
    }
    if (release != nullptr) {
      release->RemoveHold();
      return;
    }
    if (batch.empty()) return;
    fill(call, batch);
    call->StartWrite(&call->frame);
  }

  void call_done(Call* call, const grpc::Status& status) {
    std::lock_guard lock(mu_);
    if (call != call_) return;
    call_ = nullptr;
    writing_ = false;
    queue_.clear();  // stale by the time a new stream is up; Raft resends
    next_attempt_ = Clock::now() + backoff_;
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, kMaxBackoff);
    if (!stopping_) {
      spdlog::debug("transport: stream to {:x} at {} ended: {}", id_.value, address_,
                    status.error_message());
    }
    cv_.notify_all();
  }

  raft::NodeId self_;
  raft::NodeId id_;
  uint64_t cluster_id_;
  std::string engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::string address_;
  bool stopping_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<synodpb::Peer::Stub> stub_;
  Call* call_ = nullptr;  // the open stream; deleted by gRPC after OnDone
  bool writing_ = false;  // a StartWrite on call_ is in flight
  Clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  uint64_t dropped_ = 0;
};

Transport::Transport(raft::NodeId self, uint64_t cluster_id, std::string engine,
                     std::shared_ptr<grpc::ChannelCredentials> credentials, uint32_t group)
    : self_(self),
      cluster_id_(cluster_id),
      engine_(std::move(engine)),
      group_(group),
      credentials_(credentials ? std::move(credentials) : grpc::InsecureChannelCredentials()) {}

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
  peers_.emplace(id,
                 std::make_unique<Peer>(self_, id, cluster_id_, engine_, credentials_, address));
}

void Transport::remove_peer(raft::NodeId id) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  // Called on the Raft driver, which must not wait for gRPC: the stream is cancelled now and
  // its end waited for in stop().
  it->second->cancel();
  retired_.push_back(std::move(it->second));
  peers_.erase(it);
}

bool Transport::has_peer(raft::NodeId id) const {
  std::lock_guard lock(mu_);
  return peers_.count(id) > 0;
}

void Transport::send(uint32_t group, std::vector<raft::Message> messages) {
  // One queue operation per destination, not per message.
  std::map<raft::NodeId, std::vector<raft::Message>> by_peer;
  for (raft::Message& m : messages) by_peer[m.to].push_back(std::move(m));
  std::lock_guard lock(mu_);
  for (auto& [to, batch] : by_peer) {
    auto it = peers_.find(to);
    if (it != peers_.end()) it->second->send(group, std::move(batch), corked_);
  }
}

void Transport::cork() {
  std::lock_guard lock(mu_);
  corked_ = true;
}

void Transport::uncork() {
  std::lock_guard lock(mu_);
  corked_ = false;
  for (auto& [id, peer] : peers_) peer->flush();
}

void Transport::stop() {
  std::map<raft::NodeId, std::unique_ptr<Peer>> peers;
  std::vector<std::unique_ptr<Peer>> retired;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    peers.swap(peers_);
    retired.swap(retired_);
  }
  // The destructors wait for the streams to end, outside the lock.
}

}  // namespace synod::net
