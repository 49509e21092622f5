// The Ready/Advance bookkeeping every engine shares (the contract is in types.h): the outputs
// gathered between two Readys (messages for after the fsync, messages that may leave at once,
// read states, a snapshot to persist), which log entries and hard state the last Ready handed
// out, and what advance() then records as durable and applied. The engine decides what goes in;
// this decides how a Ready is cut from it.
#pragma once

#include <optional>
#include <vector>

#include "core/consensus/log.h"
#include "core/consensus/types.h"

namespace synod::raft {

class ReadyTracker {
 public:
  ReadyTracker() = default;
  explicit ReadyTracker(const HardState& recovered) : emitted_hs_(recovered) {}

  // `immediate`: the message promises no durable state and may leave before the fsync.
  void send(Message m, bool immediate) {
    (immediate ? immediate_ : messages_).push_back(std::move(m));
  }
  void read_state(ReadState rs) { read_states_.push_back(rs); }
  void persist_snapshot(Snapshot snapshot) { snapshot_ = std::move(snapshot); }

  // A Ready is in flight (handed out, not yet advanced).
  bool outstanding() const { return outstanding_; }
  // There is something for a Ready: outputs gathered, entries not handed out, a hard state
  // that changed, committed entries not applied.
  bool pending(const Log& log, const HardState& hs) const {
    return !messages_.empty() || !immediate_.empty() || log.has_unsent() || hs != emitted_hs_ ||
           snapshot_.has_value() || log.committed() > log.applied() || !read_states_.empty();
  }
  // Cuts the next Ready: everything gathered, the log's unsent entries, the hard state if it
  // changed, and the committed entries not yet applied.
  Ready take(Log& log, const HardState& hs);
  // The Ready is persisted and applied: the log's durable and applied indexes move.
  void advance(Log& log);

 private:
  std::vector<Message> messages_;
  std::vector<Message> immediate_;
  std::vector<ReadState> read_states_;
  std::optional<Snapshot> snapshot_;
  HardState emitted_hs_;
  bool outstanding_ = false;
  Index ready_last_;  // the last entry the Ready in flight handed out (0: none)
  Term ready_last_term_;
  Index ready_applied_;  // what it handed out to apply
};

}  // namespace synod::raft
