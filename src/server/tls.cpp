#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

namespace synod::server {

namespace {

std::optional<std::string> read_file(const std::string& path, const char* what,
                                     std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = std::string("cannot read ") + what + " '" + path + "'";
    return std::nullopt;
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Whether `pem` holds at least one object PEM_read_bio_X509 (certificates) or
// PEM_read_bio_PrivateKey (keys) accepts: a wrong file gets a clear error at start rather than a
// TLS handshake that fails later.
bool parses(const std::string& pem, bool key) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  bool ok = false;
  if (key) {
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    ok = k != nullptr;
    EVP_PKEY_free(k);
  } else {
    X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    ok = c != nullptr;
    X509_free(c);
  }
  BIO_free(bio);
  return ok;
}

}  // namespace

std::optional<TlsFiles> load_tls_files(const std::string& cert_path, const std::string& key_path,
                                       const std::string& ca_path, bool require_client_cert,
                                       std::string* error) {
  TlsFiles files;
  files.require_client_cert = require_client_cert;
  struct Item {
    const std::string& path;
    std::string* out;
    const char* what;
    bool key;
  };
  for (const Item& item :
       {Item{cert_path, &files.cert, "certificate", false}, Item{key_path, &files.key, "key", true},
        Item{ca_path, &files.ca, "CA certificate", false}}) {
    if (item.path.empty()) continue;
    std::optional<std::string> pem = read_file(item.path, item.what, error);
    if (!pem) return std::nullopt;
    if (!parses(*pem, item.key)) {
      *error = std::string(item.what) + " '" + item.path + "' is not a PEM " +
               (item.key ? "private key" : "certificate");
      return std::nullopt;
    }
    *item.out = std::move(*pem);
  }
  return files;
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const TlsFiles& files) {
  grpc::SslServerCredentialsOptions options(
      files.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_root_certs = files.ca;
  options.pem_key_cert_pairs.push_back({files.key, files.cert});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const TlsFiles& files) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = files.ca;
  options.pem_private_key = files.key;
  options.pem_cert_chain = files.cert;
  return grpc::SslCredentials(options);
}

}  // namespace synod::server
