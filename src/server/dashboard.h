// The dashboard every member serves over HTTP on its client URLs (and --listen-metrics-urls):
// /dashboard, one self-contained page (no build step, nothing fetched from elsewhere), and
// /dashboard/status, the member's state as JSON, which the page polls on every member.
#pragma once

#include <optional>

#include "server/client_listener.h"
#include "server/context.h"

namespace synod::server {

// The answer to a /dashboard request, or nullopt for another path.
std::optional<HttpResponse> serve_dashboard(const ServerContext& ctx, const HttpRequest& req);

}  // namespace synod::server
