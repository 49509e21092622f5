// The consensus engine as its one driver (src/replica) sees it: a pure value that takes inputs
// (a tick, a message, a proposal, a read request, a membership or leadership change, a log
// compaction) and hands back its outputs as a Ready (src/core/consensus/types.h states the
// contract: what may be sent before the fsync, what only after, what to apply). Raft implements it;
// further engines implement the same interface, so the server and the simulator run any of them
// the same way.
//
// The Ready vocabulary (entries, hard state, messages, snapshots, read states) is Raft's value
// types (src/core/consensus/), which other engines reuse: their log is a sequence of entries
// too, and their messages travel in the same envelope.
//
// Not thread-safe: one driver owns one engine and calls it from one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/consensus/conf.h"
#include "core/consensus/types.h"

namespace synod {

// How the driver trusts a state fetched from another member for a snapshot. By default the
// member asked serves its current state, taken as it is. An engine whose members may lie sets
// `retain_interval`: every member then keeps, durably, its state at the last few multiples of
// the interval it applied (Host::retain_state), tells the engine each one's digest
// (state_retained), and serves only those; a fetched state is taken only if the engine
// certifies its digest at its index (state_certified).
struct StateTrust {
  uint64_t retain_interval = 0;  // 0: none of the above
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Inputs.
  virtual void tick() = 0;
  virtual void step(const raft::Message& m) = 0;
  virtual raft::ProposeResult propose(std::string data) = 0;
  virtual raft::ProposeResult propose_conf_change(const raft::ConfChange& change) = 0;
  // A linearizable read: the answer arrives as a ReadState with `context` in a later Ready.
  virtual raft::Status read_index(uint64_t context) = 0;
  virtual raft::Status transfer_leadership(raft::NodeId target) = 0;
  // Replaces the log prefix up to `index` (applied and made durable in the state machine by the
  // driver) with a snapshot whose payload is `snapshot_data`; nullopt if `index` is not past
  // the current snapshot.
  virtual std::optional<raft::SnapshotMeta> compact(raft::Index index,
                                                    std::string snapshot_data) = 0;

  // Outputs.
  virtual bool has_ready() const = 0;
  virtual raft::Ready ready() = 0;
  virtual void advance() = 0;

  // Observers.
  virtual raft::NodeId id() const = 0;
  virtual raft::Role role() const = 0;
  virtual raft::Term term() const = 0;
  virtual raft::NodeId leader() const = 0;
  virtual const raft::ConfState& conf() const = 0;
  virtual raft::Index committed_index() const = 0;
  virtual raft::Index last_index() const = 0;
  virtual raft::Index snapshot_index() const = 0;
  // The index of the newest membership entry in the log (or of the snapshot holding it).
  virtual raft::Index conf_index() const = 0;

  // State trust (above). The default trusts a fetched state as the member asked served it.
  virtual StateTrust state_trust() const { return {}; }
  // This member keeps its state at `index` (a multiple of the retain interval, applied by it
  // or restored from a certified image), whose digest is `digest`.
  virtual void state_retained(raft::Index index, const std::string& digest) {
    (void)index;
    (void)digest;
  }
  // Whether a state fetched at `index` whose digest is `digest` may be installed.
  virtual bool state_certified(raft::Index index, const std::string& digest) const {
    (void)index;
    (void)digest;
    return true;
  }
};

}  // namespace synod
