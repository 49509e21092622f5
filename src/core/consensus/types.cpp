#include "core/consensus/types.h"

namespace synod::raft {

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
