// A leader's view of one follower's log (thesis 3.5 nextIndex/matchIndex; for a Multi-Paxos
// acceptor, the end of the run it accepted at the leader's round), plus flow control. Both
// engines' leaders keep one per member and drive it through the methods below.
//
//   kProbe: next is a guess; at most one Append is outstanding until the follower answers.
//   kReplicate: next advances optimistically; Appends pipeline up to a bounded window
//               (messages and bytes) of unacknowledged data (thesis 10.2.2).
//   kSnapshot: the follower needs entries we compacted; a chunked snapshot is in flight.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>

#include "core/consensus/types.h"

namespace synod::raft {

enum class ProgressState : uint8_t { kProbe, kReplicate, kSnapshot };
const char* to_string(ProgressState s);

struct Progress {
  Index match;
  Index next{1};
  ProgressState state = ProgressState::kProbe;
  bool probe_sent = false;     // kProbe: an Append is outstanding
  bool recent_active = false;  // heard from since the last check-quorum round
  bool learner = false;
  uint64_t last_ack_sent_tick = 0;  // leader tick at which the last acknowledged heartbeat left

  // kReplicate: unacknowledged Appends, as (last index, bytes) in send order.
  std::deque<std::pair<Index, uint64_t>> inflight;
  uint64_t inflight_bytes = 0;

  // kSnapshot: the snapshot being sent and how much of it the follower confirmed.
  Index snapshot_index;
  uint64_t snapshot_offset = 0;
  bool snapshot_chunk_outstanding = false;

  bool window_full(uint32_t max_msgs, uint64_t max_bytes) const {
    return inflight.size() >= max_msgs || inflight_bytes >= max_bytes;
  }
  void add_inflight(Index last, uint64_t bytes) {
    inflight.emplace_back(last, bytes);
    inflight_bytes += bytes;
  }
  // Frees every window slot up to and including `index`.
  void free_inflight_to(Index index) {
    while (!inflight.empty() && inflight.front().first <= index) {
      inflight_bytes -= inflight.front().second;
      inflight.pop_front();
    }
  }
  void free_first() {
    if (inflight.empty()) return;
    inflight_bytes -= inflight.front().second;
    inflight.pop_front();
  }
  void become_probe() {
    // thesis 3.5: after a snapshot, continue right after it.
    next = state == ProgressState::kSnapshot ? std::max(match + 1, snapshot_index + 1) : match + 1;
    state = ProgressState::kProbe;
    probe_sent = false;
    inflight.clear();
    inflight_bytes = 0;
  }
  void become_replicate() {
    state = ProgressState::kReplicate;
    next = match + 1;
    probe_sent = false;
    inflight.clear();
    inflight_bytes = 0;
  }
  void become_snapshot(Index index) {
    state = ProgressState::kSnapshot;
    snapshot_index = index;
    snapshot_offset = 0;
    snapshot_chunk_outstanding = false;
    inflight.clear();
    inflight_bytes = 0;
  }
  // Whether an append (Accept) with entries may go out now: not while a snapshot is being
  // sent, not a second probe, not past the pipelining window.
  bool can_send(uint32_t max_msgs, uint64_t max_bytes) const {
    if (state == ProgressState::kSnapshot) return false;
    if (state == ProgressState::kProbe && probe_sent) return false;
    return state != ProgressState::kReplicate || !window_full(max_msgs, max_bytes);
  }
  // An append carrying entries through `last` (0: none), of `bytes`, went out.
  void sent(Index last, uint64_t bytes) {
    if (last > Index(0) && state == ProgressState::kReplicate) {
      // thesis 10.2.2: pipeline — assume success and move on, bounded by the window.
      next = last + 1;
      add_inflight(last, bytes);
    }
    if (state == ProgressState::kProbe) probe_sent = true;
  }
  // The follower acknowledged everything up to `index`: returns true if that moved it on (its
  // match advanced, or, with `probe_answer_ends_probe`, a probe was answered), after the state
  // change that follows (probe -> replicate, snapshot sent -> replicate).
  bool acknowledged(Index index, bool probe_answer_ends_probe = false) {
    const bool advanced = maybe_update(index);
    if (!advanced && !(probe_answer_ends_probe && state == ProgressState::kProbe)) {
      if (state == ProgressState::kReplicate) free_inflight_to(index);
      return false;
    }
    switch (state) {
      case ProgressState::kProbe:
        become_replicate();
        break;
      case ProgressState::kSnapshot:
        if (match >= snapshot_index) {
          become_probe();
          become_replicate();
        }
        break;
      case ProgressState::kReplicate:
        free_inflight_to(index);
        break;
    }
    return true;
  }
  // A heartbeat (Commit) answer, whose heartbeat left at `sent_tick`: the follower is reachable.
  void heartbeat_answered(uint64_t sent_tick, uint32_t max_msgs, uint64_t max_bytes) {
    recent_active = true;
    last_ack_sent_tick = std::max(last_ack_sent_tick, sent_tick);
    if (state == ProgressState::kProbe) probe_sent = false;
    // A lost append would otherwise hold its window slot forever: the answer proves the
    // follower is reachable, so free one slot and let the next append find out where it stands.
    if (state == ProgressState::kReplicate && window_full(max_msgs, max_bytes)) free_first();
    if (state == ProgressState::kSnapshot) snapshot_chunk_outstanding = false;  // resend
  }
  // A chunk of the snapshot at `index` was received up to `offset`; false if stale.
  bool snapshot_chunk_answered(Index index, uint64_t offset) {
    recent_active = true;
    if (state != ProgressState::kSnapshot || index != snapshot_index) return false;
    snapshot_offset = offset;
    snapshot_chunk_outstanding = false;
    return true;
  }

  // Records an acknowledgement of everything up to `index`. Returns true if match advanced.
  bool maybe_update(Index index) {
    bool updated = false;
    if (index > match) {
      match = index;
      updated = true;
      probe_sent = false;
    }
    next = std::max(next, index + 1);
    return updated;
  }
};

}  // namespace synod::raft
