// PBFT's messages (TOCS 4.2-4.5, OSDI 4) and their byte encoding. A replica's message travels
// in the engines' common envelope (raft::Message of type kPbft) with its encoding in `payload`:
// the body, then a MAC for the receiver under the key the two replicas share (TOCS 4.1). View
// changes are signed too, because a new view forwards them to every backup; a MAC would convince
// only the replica it was made for.
//
// Decoding never trusts its input: every count and length is bounded, and a message that does
// not decode, or whose MAC or signature does not check, is dropped by the caller and counted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/consensus/types.h"
#include "core/pbft/crypto.h"

namespace synod::pbft {

using raft::Index;
using raft::NodeId;
using View = raft::Term;

// Bounds on what a decoder accepts.
inline constexpr uint64_t kMaxOpBytes = 8 << 20;
inline constexpr uint32_t kMaxBatch = 4096;      // requests in one pre-prepare
inline constexpr uint32_t kMaxClaims = 1 << 16;  // entries in a view change's sets
inline constexpr uint32_t kMaxReplicas = 1024;   // MACs in an authenticator, proofs in a new view

// A client's operation (TOCS 4.2: <REQUEST, o, t, c>). The null request (all zero, empty op)
// fills a sequence number a new view assigns nothing to (TOCS 4.5.2).
struct Request {
  PublicKey client{};  // the client's X25519 public key: its identity
  uint64_t timestamp = 0;
  std::string op;

  bool operator==(const Request&) const = default;
  bool is_null() const;
};

Digest digest(const Request& r);
const Digest& null_digest();

// A request with its authenticator: one MAC per replica (TOCS 4.1).
struct AuthenticatedRequest {
  Request request;
  std::vector<std::pair<uint64_t, Mac>> macs;

  bool operator==(const AuthenticatedRequest&) const = default;
  const Mac* mac_for(uint64_t replica) const;
};

// The bytes a client's MACs cover.
std::string request_auth_bytes(const Request& r);
// A client's request as a client submits it (Engine::propose): the first byte is 0xFF, which
// no protobuf message (a server's own command) starts with.
std::string encode_client_request(const AuthenticatedRequest& r);
std::optional<AuthenticatedRequest> decode_client_request(std::string_view bytes);
bool is_client_request(std::string_view bytes);
// The bytes a replica's reply MAC covers (TOCS 4.1: <REPLY, v, t, c, i, r> MAC'd for c): the
// replica, the request's timestamp and the result.
std::string reply_auth_bytes(uint64_t replica, uint64_t timestamp, std::string_view result);

// One replica's claim about one sequence number in a view change: request `digest` prepared
// (set P) or pre-prepared (set Q) at `seq` in `view` (TOCS 4.5.1).
struct Claim {
  Index seq;
  Digest digest{};
  View view;

  bool operator==(const Claim&) const = default;
};

// <VIEW-CHANGE, v+1, h, C, P, Q, i> signed by i (TOCS 4.5.1).
struct ViewChange {
  View view;  // the view being moved to
  NodeId replica;
  Index stable;                                       // h: the replica's stable checkpoint
  std::vector<std::pair<Index, Digest>> checkpoints;  // C: checkpoints it holds, from h on
  std::vector<Claim> prepared;                        // P: the newest prepared claim per seq
  std::vector<Claim> preprepared;                     // Q: pre-prepared claims per seq
  Signature signature{};

  bool operator==(const ViewChange&) const = default;
};

// What a new view decides (TOCS 4.5.2): the checkpoint it starts from and a request (maybe
// null) for every sequence number after it, up to the last one with a choice.
struct NewViewDecision {
  Index checkpoint;
  Digest checkpoint_digest{};
  std::vector<std::pair<Index, Digest>> chosen;  // consecutive from checkpoint + 1

  bool operator==(const NewViewDecision&) const = default;
};

// <NEW-VIEW, v+1, V, X> signed by the new primary: the view changes it decided from, and the
// decision, with the body of every chosen request (so no backup has to fetch one).
struct NewView {
  View view;
  NodeId primary;
  std::vector<ViewChange> proofs;
  NewViewDecision decision;
  std::vector<AuthenticatedRequest> bodies;  // one per chosen digest that is not null, in order
  Signature signature{};

  bool operator==(const NewView&) const = default;
};

enum class Kind : uint8_t {
  kRequest = 1,  // a client's request, forwarded by a backup to the primary (TOCS 4.2)
  kPrePrepare,   // the primary assigns a run of sequence numbers to a batch (TOCS 4.2, 5.1.4)
  kPrepare,      // a backup accepted the pre-prepare of a run
  kCommit,       // the sender holds the run prepared
  kCheckpoint,   // the sender executed through seq; the digest of that sequence (TOCS 4.3)
  kViewChange,
  kNewView,
  kStatus,    // the sender's view and progress; peers answer with what it lacks (TOCS 5.2)
  kFetch,     // asks for the bodies of requests by sequence number
  kBodies,    // requests by sequence number, with the view they were ordered in
  kSnapshot,  // the sender's log starts at its snapshot `seq` (chain digest `digest`):
              // a replica behind it installs the snapshot (`data`: its state reference)
  kState,     // the sender retained its state at `seq`, whose digest is `digest`
};
inline constexpr Kind kLastKind = Kind::kState;
const char* to_string(Kind k);

// A body sent in answer to a Status or a Fetch: the request at `seq` as the sender's log holds
// it. Its digest is checked against a certificate before anything uses it.
struct Body {
  Index seq;
  View view;
  AuthenticatedRequest request;

  bool operator==(const Body&) const = default;
};

// A replica-to-replica message. Fields are used by kind as the comments say; the rest stay zero.
struct Msg {
  Kind kind = Kind::kStatus;
  View view;  // the sender's view (kViewChange: the view moved to)
  NodeId sender;
  Index seq;              // PrePrepare/Prepare/Commit: the run's first; Checkpoint, Snapshot: its
                          // seq; Status: the last executed
  uint32_t count = 0;     // Prepare/Commit: the run's length; Status: bodies held past seq
  Digest digest{};        // Prepare/Commit: the run's digest; Checkpoint, Snapshot: the chain's
  Index stable;           // Status: the sender's stable checkpoint
  bool changing = false;  // Status: the sender waits for a new view
  std::vector<AuthenticatedRequest> requests;  // Request (one), PrePrepare (the batch)
  std::vector<Body> bodies;                    // Bodies
  std::vector<Index> wanted;                   // Fetch
  std::string data;                            // Snapshot
  std::optional<ViewChange> view_change;
  std::optional<NewView> new_view;

  bool operator==(const Msg&) const = default;
};

// The digest of a run of requests at consecutive sequence numbers from `first`.
Digest run_digest(Index first, const std::vector<Digest>& digests);
// The checkpoint digest after executing `d` at `seq` on a history whose digest was `previous`.
Digest chain(const Digest& previous, Index seq, const Digest& d);

// The bytes a view change's signature covers (everything but the signature).
std::string view_change_bytes(const ViewChange& vc);
std::string new_view_bytes(const NewView& nv);

// Encodes `m` for `to`: the body and a MAC under the pair's key.
std::string seal(const Msg& m, const Keyring& keys, NodeId to);
// Decodes a payload that came from replica `from`: nullopt (and why) if it does not decode, is
// not from `from`, or its MAC does not check. Signatures inside are checked by the caller.
std::optional<Msg> open(std::string_view payload, const Keyring& keys, NodeId from,
                        std::string* why, bool check_macs = true);

// Log records: what a replica persists about one sequence number (the entry's term is the view
// it was last pre-prepared in). Survives a crash so that a replica that restarts still knows
// what it promised: what it pre-prepared (its prepares), what it prepared (its commits).
struct SlotRecord {
  AuthenticatedRequest request;
  bool prepared = false;                   // prepared in the entry's view
  std::optional<Claim> earlier_prepared;   // the newest prepared claim from an earlier view
  std::vector<Claim> earlier_preprepared;  // other digests pre-prepared in earlier views
  // A slot this replica never executed: a snapshot through `installed_through` (chain digest
  // `installed_digest`) is being installed. Written before the state is fetched, so that a
  // crash between the state's restore and the snapshot's record never leaves slots that were
  // not executed looking executed.
  std::optional<Index> installed_through;
  Digest installed_digest{};
  // The bodies of the requests the earlier claims name (not null): a new view may choose one of
  // them, and its primary must then send the body (thesis 3.2.4, A3), after a restart too.
  std::vector<AuthenticatedRequest> earlier_bodies;

  bool operator==(const SlotRecord&) const = default;
};
std::string encode_record(const SlotRecord& r);
std::optional<SlotRecord> decode_record(std::string_view bytes);

}  // namespace synod::pbft
