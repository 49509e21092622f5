// Which consensus engine a member runs, and how one is built: the server and the simulator
// choose an engine here and drive it through the same Engine interface and the same driver.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "core/consensus/config.h"
#include "core/engine.h"
#include "core/paxos/multi_paxos.h"
#include "core/pbft/pbft.h"
#include "core/raft/raft.h"

namespace synod::replica {

enum class EngineKind : uint8_t { kRaft, kMultiPaxos, kPbft };

const char* to_string(EngineKind kind);  // "raft", "multipaxos", "pbft"
std::optional<EngineKind> parse_engine(std::string_view name);

// The bugs tests plant, per engine (all false in production).
struct EngineBugs {
  raft::PlantedBugs raft;
  paxos::PlantedBugs paxos;
  pbft::PlantedBugs pbft;
};

// What PBFT needs beyond the common configuration (the others ignore it).
struct PbftOptions {
  std::shared_ptr<const pbft::Keyring> keys;  // required for kPbft
  uint32_t faults = 0;                        // f; 0: (n - 1) / 3
  uint64_t checkpoint_interval = 128;
  uint64_t log_window = 256;
  uint64_t state_interval = 4096;  // a multiple of checkpoint_interval; equal on every member
  uint32_t max_batch = 256;
  uint32_t status_ticks = 3;
  // Where this replica's own request timestamps start: above any it used before (pbft::Config).
  uint64_t timestamp_base = 0;
};

// Recovery: the applied index to build the engine with (EngineConfig::applied) after a
// restart whose state machine applied through `applied`; may adjust the log's commit hint.
// No engine counts more of its log as committed than its own hint says (raised only to its
// snapshot, which covers committed entries alone). The state machine may run further ahead:
// a state fetched from a peer may run past the snapshot it was fetched for, while the log past
// that snapshot still holds what this member accepted, which need not be what was committed at
// the indexes the state covers (Raft: entries of a leader deposed before committing them;
// Multi-Paxos: values an acceptor accepted in an earlier round). Counted as committed, such an
// entry would never give way to the leader's (Raft keeps committed entries: the member would
// answer every append with its commit index and never take the leader's suffix), or be sent
// on as chosen once the member leads (Multi-Paxos; the simulator's LearnedIsChosen caught it).
// Instead the member re-learns those indexes from the leader, and the driver skips what the
// state already holds. Raft also keeps its applied index within its committed one, so it
// starts applying from the hint; Multi-Paxos and PBFT start from what the state applied.
uint64_t recover(EngineKind kind, raft::Persisted& disk, uint64_t applied);

std::unique_ptr<Engine> make_engine(EngineKind kind, const raft::EngineConfig& config,
                                    const raft::Persisted& persisted, const EngineBugs& bugs = {},
                                    const PbftOptions& pbft = {});

}  // namespace synod::replica
