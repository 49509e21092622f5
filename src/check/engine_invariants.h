// The safety properties of a consensus engine, checked as code while a simulation runs. Each
// engine has its own checker (RaftInvariants, PaxosInvariants); the simulator calls them
// through this interface at the points where a node's state changes: after every input, at
// every Ready, when a write becomes durable, at every apply, snapshot install and crash.
//
// Violations are recorded, not asserted, so a run reports what it found; the record is bounded
// (kMaxPerInvariant per invariant, kMaxViolations in all) so a broken run cannot flood memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/consensus/types.h"
#include "core/engine.h"

namespace synod::check {

struct Violation {
  std::string invariant;  // the property's name, e.g. ElectionSafety or ChosenNeverChanges
  std::string detail;     // names the nodes, rounds or terms and indexes involved
};

// FNV-1a over an entry's type and data: what checks comparing values compare.
uint64_t entry_hash(const raft::Entry& e);

class EngineInvariants {
 public:
  static constexpr size_t kMaxViolations = 20;
  static constexpr size_t kMaxPerInvariant = 3;

  virtual ~EngineInvariants() = default;

  // The founding membership.
  virtual void set_initial_conf(const raft::ConfState& conf) = 0;
  // After any input to a node.
  virtual void on_step(const Engine& engine) = 0;
  // The driver just took `rd = engine.ready()` (before persisting it).
  virtual void on_ready(const Engine& engine, const raft::Ready& rd) = 0;
  // `node`'s write of `entries` and `hard_state` (from a Ready) is durable.
  virtual void on_durable(raft::NodeId node, const std::vector<raft::Entry>& entries,
                          const std::optional<raft::HardState>& hard_state) = 0;
  // `node` applied `e` (in index order per node).
  virtual void on_apply(raft::NodeId node, const raft::Entry& e) = 0;
  // `node` installed a snapshot.
  virtual void on_snapshot_install(raft::NodeId node, const raft::SnapshotMeta& meta) = 0;
  // `node` crashed; `durable` maps every node (crashed or not) to its durable state after the
  // crash (null for a node with none).
  virtual void on_crash(raft::NodeId node,
                        const std::map<raft::NodeId, const raft::Persisted*>& durable) = 0;

  const std::vector<Violation>& violations() const { return violations_; }
  bool ok() const { return violations_.empty(); }
  // Violations found but not recorded because of the bounds.
  size_t suppressed() const { return suppressed_; }

 protected:
  // Records a violation (once per distinct detail, within the bounds).
  void fail(const char* invariant, std::string detail);

 private:
  std::vector<Violation> violations_;
  size_t suppressed_ = 0;
};

// The fewest voters of `conf` that every majority of it contains one of: n - q + 1.
size_t holders_needed(const raft::ConfState& conf);
std::string voters_string(const raft::ConfState& conf);

}  // namespace synod::check
