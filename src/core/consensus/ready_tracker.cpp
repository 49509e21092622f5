#include "core/consensus/ready_tracker.h"

#include <cassert>
#include <cstdint>

namespace synod::raft {

Ready ReadyTracker::take(Log& log, const HardState& hs) {
  assert(!outstanding_);
  Ready rd;
  if (snapshot_) {
    rd.snapshot = std::move(snapshot_);
    snapshot_.reset();
  }
  ready_last_ = Index(0);
  if (log.has_unsent()) {
    rd.entries = log.slice(log.unsent_from(), log.last_index(), UINT64_MAX);
    ready_last_ = log.last_index();
    ready_last_term_ = log.last_term();
    log.mark_sent(ready_last_);
  }
  if (hs != emitted_hs_) {
    rd.hard_state = hs;
    emitted_hs_ = hs;
  }
  // Everything up to last_index is durable once this Ready is persisted, so every committed
  // entry can be applied after step 1 of the contract.
  if (log.committed() > log.applied()) {
    rd.committed = log.slice(log.applied() + 1, log.committed(), UINT64_MAX);
  }
  ready_applied_ = log.committed();
  rd.messages = std::move(messages_);
  messages_.clear();
  rd.immediate_messages = std::move(immediate_);
  immediate_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  outstanding_ = true;
  return rd;
}

void ReadyTracker::advance(Log& log) {
  assert(outstanding_);
  outstanding_ = false;
  if (ready_last_ > Index(0)) log.persisted_to(ready_last_, ready_last_term_);
  if (ready_applied_ <= log.committed()) log.applied_to(ready_applied_);
}

}  // namespace synod::raft
