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

// The commit index a member restarts with. Raft raises the log's hint to what the state machine
// applied (Driver::recover_commit: whatever it applied was committed, and the log holds those
// entries). Multi-Paxos and PBFT keep their own hint: a state fetched from a peer may run ahead
// of the snapshot it was fetched for, and the replica's log past that snapshot may hold values
// it accepted but that were never chosen (a Multi-Paxos acceptor keeps them: a later phase 1 may
// need them) at slots the state covers. Counted as chosen after a restart, such a value would
// be sent on as chosen once the member leads. They re-learn those slots (an acceptor from the
// leader's resend, PBFT on certificates) and the driver skips what the state already holds.
void recover_commit(EngineKind kind, raft::Persisted& disk, uint64_t applied);

std::unique_ptr<Engine> make_engine(EngineKind kind, const raft::EngineConfig& config,
                                    const raft::Persisted& persisted, const EngineBugs& bugs = {},
                                    const PbftOptions& pbft = {});

}  // namespace synod::replica
