// An https:// client URL: routing a connection by its TLS ClientHello (real hellos written by
// OpenSSL's client), HTTP/1.1 answered over TLS on a real socket, a plain-text client at a TLS
// port, and the relay that carries gRPC's TLS connections to its own listener.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "server/client_listener.h"
#include "server/relay.h"
#include "server/tls.h"

namespace synod::server {
namespace {

std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string pem_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// A self-signed certificate for 127.0.0.1, as the server's.
TlsFiles self_signed() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, key, EVP_sha256());
  TlsFiles files{pem_of(cert), pem_of(key), "", false};
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

// The first flight OpenSSL's client sends, offering `alpn` (wire format; empty: no ALPN).
std::string client_hello(const std::string& alpn) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  if (!alpn.empty()) {
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(alpn.data()),
                        static_cast<unsigned>(alpn.size()));
  }
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_connect(ssl);  // wants to read the server's answer: the hello is written
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  std::string hello(data, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return hello;
}

TlsRoute route(const std::string& bytes) {
  return route_client_hello(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

TEST(TlsRoute, GrpcClientsOfferH2Only) {
  EXPECT_EQ(route(client_hello(std::string("\x02h2", 3))), TlsRoute::kGrpc);
  EXPECT_EQ(route(client_hello(std::string("\x08grpc-exp\x02h2", 12))), TlsRoute::kGrpc);
}

TEST(TlsRoute, HttpClientsOfferHttp11OrNoAlpn) {
  EXPECT_EQ(route(client_hello(std::string("\x02h2\x08http/1.1", 12))), TlsRoute::kHttp);
  EXPECT_EQ(route(client_hello(std::string("\x08http/1.1", 9))), TlsRoute::kHttp);
  EXPECT_EQ(route(client_hello("")), TlsRoute::kHttp);
}

TEST(TlsRoute, WaitsForTheWholeFirstRecord) {
  const std::string hello = client_hello(std::string("\x02h2", 3));
  ASSERT_GT(hello.size(), 5u);
  for (size_t n = 0; n < hello.size(); ++n) {
    EXPECT_EQ(route(hello.substr(0, n)), TlsRoute::kNeedMore) << n;
  }
}

TEST(TlsRoute, RefusesWhatIsNotAClientHello) {
  EXPECT_EQ(route("GET /metrics HTTP/1.1\r\n\r\n"), TlsRoute::kPlainHttp);
  EXPECT_EQ(route("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), TlsRoute::kNotTls);
  EXPECT_EQ(route(std::string("\x15\x03\x03\x00\x02\x02\x28", 7)), TlsRoute::kNotTls);  // alert
  EXPECT_EQ(route(std::string("\x16\x03\x01\x50\x00", 5)), TlsRoute::kNotTls);          // oversized
  // A hello whose lengths run past its record: every byte flipped in turn never reads outside
  // the input (ASan) and never throws.
  std::string hello = client_hello(std::string("\x02h2\x08http/1.1", 12));
  for (size_t i = 5; i < hello.size(); ++i) {
    std::string bad = hello;
    bad[i] = static_cast<char>(bad[i] ^ 0xff);
    const TlsRoute r = route(bad);
    EXPECT_NE(r, TlsRoute::kPlainHttp);
  }
}

TEST(HttpsContext, RefusesAKeyThatIsNotTheCertificates) {
  TlsFiles a = self_signed();
  const TlsFiles b = self_signed();
  a.key = b.key;
  std::string error;
  EXPECT_EQ(HttpsContext::make(a, &error), nullptr);
  EXPECT_NE(error.find("refused"), std::string::npos) << error;
  EXPECT_NE(HttpsContext::make(b, &error), nullptr);
}

sockaddr_in free_loopback_port() {
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(probe);
  return a;
}

int connect_to(const sockaddr_in& a) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::string read_to_end(int fd) {
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
  return got;
}

// An HTTPS request made with OpenSSL's client, offering `alpn`; the response, or "" if the
// handshake failed.
std::string https_get(const sockaddr_in& a, const std::string& path, const std::string& alpn) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(alpn.data()),
                      static_cast<unsigned>(alpn.size()));
  const int fd = connect_to(a);
  SSL_set_fd(ssl, fd);
  std::string got;
  if (SSL_connect(ssl) == 1) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    SSL_write(ssl, req.data(), static_cast<int>(req.size()));
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return got;
}

TEST(ClientListener, ServesHttpOverTlsAndTellsPlainClientsOff) {
  const sockaddr_in a = free_loopback_port();
  std::string error;
  auto https = HttpsContext::make(self_signed(), &error);
  ASSERT_NE(https, nullptr) << error;
  auto listener = ClientListener::open({Url{"https", "127.0.0.1", ntohs(a.sin_port)}}, &error);
  ASSERT_NE(listener, nullptr) << error;
  listener->start({nullptr, nullptr, https.get()}, [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain; charset=utf-8", "path=" + r.path};
  });
  const std::string ok = https_get(a, "/health", std::string("\x02h2\x08http/1.1", 12));
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("\r\n\r\npath=/health"), std::string::npos) << ok;
  // A gRPC client with no gRPC behind the listener: closed during the handshake.
  EXPECT_EQ(https_get(a, "/health", std::string("\x02h2", 3)), "");
  // Plain HTTP at the TLS port gets Go's (etcd's) answer.
  const int fd = connect_to(a);
  const std::string req = "GET /health HTTP/1.1\r\n\r\n";
  ::send(fd, req.data(), req.size(), 0);
  EXPECT_EQ(read_to_end(fd).rfind("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request", 0),
            0u);
  ::close(fd);
  listener->stop();
}

// An abstract unix socket that echoes what it reads, one connection at a time, until `count`
// connections were served.
class EchoServer {
 public:
  EchoServer(const std::string& name, int count) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ::listen(fd_, 16);
    thread_ = std::thread([this, count] {
      for (int i = 0; i < count; ++i) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[8192];
        ssize_t n;
        while ((n = ::recv(c, buf, sizeof buf, 0)) > 0) {
          ::send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
        }
        ::close(c);  // after the client's half close: everything was echoed
      }
    });
  }
  ~EchoServer() {
    thread_.join();
    ::close(fd_);
  }

 private:
  int fd_;
  std::thread thread_;
};

TEST(Relay, CarriesBytesBothWaysAndPassesOnHalfCloses) {
  const std::string name = "synod-relay-test-" + std::to_string(::getpid());
  EchoServer echo(name, 2);
  std::string error;
  auto relay = Relay::start(name, &error);
  ASSERT_NE(relay, nullptr) << error;
  for (int round = 0; round < 2; ++round) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    ASSERT_TRUE(relay->add(pair[1]));
    // More than the relay's buffers and the sockets' own: the writer must wait on the reader.
    std::string sent(4 << 20, '\0');
    for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 131 + round);
    std::thread writer([&] {
      size_t done = 0;
      while (done < sent.size()) {
        const ssize_t n = ::send(pair[0], sent.data() + done, sent.size() - done, 0);
        ASSERT_GT(n, 0);
        done += static_cast<size_t>(n);
      }
      ::shutdown(pair[0], SHUT_WR);
    });
    const std::string back = read_to_end(pair[0]);
    writer.join();
    EXPECT_EQ(back.size(), sent.size());
    EXPECT_TRUE(back == sent);
    ::close(pair[0]);
  }
  // Both pairs end: the relay lets go of them.
  for (int i = 0; i < 200 && relay->connections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(relay->connections(), 0u);
}

TEST(Relay, RefusesAClientWhenTheBackendIsGone) {
  std::string error;
  auto relay = Relay::start("synod-relay-test-nobody-" + std::to_string(::getpid()), &error);
  ASSERT_NE(relay, nullptr) << error;
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  EXPECT_FALSE(relay->add(pair[1]));  // and closed it
  EXPECT_EQ(read_to_end(pair[0]), "");
  ::close(pair[0]);
}

}  // namespace
}  // namespace synod::server
