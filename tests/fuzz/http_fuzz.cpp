// The HTTP side of the client port: any client's first bytes decide whether a connection is
// HTTP/1.x, and the request head is parsed (server/client_listener.h); on a TLS port the same
// bytes are read as a ClientHello to route the connection (server/tls.h). A bad head must be
// refused (the listener answers 400), never crash the member.
//
// Input: the bytes a client sent.
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "server/client_listener.h"
#include "server/tls.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace synod;
  const bool http1 = server::looks_like_http1(reinterpret_cast<const char*>(data), size);
  const server::TlsRoute route = server::route_client_hello(data, size);
  if (http1 != (route == server::TlsRoute::kPlainHttp))
    fuzz::property_failed("a TLS port and a plain one disagree on an HTTP request line");
  const std::string head(reinterpret_cast<const char*>(data), size);
  server::HttpRequest request;
  if (!server::parse_http_request(head, &request)) return 0;
  // The listener parses only what looks_like_http1 let through.
  if (http1 && request.method.empty()) fuzz::property_failed("a request parsed without a method");
  server::HttpResponse response;
  response.body = request.path;
  for (const auto& [key, value] : request.query) response.body += key + "=" + value;
  if (server::render_http_response(response).empty())
    fuzz::property_failed("a response rendered empty");
  return 0;
}
