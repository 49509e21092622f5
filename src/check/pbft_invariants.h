// PBFT's safety, checked as code while a simulation runs (check/engine_invariants.h): whatever
// the Byzantine replicas do, the honest ones agree (OSDI 4.5.1, safety).
//
//   - HonestReplicasAgree: no two honest replicas execute different requests at one sequence
//     number (the operations they hand their state machines are compared).
//   - HonestHistoriesAgree: honest replicas that executed through a sequence number hold the
//     same chain digest of the history there (so null requests and no-ops are compared too).
//
// Byzantine replicas are named up front and left out; everything else is honest.
#pragma once

#include <set>
#include <unordered_map>

#include "check/engine_invariants.h"
#include "core/pbft/crypto.h"

namespace synod::check {

class PbftInvariants final : public EngineInvariants {
 public:
  void set_byzantine(std::set<raft::NodeId> faulty) { byzantine_ = std::move(faulty); }

  void set_initial_conf(const raft::ConfState&) override {}
  void on_step(const Engine& engine) override;
  void on_ready(const Engine&, const raft::Ready&) override {}
  void on_durable(raft::NodeId, const std::vector<raft::Entry>&,
                  const std::optional<raft::HardState>&) override {}
  void on_apply(raft::NodeId node, const raft::Entry& e) override;
  void on_snapshot_install(raft::NodeId, const raft::SnapshotMeta&) override {}
  void on_crash(raft::NodeId, const std::map<raft::NodeId, const raft::Persisted*>&) override {}

 private:
  struct Seen {
    raft::NodeId node;
    uint64_t hash = 0;
  };
  struct SeenDigest {
    raft::NodeId node;
    pbft::Digest digest{};
  };
  std::set<raft::NodeId> byzantine_;
  std::unordered_map<uint64_t, Seen> executed_;         // seq -> first honest execution
  std::unordered_map<uint64_t, SeenDigest> histories_;  // seq -> first honest chain digest
};

}  // namespace synod::check
