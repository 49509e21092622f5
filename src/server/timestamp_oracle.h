// A sharded cluster's timestamp oracle: the source of every data group's write revisions, so
// that revisions order writes across shards. It runs on the member leading the metadata group
// (group 0); other members ask it over the peer RPC Timestamps.
//
// Each request gets `count` consecutive timestamps above every timestamp handed out before it
// arrived: requests are answered in rounds, each after a ReadIndex barrier on the metadata group
// that confirms this member still leads it (a deposed leader answers none), from a counter kept
// in memory. The counter may run only up to a limit made durable in the metadata group (the key
// kLimitKey, raised a window at a time by an ordinary Put); a new leader starts from that limit,
// above anything a predecessor handed out. Timestamps are therefore global and monotonic but
// not dense: a leader change skips the rest of the window. (The design of Percolator's and
// TiDB's oracles; Peng and Dabek, OSDI '10, 2.3.)
//
// Thread-safety: every method may be called from any thread; `done` runs on a gRPC or raft
// thread and must not block.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/node.h"
#include "synodpb/peer.grpc.pb.h"

namespace synod::server {

class TimestampOracle {
 public:
  static constexpr const char* kLimitKey = "/synod/oracle/limit";
  static constexpr int64_t kWindow = 1'000'000;   // timestamps reserved per durable write
  static constexpr size_t kMaxWaiting = 100'000;  // requests queued for the next round

  // `metadata`: the member's own group. `peer_address(member)`: where a member's peer service
  // listens ("host:port"), if known.
  TimestampOracle(Node& metadata, uint64_t self,
                  std::function<std::optional<std::string>(uint64_t)> peer_address,
                  std::shared_ptr<grpc::ChannelCredentials> credentials);
  // Waits for the calls to other members still in flight.
  ~TimestampOracle();
  TimestampOracle(const TimestampOracle&) = delete;
  TimestampOracle& operator=(const TimestampOracle&) = delete;

  // `count` timestamps from the oracle, here or on the metadata group's leader; nullopt when
  // there is no leader or it cannot be reached.
  void allocate(uint32_t count, NodeOptions::TimestampDone done);
  // On the metadata group's leader (the Timestamps RPC): nullopt elsewhere.
  void allocate_here(uint32_t count, NodeOptions::TimestampDone done);

 private:
  struct Waiter {
    uint32_t count = 0;
    NodeOptions::TimestampDone done;
  };
  void start_round();  // mu_ held
  void confirmed(std::optional<Error> barrier);
  void hand_out(std::vector<Waiter> batch);
  void fail(std::vector<Waiter> batch);
  // A member that does not lead the metadata group asks the leader for its groups' timestamps
  // with one call at a time (the requests waiting meanwhile go in the next).
  void ask_leader(uint64_t leader, uint32_t count, NodeOptions::TimestampDone done);
  void send_asks(uint64_t leader);
  void asked(std::vector<Waiter> batch, int64_t first);  // first: 0 if the call failed

  Node& node_;
  const uint64_t self_;
  const std::function<std::optional<std::string>(uint64_t)> peer_address_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;

  std::mutex mu_;
  std::condition_variable idle_;
  bool in_round_ = false;
  std::vector<Waiter> waiting_;  // for the next round
  uint64_t term_ = 0;            // the metadata group's term the counter belongs to
  int64_t next_ = 0;             // 0: not known in this term (read the durable limit)
  int64_t limit_ = 0;            // durable: nothing at or past it has been handed out
  size_t calls_ = 0;             // to other members, in flight
  std::vector<Waiter> asking_;   // for the next call to the leader
  bool asking_in_flight_ = false;
  std::map<std::string, std::unique_ptr<synodpb::Peer::Stub>> stubs_;  // by address
};

}  // namespace synod::server
