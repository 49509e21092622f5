// Peer transport: Raft messages to other members over gRPC client streams.
//
// Per peer, one client-streaming call (synodpb.Peer/Stream) driven by gRPC's callback API: no
// thread of its own. send() queues the messages and, if no write is in flight, starts one on the
// calling thread (the raft thread); each completed write starts the next with every message
// queued meanwhile in one frame (batching), so a busy peer gets large frames and an idle one
// gets a frame per Ready without any thread handoff. A broken stream is dropped; the next send
// after a backoff (50 ms doubling to 1 s) opens a new one. Messages queued on a broken stream
// are dropped, and a queue over kMaxQueuedMessages drops new ones — Raft tolerates loss and
// retransmits on its heartbeats, which also drive reconnection. Snapshots travel as the core's
// chunk messages, one or more per frame.
//
// One transport may carry several replication groups (a sharded member's data groups): each
// message is queued with its group, so the messages every group has for a peer share its stream
// and its frames; the heartbeats of groups that tick together travel in one frame.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/consensus/types.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace synod::net {

class Transport {
 public:
  // `engine` names the consensus engine this member runs; every frame carries it.
  // `credentials`: how to reach peers (null: plaintext; TLS with --peer-cert-file). `group`:
  // the replication group of messages sent without one (0: the member's own group).
  Transport(raft::NodeId self, uint64_t cluster_id, std::string engine = "raft",
            std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr, uint32_t group = 0);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Adds a peer or changes its address ("host:port").
  void set_peer(raft::NodeId id, const std::string& address);
  void remove_peer(raft::NodeId id);
  bool has_peer(raft::NodeId id) const;
  // Queues messages for their destinations; never blocks on the network. Messages to unknown
  // peers are dropped (the core retries once the peer is known).
  void send(std::vector<raft::Message> messages) { send(group_, std::move(messages)); }
  // The same for the messages of replication group `group`.
  void send(uint32_t group, std::vector<raft::Message> messages);
  // Between cork() and uncork() sends are queued and none written; uncork() writes what every
  // peer has queued, in as few frames as the frame size allows. For a caller that sends for
  // many groups in a row (a group loop's round).
  void cork();
  void uncork();
  // Cancels every stream and waits for them to end; queued messages are dropped. Not to be
  // called on a gRPC callback thread.
  void stop();

  static constexpr size_t kMaxQueuedMessages = 8192;
  static constexpr size_t kMaxFrameBytes = 4 << 20;

 private:
  class Peer;
  raft::NodeId self_;
  uint64_t cluster_id_;
  std::string engine_;
  uint32_t group_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  mutable std::mutex mu_;
  std::map<raft::NodeId, std::unique_ptr<Peer>> peers_;
  std::vector<std::unique_ptr<Peer>> retired_;  // removed; their streams end in stop()
  bool stopped_ = false;
  bool corked_ = false;
};

}  // namespace synod::net
