// A simulated client's request and its answer, and the log entry it becomes: the server's own
// format, a serialized synodpb::Request (put -> PutRequest, cas -> TxnRequest, a recipe
// client's proposal as it built it), whose id names the request by (client, seq).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "etcdserverpb/rpc.pb.h"
#include "synodpb/request.pb.h"

namespace synod::sim {

// kGet, kPut, kCas: the register workload. The rest serve the recipe clients (lock, semaphore):
// kPropose any synodpb::Request through the log, kRange a linearizable Range (ReadIndex),
// kKeepAlive a lease renewal the leader answers without the log.
enum class KvOp : uint8_t {
  kGet = 0,
  kPut = 1,
  kCas = 2,
  kPropose = 3,
  kRange = 4,
  kKeepAlive = 5
};

struct KvCommand {
  uint32_t client = 0;
  uint64_t seq = 0;  // per-client request number, from 1; (client, seq) names a request
  KvOp op = KvOp::kPut;
  std::string key;
  std::string value;                 // put: value; cas: new value
  std::string expected;              // cas: compared value
  synodpb::Request proposal;         // kPropose (its id is set by encode)
  etcdserverpb::RangeRequest range;  // kRange
  int64_t lease = 0;                 // kKeepAlive
  int group = -1;                    // sharded: the group to send to (-1: the key's, or group 0)

  // The serialized synodpb::Request for a put or cas, with id request_id(client, seq):
  //  - put: PutRequest{key, value}.
  //  - cas: TxnRequest{compare: VALUE(key) == expected; success: Put{key, value}}. As in
  //    etcd's applyCompare, a VALUE compare on a missing key fails, so a cas never succeeds on
  //    an absent key, whatever `expected` is (also "": that is the empty value, not absence).
  //    This is the checker's model too (src/check: absent differs from every value).
  //  - propose: `proposal` with that id.
  // Precondition: op is kPut, kCas or kPropose (reads and keep-alives stay outside the log).
  std::string encode() const;
};

// The serialized synodpb::Request for an MVCC compaction at `revision` (etcd's Compact), id 0:
// the simulator's auto-compaction, not a client's request.
std::string encode_compaction(int64_t revision);

struct KvResult {
  std::optional<std::string> value;  // get: value read (nullopt = absent)
  bool cas_succeeded = false;
  std::optional<std::string> error;  // the store refused the request (its message)
  int64_t revision = 0;              // header revision of a write's response
  std::shared_ptr<const etcdserverpb::TxnResponse> txn;      // a txn's response
  std::shared_ptr<const etcdserverpb::RangeResponse> range;  // kRange
  int64_t ttl = 0;  // kKeepAlive: the renewed TTL, 0 for a lease that is gone
  // A cross-shard transaction's step (kv::TxnVote of a prepare; kv::TxnDecided of a decide or
  // a resolve, whose branch's responses are in `txn`).
  struct TxnStep {
    bool prepared = false;
    bool compares_hold = false;
    bool commit = false;
    bool succeeded = false;
  };
  std::optional<TxnStep> txn_step;
  // The newest consistent cut the group had recorded once the request applied (kv::Store).
  uint64_t cut_epoch = 0;

  // The responses, or empty ones when there are none.
  const etcdserverpb::TxnResponse& txn_response() const;
  const etcdserverpb::RangeResponse& range_response() const;
};

// synodpb::Request.id of a simulated request: client in the top 24 bits, seq in the low 40.
struct RequestId {
  uint32_t client = 0;
  uint64_t seq = 0;

  static constexpr int kSeqBits = 40;
  static constexpr uint64_t kMaxClient = (uint64_t{1} << (64 - kSeqBits)) - 1;
  static constexpr uint64_t kMaxSeq = (uint64_t{1} << kSeqBits) - 1;

  // Precondition: client <= kMaxClient, 1 <= seq <= kMaxSeq.
  uint64_t pack() const;
  // nullopt for ids no simulated client makes (seq 0).
  static std::optional<RequestId> unpack(uint64_t id);
};

}  // namespace synod::sim
