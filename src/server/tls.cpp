#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

#include "server/client_listener.h"

namespace synod::server {

namespace {

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

// Reads big-endian fields off a byte range; once a read would pass the end, every later read
// fails too.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), left_(n) {}
  bool ok() const { return ok_; }
  size_t left() const { return left_; }
  uint32_t number(size_t bytes) {
    if (!take(bytes)) return 0;
    const uint8_t* start = p_ - bytes;
    uint32_t v = 0;
    for (size_t i = 0; i < bytes; ++i) v = v << 8 | start[i];
    return v;
  }
  // A sub-range of `bytes` bytes, consumed from this one.
  Reader sub(size_t bytes) {
    if (!take(bytes)) return Reader(nullptr, 0, false);
    return Reader(p_ - bytes, bytes);
  }
  // A vector field: a length of `length_bytes` bytes, then that many bytes.
  Reader vector(size_t length_bytes) { return sub(number(length_bytes)); }
  std::string_view text(size_t bytes) {
    if (!take(bytes)) return {};
    return {reinterpret_cast<const char*>(p_ - bytes), bytes};
  }

 private:
  Reader(const uint8_t* p, size_t n, bool ok) : p_(p), left_(n), ok_(ok) {}
  bool take(size_t bytes) {
    if (!ok_ || bytes > left_) {
      ok_ = false;
      left_ = 0;
      return false;
    }
    p_ += bytes;
    left_ -= bytes;
    return true;
  }
  const uint8_t* p_;
  size_t left_;
  bool ok_ = true;
};

constexpr uint8_t kHandshakeRecord = 22;
constexpr uint8_t kClientHello = 1;
constexpr uint16_t kAlpnExtension = 16;
constexpr char kHttp11[] = "http/1.1";

// The route a ClientHello body asks for, from its ALPN extension.
TlsRoute route_hello_body(Reader hello, bool whole) {
  hello.number(2);  // legacy_version
  hello.sub(32);    // random
  hello.vector(1);  // legacy_session_id
  hello.vector(2);  // cipher_suites
  hello.vector(1);  // legacy_compression_methods
  if (!hello.ok()) return whole ? TlsRoute::kNotTls : TlsRoute::kGrpc;
  if (hello.left() == 0) return TlsRoute::kHttp;  // no extensions
  Reader extensions = hello.vector(2);
  // Bounded: every extension takes at least its 4-byte header.
  while (extensions.ok() && extensions.left() >= 4) {
    const uint32_t type = extensions.number(2);
    Reader body = extensions.vector(2);
    if (type != kAlpnExtension) continue;
    Reader names = body.vector(2);
    while (names.ok() && names.left() > 0) {
      const std::string_view name = names.text(names.number(1));
      if (names.ok() && name == kHttp11) return TlsRoute::kHttp;
    }
    return names.ok() ? TlsRoute::kGrpc : TlsRoute::kNotTls;
  }
  // No ALPN in what arrived: a hello cut at its record's end may still hold one, and gRPC's own
  // TLS stack reads every record.
  if (!extensions.ok()) return whole ? TlsRoute::kNotTls : TlsRoute::kGrpc;
  return TlsRoute::kHttp;
}

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                  unsigned int inlen, void*) {
  static const unsigned char kOffer[] = "\x08http/1.1";
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kOffer, sizeof kOffer - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// Every certificate in a PEM text, in order (empty if none parses).
std::vector<X509*> read_certificates(const std::string& pem) {
  std::vector<X509*> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return out;
  while (X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out.push_back(c);
  ERR_clear_error();  // the read past the last certificate
  BIO_free(bio);
  return out;
}

std::string openssl_error() {
  char text[256];
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  ERR_error_string_n(e, text, sizeof text);
  return text;
}

}  // namespace

std::optional<std::string> read_pem_file(const std::string& path, const char* what,
                                         std::string* error) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  if (!in || !(out << in.rdbuf())) {
    *error = std::string("cannot read ") + what + " '" + path + "'";
    return std::nullopt;
  }
  return out.str();
}

TlsRoute route_client_hello(const uint8_t* data, size_t size) {
  if (looks_like_http1(reinterpret_cast<const char*>(data), size)) {
    return TlsRoute::kPlainHttp;
  }
  if (size < 5) return TlsRoute::kNeedMore;
  Reader record(data, size);
  const uint32_t content_type = record.number(1);
  const uint32_t major = record.number(1);
  record.number(1);  // minor
  const uint32_t length = record.number(2);
  if (content_type != kHandshakeRecord || major != 3 || length < 4 ||
      length > kMaxClientHelloBytes - 5) {
    return TlsRoute::kNotTls;
  }
  if (record.left() < length) return TlsRoute::kNeedMore;
  Reader handshake = record.sub(length);
  if (handshake.number(1) != kClientHello) return TlsRoute::kNotTls;
  const uint32_t hello_length = handshake.number(3);
  const bool whole = hello_length <= handshake.left();
  return route_hello_body(whole ? handshake.sub(hello_length) : handshake.sub(handshake.left()),
                          whole);
}

std::unique_ptr<HttpsContext> HttpsContext::make(const TlsFiles& files, std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    *error = "TLS: " + openssl_error();
    return nullptr;
  }
  std::unique_ptr<HttpsContext> out(new HttpsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  std::vector<X509*> chain = read_certificates(files.cert);
  bool ok = !chain.empty() && SSL_CTX_use_certificate(ctx, chain[0]) == 1;
  X509_free(chain.empty() ? nullptr : chain[0]);
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!ok || SSL_CTX_add_extra_chain_cert(ctx, chain[i]) != 1) {
      X509_free(chain[i]);  // owned by the context only once added
      ok = false;
    }
  }
  if (ok) {
    BIO* bio = BIO_new_mem_buf(files.key.data(), static_cast<int>(files.key.size()));
    EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
    ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
         SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    BIO_free(bio);
  }
  if (ok && !files.ca.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    std::vector<X509*> cas = read_certificates(files.ca);
    ok = !cas.empty();
    for (X509* ca : cas) {
      ok = ok && X509_STORE_add_cert(store, ca) == 1;
      X509_free(ca);
    }
  }
  if (!ok) {
    *error = "TLS: the certificate, key or CA was refused: " + openssl_error();
    return nullptr;
  }
  if (files.require_client_cert) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_http11, nullptr);
  return out;
}

HttpsContext::~HttpsContext() {
  SSL_CTX_free(ctx_);
}

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
    std::optional<std::string> pem = read_pem_file(item.path, item.what, error);
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
