// The payload of a log compaction's snapshot: a reference to the member's own durable state at
// an applied index, not a copy of it. The state machine is flushed before the reference is
// written, so the state is the snapshot; a member that installs such a snapshot fetches the
// state from the leader (Host::fetch_state). Compaction stays cheap however large the state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace synod::replica {

std::string encode_state_ref(uint64_t applied_index);
// nullopt if `data` is not a reference (an image carried in full, say).
std::optional<uint64_t> decode_state_ref(std::string_view data);

}  // namespace synod::replica
