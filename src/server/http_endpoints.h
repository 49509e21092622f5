// What a member serves over plain HTTP on its client URLs (and --listen-metrics-urls), as etcd
// 3.4 does: /version, /health and /metrics (Prometheus's text format, etcd's metric names where
// etcd has one, synod_* for the rest). docs/operations.md lists them.
#pragma once

#include "server/client_listener.h"
#include "server/context.h"
#include "server/grpc_metrics.h"

namespace synod::server {

// `grpc_metrics` (may be null) adds the client RPC counters; both must outlive the handler.
HttpHandler make_http_handler(const ServerContext& ctx, const GrpcMetrics* grpc_metrics);

}  // namespace synod::server
