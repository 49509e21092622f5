// What every consensus engine is configured with: its identity and membership at start, its
// timers (in ticks), its read mode and its replication windows. Each engine's Config extends it
// with the bugs its tests can plant.
#pragma once

#include <cstdint>

#include "core/consensus/types.h"

namespace synod::raft {

enum class ReadMode : uint8_t {
  kReadIndex,  // thesis 6.4: confirm leadership with a heartbeat round (default)
  kLease,      // thesis 6.4.1: serve from a leader lease; assumes bounded clock drift
};

struct EngineConfig {
  NodeId id;
  uint64_t seed = 1;  // randomized election timeouts draw from this
  // Membership for a fresh node (no snapshot, no log). Every founding member passes the same
  // list; a node that joins later passes an empty one and learns its membership from the leader.
  ConfState initial_conf;
  Index applied;  // last index the state machine already holds (e.g. from a snapshot)

  uint32_t election_ticks = 10;  // a follower campaigns after [election, 2*election) ticks
  uint32_t heartbeat_ticks = 1;
  bool pre_vote = true;      // thesis 9.6 (Multi-Paxos: a pre-prepare)
  bool check_quorum = true;  // thesis 6.2: a leader without a quorum steps down
  ReadMode read_mode = ReadMode::kReadIndex;
  // Lease reads assume no clock runs faster than another by more than this many ticks per
  // election timeout; the lease is (election_ticks - lease_drift_ticks) from the send of the
  // heartbeat a quorum acknowledged.
  uint32_t lease_drift_ticks = 2;

  uint32_t max_inflight_msgs = 64;           // pipelining window per follower, in messages
  uint64_t max_inflight_bytes = 1 << 20;     // and in bytes
  uint64_t max_msg_bytes = 64 << 10;         // entries per Append message, in bytes
  uint64_t snapshot_chunk_bytes = 64 << 10;  // InstallSnapshot chunk size
  bool forward_proposals = true;             // followers forward proposals to the leader
  // Multi-Paxos: a leader proposes at most this many slots past its chosen index; further
  // proposals are refused with kNotReady until some are chosen. It bounds what a new leader
  // must propose again. (Raft ignores it.)
  uint64_t max_open_slots = 4096;
};

}  // namespace synod::raft
