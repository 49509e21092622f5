// TLS for a member's gRPC servers and channels, from etcd's flags: the certificate and key it
// shows, the CA it checks the other side's certificate with, and whether it demands one.
// Files are read once, at start: a certificate replaced on disk is taken up by a restart.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

namespace synod::server {

struct TlsFiles {
  std::string cert;  // PEM contents
  std::string key;
  std::string ca;                    // empty: the system's roots (channels), none (servers)
  bool require_client_cert = false;  // servers only
};

// Reads the PEM files (ca_path may be empty). Returns nullopt with a one-line `error` naming the
// unreadable or malformed file.
std::optional<TlsFiles> load_tls_files(const std::string& cert_path, const std::string& key_path,
                                       const std::string& ca_path, bool require_client_cert,
                                       std::string* error);

std::shared_ptr<grpc::ServerCredentials> server_credentials(const TlsFiles& files);
// A channel that checks the server against files.ca and shows files.cert/key (when given) as
// its client certificate.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const TlsFiles& files);

}  // namespace synod::server
