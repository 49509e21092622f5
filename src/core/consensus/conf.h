// Membership changes, one server at a time (thesis 4.1).
//
// Synod uses single-server changes rather than joint consensus. Safety argument (thesis 4.1):
// any majority of the old configuration and any majority of a configuration that differs by
// one voter overlap, so two leaders cannot be elected in the same term by disjoint quorums as
// long as at most one change is in flight. The core enforces:
//   * a node uses the latest configuration in its log, committed or not (thesis 4.1), and rolls
//     back to the previous one if that entry is truncated;
//   * a leader proposes a change only after the previous change is committed;
//   * a leader proposes a change only after it has committed an entry in its own term — the fix
//     for the single-server-change bug Ongaro described on raft-dev in 2015, which otherwise lets
//     two changes from different terms combine into a configuration with no overlapping quorum.
// Learners (non-voters) receive the log but do not vote or count toward commitment; a learner
// is promoted only once its log has caught up with the leader's commit index (thesis 4.2.1).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/consensus/types.h"

namespace synod::raft {

enum class ConfChangeType : uint8_t {
  kAddVoter = 0,    // adds a voter, or promotes a learner
  kAddLearner = 1,  // adds a non-voting member
  kRemoveNode = 2,  // removes a voter or learner (the leader itself included, thesis 4.2.2)
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddVoter;
  NodeId node;
};

// Applies `change` to `conf`. Returns nullopt if the change is a no-op or invalid (adding an
// existing voter, removing a stranger, removing the last voter).
std::optional<ConfState> apply_change(const ConfState& conf, const ConfChange& change);

// A kConfChange entry carries the full resulting configuration, so the configuration at any
// log position is the one in the latest such entry.
std::string encode_conf(const ConfState& conf);
// Returns nullopt on malformed input (never crashes on arbitrary bytes).
std::optional<ConfState> decode_conf(std::string_view data);

std::string to_string(const ConfState& conf);

}  // namespace synod::raft
