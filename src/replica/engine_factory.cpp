#include "replica/engine_factory.h"

#include <algorithm>

#include "replica/driver.h"

namespace synod::replica {

const char* to_string(EngineKind kind) {
  switch (kind) {
    case EngineKind::kRaft:
      return "raft";
    case EngineKind::kMultiPaxos:
      return "multipaxos";
    case EngineKind::kPbft:
      return "pbft";
  }
  return "?";
}

std::optional<EngineKind> parse_engine(std::string_view name) {
  if (name == "raft") return EngineKind::kRaft;
  if (name == "multipaxos") return EngineKind::kMultiPaxos;
  if (name == "pbft") return EngineKind::kPbft;
  return std::nullopt;
}

uint64_t recover(EngineKind kind, raft::Persisted& disk, uint64_t applied) {
  if (kind != EngineKind::kRaft) return applied;
  if (disk.snapshot) {
    disk.hard_state.commit = std::max(disk.hard_state.commit, disk.snapshot->meta.index);
  }
  return std::min(applied, disk.hard_state.commit.value);
}

std::unique_ptr<Engine> make_engine(EngineKind kind, const raft::EngineConfig& config,
                                    const raft::Persisted& persisted, const EngineBugs& bugs,
                                    const PbftOptions& pbft) {
  if (kind == EngineKind::kPbft) {
    pbft::Config c;
    static_cast<raft::EngineConfig&>(c) = config;
    c.keys = pbft.keys;
    c.faults = pbft.faults;
    c.checkpoint_interval = pbft.checkpoint_interval;
    c.log_window = pbft.log_window;
    c.state_interval = pbft.state_interval;
    c.timestamp_base = pbft.timestamp_base;
    c.max_batch = pbft.max_batch;
    c.status_ticks = pbft.status_ticks;
    c.bugs = bugs.pbft;
    return std::make_unique<pbft::Pbft>(c, persisted);
  }
  if (kind == EngineKind::kMultiPaxos) {
    paxos::Config c;
    static_cast<raft::EngineConfig&>(c) = config;
    c.bugs = bugs.paxos;
    return std::make_unique<paxos::MultiPaxos>(c, persisted);
  }
  raft::Config c;
  static_cast<raft::EngineConfig&>(c) = config;
  c.bugs = bugs.raft;
  return std::make_unique<raft::Raft>(c, persisted);
}

}  // namespace synod::replica
