// A simulated client's request and its answer, and the log entry it becomes: the server's own
// format, a serialized synodpb::Request (put -> PutRequest, cas -> TxnRequest), whose id names
// the request by (client, seq).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace synod::sim {

enum class KvOp : uint8_t { kGet = 0, kPut = 1, kCas = 2 };

struct KvCommand {
  uint32_t client = 0;
  uint64_t seq = 0;  // per-client request number, from 1; (client, seq) names a request
  KvOp op = KvOp::kPut;
  std::string key;
  std::string value;     // put: value; cas: new value
  std::string expected;  // cas: compared value

  // The serialized synodpb::Request for a put or cas, with id request_id(client, seq):
  //  - put: PutRequest{key, value}.
  //  - cas: TxnRequest{compare: VALUE(key) == expected; success: Put{key, value}}. As in
  //    etcd's applyCompare, a VALUE compare on a missing key fails, so a cas never succeeds on
  //    an absent key, whatever `expected` is (also "": that is the empty value, not absence).
  //    This is the checker's model too (src/check: absent differs from every value).
  // Precondition: op is kPut or kCas (gets are served by ReadIndex, outside the log).
  std::string encode() const;
};

// The serialized synodpb::Request for an MVCC compaction at `revision` (etcd's Compact), id 0:
// the simulator's auto-compaction, not a client's request.
std::string encode_compaction(int64_t revision);

struct KvResult {
  std::optional<std::string> value;  // get: value read (nullopt = absent)
  bool cas_succeeded = false;
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
