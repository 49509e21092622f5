// Golden interaction tests for the consensus engines (Raft, and Multi-Paxos with
// `add-nodes ... engine=multipaxos`), in the manner of etcd-io/raft's testdata: a script of
// commands, each followed by "----" and the transcript it must produce. Run with
// SYNOD_REWRITE_GOLDEN=1 to rewrite the transcripts when behavior is meant to change (then
// read the diff: it is the review).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/raft/raft.h"
#include "replica/engine_factory.h"

namespace synod::golden {

struct Command {
  std::string name;
  std::vector<std::string> args;             // positional
  std::map<std::string, std::string> flags;  // key=value
};

// In-memory nodes driven step by step; every output of the core is printed.
class Interaction {
 public:
  std::string run(const Command& cmd);

 private:
  struct Node {
    std::unique_ptr<Engine> engine;
    replica::EngineKind kind = replica::EngineKind::kRaft;
    raft::EngineConfig config;
    replica::EngineBugs bugs;
    replica::PbftOptions pbft;
    raft::Persisted durable;
    // A hard state that differs from the durable one only in its commit index: written without
    // fsync (a recovery hint, as the driver persists it), so a crash loses it.
    std::optional<raft::HardState> unsynced;
    bool up = true;
    raft::Index applied;
  };

  std::string add_nodes(const Command& cmd);
  void process_ready(uint64_t id, std::ostream& out);
  void deliver(uint64_t id, std::ostream& out, const std::set<raft::MessageType>& drop);
  std::string stabilize(const std::set<uint64_t>& only);
  std::string status(uint64_t id);
  std::string paxos_status(uint64_t id, const paxos::MultiPaxos& p);
  std::string pbft_status(uint64_t id, const pbft::Pbft& p);
  std::unique_ptr<Engine> make(Node& n, const raft::EngineConfig& config);
  std::string log(uint64_t id);
  bool connected(uint64_t a, uint64_t b) const;
  Node& node(const std::string& id);

  std::map<uint64_t, Node> nodes_;
  std::map<uint64_t, std::vector<raft::Message>> mailbox_;  // by recipient
  std::vector<std::set<uint64_t>> partition_;               // empty: fully connected
};

std::string describe(const raft::Message& m);
std::string describe(const raft::Entry& e);

}  // namespace synod::golden
