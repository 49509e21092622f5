// Value types of the consensus engines (src/core/engine.h): strong ids, log entries, messages,
// and the Ready batch. Raft's vocabulary, which every engine speaks: its log is a sequence of
// entries, its durable promise a hard state, its messages travel in the same envelope. Kept
// apart from any one engine so that no engine includes another.
//
// Everything here is a plain value: no I/O, no clocks, no threads. The same types are used by
// the server runtime and by the simulator, which is what lets the simulator prove the code
// that production runs.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace synod::raft {

// A tagged integer: a Term cannot be passed where an Index is expected.
template <typename Tag>
struct Tagged {
  uint64_t value = 0;
  constexpr Tagged() = default;
  constexpr explicit Tagged(uint64_t v) : value(v) {}
  constexpr auto operator<=>(const Tagged&) const = default;
  constexpr Tagged operator+(uint64_t n) const { return Tagged(value + n); }
  constexpr Tagged operator-(uint64_t n) const { return Tagged(value - n); }
  constexpr uint64_t operator-(Tagged other) const { return value - other.value; }
  Tagged& operator++() {
    ++value;
    return *this;
  }
  friend std::ostream& operator<<(std::ostream& os, Tagged t) { return os << t.value; }
};

struct TermTag {};
struct IndexTag {};
struct NodeIdTag {};
using Term = Tagged<TermTag>;
using Index = Tagged<IndexTag>;
using NodeId = Tagged<NodeIdTag>;

inline constexpr NodeId kNoNode{0};

enum class EntryType : uint8_t {
  kNormal = 0,      // application command
  kConfChange = 1,  // data is an encoded ConfChange (see conf.h)
  // Handed to the state machine only, never logged or sent: data is an encoded ClientOp, an
  // operation an engine authenticated as its client's, to be applied at most once per (client,
  // timestamp) however often it is ordered (a Byzantine engine's committed entries).
  kClientOp = 2,
};

struct Entry {
  Term term;
  Index index;
  EntryType type = EntryType::kNormal;
  std::string data;  // empty data on a kNormal entry is the leader's no-op (thesis 6.4)

  bool operator==(const Entry&) const = default;
};

// A client's operation with the client's identity and timestamp (its request number, rising
// with each request). The state machine keeps each client's recent timestamps (kv::Store's
// sessions), so that a request ordered twice, replayed by a faulty replica or ordered again
// by a replica that did not know it had executed, takes effect once.
struct ClientOp {
  std::string client;  // the client's public key (at most 255 bytes)
  uint64_t timestamp = 0;
  std::string op;

  bool operator==(const ClientOp&) const = default;
};
std::string encode_client_op(const ClientOp& c);
// nullopt on malformed bytes.
std::optional<ClientOp> decode_client_op(std::string_view data);

// The durable vote and term (thesis 3.8: currentTerm and votedFor are persisted before any
// message that depends on them leaves), plus the commit index as a recovery hint.
struct HardState {
  Term term;
  NodeId vote = kNoNode;
  Index commit;

  bool operator==(const HardState&) const = default;
};

// The membership: voters count toward quorums, learners only receive the log.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;

  bool operator==(const ConfState&) const = default;
  bool is_voter(NodeId id) const;
  bool is_learner(NodeId id) const;
  bool contains(NodeId id) const { return is_voter(id) || is_learner(id); }
};

struct SnapshotMeta {
  Index index;  // last index covered by the snapshot
  // Raft: the term of the entry at `index`. Multi-Paxos: the round at which this node holds
  // the slot at `index` (0 if it does not): a log that holds (index, term) keeps its entries
  // past the snapshot, which for an acceptor are accepted values it must not forget.
  Term term;
  ConfState conf;
  // PBFT: the checkpoint digest of the history through `index` (empty for the other engines).
  std::string digest;

  bool operator==(const SnapshotMeta&) const = default;
};

struct Snapshot {
  SnapshotMeta meta;
  std::string data;  // opaque state-machine image

  bool operator==(const Snapshot&) const = default;
};

enum class MessageType : uint8_t {
  kPreVote,  // thesis 9.6: a trial election that does not disturb terms
  kPreVoteResp,
  kVote,  // RequestVote (thesis 3.4)
  kVoteResp,
  kAppend,  // AppendEntries with entries (thesis 3.5)
  kAppendResp,
  kHeartbeat,  // empty AppendEntries carrying commit and a ReadIndex context
  kHeartbeatResp,
  kSnapshot,         // one chunk of InstallSnapshot (thesis 5.3, figure 5.3)
  kSnapshotResp,     // acknowledges a chunk (or rejects a stale transfer)
  kTimeoutNow,       // leadership transfer (thesis 3.10)
  kForwardPropose,   // follower forwards client proposals to the leader
  kForwardRead,      // follower asks the leader for a read index (thesis 6.4.1)
  kForwardReadResp,  // leader answers the read index to the follower
  // Multi-Paxos (src/core/paxos). A refusal is the answer with `reject` set and the
  // acceptor's higher round in `term` (a Nack).
  kPrepare,     // phase 1a: a proposer asks for a promise for its round on every open slot
  kPromise,     // phase 1b: the promise, with the values accepted past the proposer's chosen index
  kAccept,      // phase 2a: values for a run of slots at the proposer's round
  kAccepted,    // phase 2b: the acceptor holds the run durably (log_index: its last slot)
  kCommit,      // the distinguished proposer's chosen index, heartbeat and read round
  kCommitResp,  // acknowledges a kCommit (echoes its read round and tick)
  // PBFT (src/core/pbft): the message, authenticated, travels in `payload`.
  kPbft,
  // Not an engine's: a member's client request (a synodpb.Request in `payload`) sent to the
  // member leading its group, whose host proposes it (a sharded cluster's data groups, where
  // the leader stamps each write with a timestamp). Hosts take it before the engine sees it.
  kForwardRequest,
};
inline constexpr MessageType kLastMessageType = MessageType::kForwardRequest;

const char* to_string(MessageType t);

struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from;
  NodeId to;
  Term term;  // sender's term; 0 for local/forwarded messages that carry no term meaning

  // Append / Vote / Snapshot fields.
  Index log_index;  // Append: index preceding `entries`; Vote: candidate's last index
  Term log_term;    // term at log_index
  Index commit;
  std::vector<Entry> entries;

  // Responses.
  bool reject = false;
  Index reject_hint;  // AppendResp on reject: follower's hint for fast backtracking (thesis 5.3)
  Term reject_hint_term;

  // Vote requests issued by a leadership transfer bypass leader stickiness (thesis 3.10).
  bool transfer = false;

  // ReadIndex: opaque request context echoed through heartbeats and responses.
  uint64_t context = 0;
  // Heartbeats: the leader's local tick at send, echoed back; lease reads count from it.
  uint64_t sent_tick = 0;

  // Snapshot chunks.
  SnapshotMeta snapshot_meta;
  uint64_t snapshot_offset = 0;
  uint64_t snapshot_total = 0;
  std::string snapshot_chunk;
  bool snapshot_done = false;  // last chunk

  // kPbft: the encoded PBFT message and its MAC.
  std::string payload;

  // Approximate size in bytes for flow control.
  uint64_t byte_size() const;
};

// A linearizable read is ready once the local state machine has applied `index`.
struct ReadState {
  uint64_t context = 0;
  Index index;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* to_string(Role r);

// Ready is the batch of work the core hands to its driver (the etcd-io/raft contract):
//   0. send `immediate_messages` at once: they promise no state of this node's, so they may
//      leave before (and overlap) the fsync of step 1 — a leader's Appends, heartbeats and
//      snapshot chunks (thesis 10.2.1; the leader counts itself toward a quorum only for what
//      advance() has reported durable);
//   1. persist `snapshot` (if any), then `entries` (appended after truncating any suffix that
//      starts at entries.front().index), then `hard_state`, and fsync;
//   2. only then send `messages` (votes, answers to a leader, vote requests: they promise
//      durable state);
//   3. apply `committed` in order (they are already durable on a quorum);
//   4. call Advance().
// Inputs (messages, ticks, proposals) may be stepped while a Ready is being persisted; the next
// Ready comes only after Advance(). src/replica/driver.h is the one driver that does this, for
// the server and the simulator alike.
struct Ready {
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;
  std::optional<Snapshot> snapshot;
  std::vector<Message> messages;
  std::vector<Message> immediate_messages;
  std::vector<Entry> committed;
  std::vector<ReadState> read_states;

  bool empty() const {
    return !hard_state && entries.empty() && !snapshot && messages.empty() &&
           immediate_messages.empty() && committed.empty() && read_states.empty();
  }
};

// State a node restarts from: what its driver made durable.
struct Persisted {
  HardState hard_state;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;  // contiguous, starting right after the snapshot (or at 1)
};

enum class Status : uint8_t {
  kOk,
  kForwarded,          // sent to the leader; the outcome shows up in this node's log if it lands
  kNoLeader,           // no known leader to forward to
  kNotLeader,          // forwarding disabled; leader() names the leader if known
  kTransferring,       // leadership transfer in progress; retry shortly
  kConfChangePending,  // another membership change is not yet committed
  kNotReady,           // leader has not yet committed an entry in its term (thesis 4.1 fix)
  kLearnerBehind,      // promoting a learner whose log is not caught up
  kInvalid,            // argument makes no sense (unknown node, already a member, ...)
};
const char* to_string(Status s);

struct ProposeResult {
  Status status = Status::kOk;
  Index index;  // where the entry was appended (kOk only)
  Term term;
};

}  // namespace synod::raft

template <typename Tag>
struct std::hash<synod::raft::Tagged<Tag>> {
  size_t operator()(synod::raft::Tagged<Tag> t) const noexcept {
    return std::hash<uint64_t>{}(t.value);
  }
};
