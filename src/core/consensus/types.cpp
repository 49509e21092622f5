#include "core/consensus/types.h"

#include <cassert>

namespace synod::raft {

std::string encode_client_op(const ClientOp& c) {
  assert(c.client.size() <= 255);
  std::string out;
  out.reserve(1 + c.client.size() + 8 + c.op.size());
  out.push_back(static_cast<char>(c.client.size()));
  out += c.client;
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((c.timestamp >> shift) & 0xFF));
  }
  out += c.op;
  return out;
}

std::optional<ClientOp> decode_client_op(std::string_view data) {
  if (data.empty()) return std::nullopt;
  const size_t client_size = static_cast<uint8_t>(data[0]);
  if (data.size() < 1 + client_size + 8) return std::nullopt;
  ClientOp c;
  c.client = std::string(data.substr(1, client_size));
  for (size_t i = 0; i < 8; ++i) {
    c.timestamp = (c.timestamp << 8) | static_cast<uint8_t>(data[1 + client_size + i]);
  }
  c.op = std::string(data.substr(1 + client_size + 8));
  return c;
}

const char* to_string(MessageType t) {
  switch (t) {
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResp:
      return "PreVoteResp";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResp:
      return "VoteResp";
    case MessageType::kAppend:
      return "Append";
    case MessageType::kAppendResp:
      return "AppendResp";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResp:
      return "HeartbeatResp";
    case MessageType::kSnapshot:
      return "Snapshot";
    case MessageType::kSnapshotResp:
      return "SnapshotResp";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kForwardPropose:
      return "ForwardPropose";
    case MessageType::kForwardRead:
      return "ForwardRead";
    case MessageType::kForwardReadResp:
      return "ForwardReadResp";
    case MessageType::kPrepare:
      return "Prepare";
    case MessageType::kPromise:
      return "Promise";
    case MessageType::kAccept:
      return "Accept";
    case MessageType::kAccepted:
      return "Accepted";
    case MessageType::kCommit:
      return "Commit";
    case MessageType::kCommitResp:
      return "CommitResp";
    case MessageType::kPbft:
      return "Pbft";
    case MessageType::kForwardRequest:
      return "ForwardRequest";
  }
  return "?";
}

const char* to_string(Role r) {
  switch (r) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

uint64_t Message::byte_size() const {
  uint64_t n = 64 + snapshot_chunk.size() + payload.size();
  for (const Entry& e : entries) n += 24 + e.data.size();
  return n;
}

}  // namespace synod::raft
