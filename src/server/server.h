// `synod server`: one member process. Wires the node, the peer transport and the gRPC servers,
// and serves until SIGTERM or SIGINT, then shuts down cleanly (stops accepting, drains the
// raft thread, flushes the backend).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/consensus/types.h"
#include "core/pbft/crypto.h"
#include "server/config.h"

namespace synod::server {

// A test seam: what a member sends to its peers passes through this, if set, before the
// transport. Only test builds set one (tests/fault/byzantine_member.cpp: a Byzantine PBFT
// member for the fault campaign); the shipped binary never does.
using OutboundFilter = std::function<void(std::vector<raft::Message>&)>;
using OutboundFilterFactory = std::function<OutboundFilter(
    uint64_t member_id, std::shared_ptr<const pbft::Keyring> pbft_keys)>;
void set_outbound_filter_factory(OutboundFilterFactory factory);
// A test seam of the same kind: a state image this member serves to a peer (Peer.FetchState)
// passes through this, if set.
using ServedStateFilter = std::function<void(std::string& image)>;
void set_served_state_filter(ServedStateFilter filter);
const ServedStateFilter& served_state_filter();

// Returns the process exit code: 0 after a clean shutdown, 1 when startup fails (the reason
// is logged on one line).
int run_server(const ResolvedConfig& config);

}  // namespace synod::server
