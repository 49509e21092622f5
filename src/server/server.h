// `synod server`: one member process. Wires the node, the peer transport and the gRPC servers,
// and serves until SIGTERM or SIGINT, then shuts down cleanly (stops accepting, drains the
// raft thread, flushes the backend).
#pragma once

#include "server/config.h"

namespace synod::server {

// Returns the process exit code: 0 after a clean shutdown, 1 when startup fails (the reason
// is logged on one line).
int run_server(const ResolvedConfig& config);

}  // namespace synod::server
