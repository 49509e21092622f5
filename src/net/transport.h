// Peer transport: Raft messages to other members over gRPC client streams.
//
// One sender thread per peer keeps a stream open and writes, per frame, every message queued
// for that peer (batching). A broken stream is dropped and reopened with exponential backoff;
// messages queued meanwhile are kept up to a bound and the rest dropped — Raft tolerates loss
// and retransmits. Snapshots travel as the core's chunk messages, one or more per frame.
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
#include <thread>
#include <vector>

#include "core/raft/types.h"

namespace synod::net {

class Transport {
 public:
  Transport(raft::NodeId self, uint64_t cluster_id);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Adds a peer or changes its address ("host:port"); starts its sender.
  void set_peer(raft::NodeId id, const std::string& address);
  void remove_peer(raft::NodeId id);
  bool has_peer(raft::NodeId id) const;
  // Queues messages for their destinations; never blocks on the network. Messages to unknown
  // peers are dropped (the core retries once the peer is known).
  void send(std::vector<raft::Message> messages);
  // Stops every sender; queued messages are dropped.
  void stop();

  static constexpr size_t kMaxQueuedMessages = 8192;
  static constexpr size_t kMaxFrameBytes = 4 << 20;

 private:
  class Peer;
  raft::NodeId self_;
  uint64_t cluster_id_;
  mutable std::mutex mu_;
  std::map<raft::NodeId, std::unique_ptr<Peer>> peers_;
  bool stopped_ = false;
};

}  // namespace synod::net
