// TLS for a member's gRPC servers and channels, from etcd's flags: the certificate and key it
// shows, the CA it checks the other side's certificate with, and whether it demands one.
// Files are read once, at start: a certificate replaced on disk is taken up by a restart.
//
// An https:// client URL serves gRPC and HTTP/1.1 on one port, as etcd does: the listener reads
// the client's TLS ClientHello without taking it (route_client_hello) and either terminates TLS
// itself for an HTTP/1.1 client (HttpsContext) or passes the connection, handshake untouched, to
// the gRPC server's own TLS listener (relay.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace synod::server {

struct TlsFiles {
  std::string cert;  // PEM contents
  std::string key;
  std::string ca;                    // empty: the system's roots (channels), none (servers)
  bool require_client_cert = false;  // servers only
};

// The whole of a PEM file (a certificate or a key); nullopt with "cannot read WHAT 'PATH'".
std::optional<std::string> read_pem_file(const std::string& path, const char* what,
                                         std::string* error);

// Reads the PEM files (ca_path may be empty). Returns nullopt with a one-line `error` naming the
// unreadable or malformed file.
std::optional<TlsFiles> load_tls_files(const std::string& cert_path, const std::string& key_path,
                                       const std::string& ca_path, bool require_client_cert,
                                       std::string* error);

std::shared_ptr<grpc::ServerCredentials> server_credentials(const TlsFiles& files);
// A channel that checks the server against files.ca and shows files.cert/key (when given) as
// its client certificate.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const TlsFiles& files);

// Who should answer a TLS connection, told from the first bytes it sent.
enum class TlsRoute {
  kNeedMore,   // the first record is not all there yet
  kHttp,       // offers ALPN "http/1.1", or no ALPN at all (curl, browsers, scrapers)
  kGrpc,       // offers ALPN but not http/1.1 (gRPC clients offer "h2" only)
  kPlainHttp,  // an HTTP/1.x request line: a plain-text client at a TLS port
  kNotTls,     // anything else
};
// Reads the ClientHello in the first TLS record of `data` (RFC 8446 4.1.2, ALPN as RFC 7301).
// Never reads past `size`; a malformed hello is kNotTls.
TlsRoute route_client_hello(const uint8_t* data, size_t size);
// The most bytes route_client_hello may need: one whole TLS record.
inline constexpr size_t kMaxClientHelloBytes = 5 + 16384;

// A server-side TLS context for HTTP/1.1 over TLS: the member's certificate, the CA it checks
// client certificates with, client certificates demanded when files.require_client_cert, and
// ALPN answered with "http/1.1". Thread-safe once made (OpenSSL contexts are).
class HttpsContext {
 public:
  // nullptr and a one-line `error` when OpenSSL refuses the files.
  static std::unique_ptr<HttpsContext> make(const TlsFiles& files, std::string* error);
  ~HttpsContext();
  HttpsContext(const HttpsContext&) = delete;
  HttpsContext& operator=(const HttpsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit HttpsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

}  // namespace synod::server
