// The one replica driver: runs an engine's Ready loop (src/core/engine.h, contract in
// src/core/consensus/types.h) over the I/O a Host gives it. The server and the simulator both run
// it; they differ only in their Host (disk, network, state machine) and in where ticks and
// inputs come from. What it does, for any engine:
//   - the Ready loop: messages marked immediate go out at once; a snapshot in the Ready is
//     installed (its state fetched from the leader, asynchronously); entries and hard state are
//     persisted (fsync skipped when only the commit index changed); then the other messages go
//     out, committed entries are applied, read states are noted, and the engine advances. One
//     Ready is in flight at a time; inputs keep reaching the engine meanwhile.
//   - log compaction: after snapshot_entries applied entries the host flushes its state (off
//     the driver's thread) and the log is compacted to a reference to that state.
//   - state trust: for an engine whose members may lie (StateTrust in src/core/engine.h), the
//     state is also retained at each multiple of the engine's interval, its digest handed to
//     the engine, and a fetched state installed only with a digest the engine certifies.
//   - linearizable reads (ReadIndex, thesis 6.4): batched into one round per loop, answered
//     once the state machine has applied the read index, retried when a round is lost, failed
//     at their deadline.
// Nothing here blocks: slow work is started through the Host and comes back as an input
// (persisted, state_fetched, state_flushed). Time is ticks.
//
// Thread-safety: none. Every method must be called on one thread, the driver's (asserted).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/deadline_table.h"
#include "core/engine.h"
#include "replica/host.h"

namespace synod::replica {

struct DriverOptions {
  uint64_t snapshot_entries = 10000;    // compact the log after this many applied entries
  uint32_t fetch_retry_ticks = 5;       // a failed state fetch is tried again after this long
  uint32_t read_retry_ticks = 20;       // a read round unanswered this long is asked again
  uint32_t max_pending_reads = 100000;  // reads waiting at once; past it read() refuses
  // The first context of this driver's read rounds; the rest count up from it. Required, and
  // must differ from every earlier process of the member by more than the reads it asked: an
  // answer to a round the previous process asked can still arrive (from the leader, or
  // delayed in the network), and would be taken for the answer to a round of this one.
  // Contexts must not wrap: leave room to count up (0 is not a context).
  uint64_t first_read_context = 0;
};

enum class ReadOutcome : uint8_t {
  kOk,        // the state machine reflects every write committed before the read was asked
  kNoLeader,  // never confirmed: no leader to ask before the deadline
  kTimedOut,  // asked, but not confirmed before the deadline
  kBusy,      // refused: too many reads waiting already
};

class Driver {
 public:
  using ReadDone = std::function<void(ReadOutcome)>;
  using ReadyObserver = std::function<void(const Engine&, const raft::Ready&)>;

  // `snapshot_index`: the index of the snapshot the engine recovered from (0 if none).
  Driver(Engine& engine, Host& host, const DriverOptions& options, uint64_t snapshot_index);
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // --- Inputs. They only hand the input over; run() then does the work, so that a host can
  // gather many inputs into one Ready (and one fsync).
  void tick();
  void step(const raft::Message& m);
  // The persist in flight (Host::persist returned false) is durable.
  void persisted();
  // The answer to Host::fetch_state: the image and its applied index, or nullopt and why not.
  void state_fetched(std::optional<std::string> image, uint64_t index, const std::string& error);
  // Host::retain_state(index) is done: the state there is kept, and its digest is `digest`.
  void state_retained(uint64_t index, const std::string& digest);
  // Host::flush_state(applied) is done: the state is durable through `applied`.
  void state_flushed(uint64_t applied);
  // Runs the Ready loop as far as it can go now: after a batch of the inputs above, and after
  // the host gave the engine an input directly (a proposal, a membership change, ...).
  void run();

  // Calls `done` once the state machine reflects every write committed before this call, or
  // with the failure once `timeout_ticks` ticks have passed.
  void read(ReadDone done, uint32_t timeout_ticks);
  // The replica is going away: every read still waiting fails now (kNoLeader if it was never
  // asked, kTimedOut otherwise).
  void abandon_reads();

  Engine& engine() { return engine_; }
  const Engine& engine() const { return engine_; }
  uint64_t snapshot_index() const { return snapshot_index_; }
  uint64_t ticks() const { return ticks_; }
  bool ready_in_flight() const { return stage_ != Stage::kIdle; }
  // What the Ready in flight waits for ("idle" if none): for diagnostics.
  const char* waiting_for() const;
  size_t pending_reads() const { return reads_.size(); }
  // Sees every Ready as the driver takes it (the simulator's invariant checker).
  void set_ready_observer(ReadyObserver observer) { observer_ = std::move(observer); }

 private:
  enum class Stage : uint8_t {
    kIdle,           // no Ready in flight
    kAwaitingFlush,  // a snapshot to install waits for a state flush to finish
    kFetching,       // its state is being fetched
    kFetchBackoff,   // the fetch failed; tried again at fetch_retry_at_
    kPersisting,     // entries and hard state being made durable
  };
  // Where a waiting read is. Places are ordered as expired reads fail: those not yet asked (in
  // line), then those in a round (by round, in line), then those waiting for the apply of their
  // read index (by index, in arrival order).
  struct ReadPlace {
    enum Stage : uint8_t { kUnsent, kInRound, kReady };
    Stage stage = kUnsent;
    uint64_t group = 0;  // kInRound: the round's read context; kReady: the read index
    uint64_t order = 0;  // place in line, or arrival among reads of one index
    auto operator<=>(const ReadPlace&) const = default;
  };

  void assert_owner();
  void begin_ready();
  void install_snapshot();
  void start_fetch();
  void finish_install();
  void persist_ready();
  void finish_ready();
  void apply(const std::vector<raft::Entry>& committed);
  void maybe_compact();
  void compact(uint64_t applied);
  void submit_reads();
  void serve_reads();
  ReadDone take_read(std::map<ReadPlace, ReadDone>::iterator read);
  void move_reads(ReadPlace first, ReadPlace last, ReadPlace::Stage stage, uint64_t group);
  void expire_reads_through(uint64_t last_tick);
  void retry_lost_rounds();

  Engine& engine_;
  Host& host_;
  DriverOptions options_;
  std::thread::id owner_;
  ReadyObserver observer_;
  uint64_t ticks_ = 0;

  Stage stage_ = Stage::kIdle;
  std::optional<raft::Ready> ready_;  // the Ready in flight
  raft::HardState synced_;            // term and vote as last made durable
  uint64_t fetch_retry_at_ = 0;
  uint64_t fetch_failures_ = 0;

  uint64_t snapshot_index_ = 0;
  bool flushing_ = false;
  std::optional<uint64_t> flushed_;  // a finished flush whose compaction waits for the Ready

  uint64_t next_read_context_;
  uint64_t next_read_order_ = 0;
  std::map<ReadPlace, ReadDone> reads_;  // every read waiting
  std::map<uint64_t, uint64_t> rounds_;  // read context -> tick the round was asked
  // The reads' deadlines (ticks), under their places.
  base::DeadlineTable<uint64_t, ReadPlace> read_deadlines_;
};

}  // namespace synod::replica
