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
#include "core/raft/raft.h"

namespace synod::replica {

enum class EngineKind : uint8_t { kRaft, kMultiPaxos };

const char* to_string(EngineKind kind);  // "raft", "multipaxos"
std::optional<EngineKind> parse_engine(std::string_view name);

// The bugs tests plant, per engine (all false in production).
struct EngineBugs {
  raft::PlantedBugs raft;
  paxos::PlantedBugs paxos;
};

std::unique_ptr<Engine> make_engine(EngineKind kind, const raft::EngineConfig& config,
                                    const raft::Persisted& persisted, const EngineBugs& bugs = {});

}  // namespace synod::replica
