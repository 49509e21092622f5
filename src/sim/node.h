// The simulator's driver for one Raft node: the process around the core.
//
// It runs the Ready loop the way a server must (core/raft/types.h): stage the durable part of
// a Ready, fsync, and only when the fsync completes send the messages, apply the committed
// entries to the key-value machine, answer the clients waiting on them, and call advance().
// Immediate messages go out at once. Linearizable reads go through read_index() and are
// answered once the machine has applied the read index (thesis 6.4).
//
// A Node does no scheduling of its own: every input returns a NodeOutput (messages for the
// network, replies for clients, an fsync to complete later) that the simulation routes. It
// reports to the shared invariant checker after every input, Ready and applied entry.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "check/raft_invariants.h"
#include "core/raft/raft.h"
#include "sim/kv_machine.h"
#include "sim/storage.h"

namespace synod::sim {

enum class ReplyStatus : uint8_t {
  kOk,        // took effect (writes) or was read linearizably (gets)
  kRejected,  // never proposed: no leader known, or a transfer in progress
};

struct ClientReply {
  uint32_t client = 0;
  uint64_t seq = 0;
  ReplyStatus status = ReplyStatus::kOk;
  KvResult result;
  raft::NodeId leader_hint;  // who the answering node believes leads
};

struct NodeOutput {
  std::vector<raft::Message> messages;  // for the network, in send order
  std::vector<ClientReply> replies;
  bool fsync_started = false;  // call fsync_done() when the disk says so
};

class Node {
 public:
  // `invariants` outlives the node and is shared by the whole cluster.
  Node(raft::NodeId id, check::RaftInvariants& invariants);

  // Boots the process from its durable storage: the state machine is restored from the
  // durable snapshot and the core re-delivers committed entries after it. `config.applied`
  // is set here. Precondition: !up().
  void start(raft::Config config, uint64_t compact_every);
  // The process dies: memory and the un-synced write are gone, the durable state stays.
  void crash();
  // The disk is replaced by an empty one. Precondition: !up().
  void wipe() { storage_.wipe(); }
  void pause() { paused_ = true; }
  void resume() { paused_ = false; }

  // Inputs. Precondition for all: up() && !paused().
  void tick(NodeOutput& out);
  void receive(const raft::Message& m, NodeOutput& out);
  void client_request(const KvCommand& request, NodeOutput& out);
  // The fsync issued for the staged Ready completed.
  void fsync_done(NodeOutput& out);
  // After an administrative call on raft() (membership change, leadership transfer).
  void after_admin(NodeOutput& out) { after_input(out); }

  // The disk finished the fsync (even if the process is paused and learns of it later).
  void disk_synced() { storage_.sync(); }

  raft::NodeId id() const { return id_; }
  bool up() const { return raft_ != nullptr; }
  bool paused() const { return paused_; }
  uint64_t incarnation() const { return incarnation_; }
  bool fsync_in_flight() const { return inflight_.has_value(); }
  raft::Raft& raft() { return *raft_; }
  const raft::Raft& raft() const { return *raft_; }
  const Storage& storage() const { return storage_; }
  const KvMachine& kv() const { return kv_; }
  raft::Index applied() const { return applied_; }

 private:
  void after_input(NodeOutput& out);
  void take_ready(NodeOutput& out);
  void apply(const raft::Ready& rd, NodeOutput& out);
  void apply_entry(const raft::Entry& e, NodeOutput& out);
  void serve_reads(NodeOutput& out);
  void maybe_compact();
  void reply(const KvCommand& request, ReplyStatus status, KvResult result, NodeOutput& out);

  raft::NodeId id_;
  check::RaftInvariants& invariants_;
  Storage storage_;
  std::unique_ptr<raft::Raft> raft_;  // null while the process is down
  bool paused_ = false;
  uint64_t incarnation_ = 0;
  uint64_t compact_every_ = 0;

  // Process memory: lost on a crash.
  std::optional<raft::Ready> inflight_;  // staged, waiting for its fsync
  KvMachine kv_;
  raft::Index applied_;
  uint64_t next_read_context_ = 0;
  std::map<uint64_t, KvCommand> reads_;                   // context -> waiting get
  std::vector<std::pair<raft::Index, KvCommand>> ready_;  // read index -> get to serve
  std::map<std::pair<uint32_t, uint64_t>, KvCommand> writes_;  // (client, seq) -> request
};

}  // namespace synod::sim
