// The client URLs' listener. As etcd does (its cmux), one port serves both gRPC and HTTP/1.1:
// each accepted connection is told apart by its first bytes. On an http:// URL a connection that
// opens with an HTTP/1.x request line gets the HTTP handler (/metrics, /health, /version, the
// dashboard); any other (gRPC's HTTP/2 preface) is handed to the gRPC server, which then owns the
// socket. On an https:// URL the TLS ClientHello decides (tls.h): an HTTP/1.1 client's TLS is
// terminated here and it gets the HTTP handler; a gRPC client is relayed to gRPC's own TLS
// listener (relay.h).
//
// Each connection is told apart, and an HTTP one served (one request, Connection: close), on a
// thread of its own, with a bound on how many at once and on how long a client may take to send.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/config.h"

namespace grpc {
class Server;
}

namespace synod::server {

class HttpsContext;
class Relay;

struct HttpRequest {
  std::string method;
  std::string path;                          // without the query
  std::map<std::string, std::string> query;  // decoded
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Parses the head of an HTTP/1.x request (through the blank line). False on anything else.
bool parse_http_request(const std::string& head, HttpRequest* out);
// The bytes of a response, with etcd's CORS headers and Connection: close.
std::string render_http_response(const HttpResponse& r);

// Whether a connection's first bytes are an HTTP/1.x request line's method ("GET ", ...).
// Needs 4 bytes; gRPC's preface ("PRI * HTTP/2.0") is not.
bool looks_like_http1(const char* data, size_t size);

class ClientListener {
 public:
  // Binds and listens on every URL; nullptr and `error` if one cannot be.
  static std::unique_ptr<ClientListener> open(const std::vector<Url>& urls, std::string* error);
  ~ClientListener();

  // Who answers what, beyond the HTTP handler. Each may be null: a connection nobody takes is
  // closed.
  struct Backends {
    grpc::Server* grpc = nullptr;         // started, no ports of its own: plain gRPC
    Relay* tls_grpc = nullptr;            // gRPC over TLS
    const HttpsContext* https = nullptr;  // HTTP/1.1 over TLS, for the https:// URLs
  };
  // Starts accepting; the backends must outlive stop().
  void start(Backends backends, HttpHandler handler);
  // Stops accepting and waits for the HTTP connections in progress.
  void stop();

 private:
  struct Socket {
    int fd;
    bool tls;
  };
  explicit ClientListener(std::vector<Socket> sockets) : listening_(std::move(sockets)) {}
  void accept_loop(Socket listening);
  void serve(int fd);
  void serve_tls(int fd);
  void serve_https(int fd);

  std::vector<Socket> listening_;
  std::vector<std::thread> acceptors_;
  Backends backends_;
  HttpHandler handler_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable idle_;
  size_t in_flight_ = 0;  // connection threads running
};

}  // namespace synod::server
