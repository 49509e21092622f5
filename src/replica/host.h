// What a replica's host gives the one replica driver (driver.h): a disk for the log, a network
// to the other members, and the state machine. The server implements it with the WAL, gRPC and
// the RocksDB-backed store; the simulator with deterministic fakes of the same behaviour. That is
// the whole difference between the two: the Ready loop, snapshots, compaction and reads are the
// driver's, and so are proven by the simulator as production runs them.
//
// Every method is called on the driver's thread and returns without waiting on the network.
// Slow work (a state fetch, a store flush) is started here and reported back to the driver as
// an input.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/consensus/types.h"

namespace synod::replica {

class Host {
 public:
  virtual ~Host() = default;

  // --- The log's disk -----------------------------------------------------------------------
  // Appends `entries` (after dropping any suffix from entries.front().index) and records
  // `hard_state`. With `sync` both must be durable before the driver goes on: return true if
  // they are when this returns, or false and call Driver::persisted() once they are. Without
  // `sync` (nothing but the commit index changed: a recovery hint the leader repeats) the write
  // may ride along with the next sync, and the call returns true.
  virtual bool persist(const std::vector<raft::Entry>& entries,
                       const std::optional<raft::HardState>& hard_state, bool sync) = 0;
  // Records durably, before returning, that the log now starts after `snapshot`, whose payload
  // is a state reference (state_ref.h); the entries it covers may go.
  virtual void save_snapshot(const raft::Snapshot& snapshot) = 0;

  // --- The network --------------------------------------------------------------------------
  virtual void send(std::vector<raft::Message> messages) = 0;
  // Asks member `from` (the leader, or another member if that failed) for its state machine's
  // image at an applied index >= min_index; a member behind that index refuses. With
  // `retained`, the member serves the oldest state it retained (retain_state) at or past
  // min_index, and refuses if it kept none. The image and its applied index, or why there is
  // none, come back through Driver::state_fetched, never from inside this call.
  virtual void fetch_state(raft::NodeId from, uint64_t min_index, bool retained) = 0;

  // --- The state machine --------------------------------------------------------------------
  virtual uint64_t applied_index() const = 0;
  // Applies committed entries, in index order, each above applied_index() (membership entries
  // included). The host answers the clients waiting on them.
  virtual void apply(std::span<const raft::Entry> entries) = 0;
  // Replaces the state with `image`, fetched for the snapshot `meta`, and makes it durable.
  // Returns false, changing nothing, if the image does not restore.
  virtual bool restore(const raft::SnapshotMeta& meta, const std::string& image) = 0;
  // Keeps the state as it is now, applied through `index`, durably (a crash does not lose it
  // once Driver::state_retained reported it), for retained fetches: the newest
  // kRetainedStates of them. Its digest comes back through Driver::state_retained(index,
  // digest), never from inside this call. Called only when the engine's StateTrust has a
  // retain_interval.
  static constexpr size_t kRetainedStates = 4;
  virtual void retain_state(uint64_t index) { (void)index; }
  // The states an earlier process of this member retained, with their digests, oldest first.
  virtual std::vector<std::pair<uint64_t, std::string>> retained_states() const { return {}; }
  // The digest of a state image, as retain_state computes it: equal for equal states.
  virtual std::string image_digest(const std::string& image) const { return image; }
  // Makes the state durable through at least `applied`, off the driver's thread if that is
  // slow; Driver::state_flushed(applied) follows, never from inside this call.
  virtual void flush_state(uint64_t applied) = 0;

  // --- Operator's log -----------------------------------------------------------------------
  // Something an operator may want to know (a snapshot installed, a fetch that failed).
  virtual void note(const std::string& event) { (void)event; }
};

}  // namespace synod::replica
