// The client URLs' listener: telling HTTP/1.x from gRPC by the first bytes, parsing request
// heads (and refusing what is not one), rendering responses; and a real socket that gets a
// plain HTTP answer with no gRPC server behind it.
#include "server/client_listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace synod::server {
namespace {

TEST(ClientListener, TellsHttpFromTheGrpcPreface) {
  EXPECT_TRUE(looks_like_http1("GET /metrics HTTP/1.1", 4));
  EXPECT_TRUE(looks_like_http1("HEAD / HTTP/1.1", 4));
  EXPECT_TRUE(looks_like_http1("POST", 4));
  EXPECT_FALSE(looks_like_http1("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24));
  EXPECT_FALSE(looks_like_http1("GET", 3));               // not enough bytes yet
  EXPECT_FALSE(looks_like_http1("\x16\x03\x01\x02", 4));  // a TLS ClientHello
}

TEST(ClientListener, ParsesRequestHeads) {
  HttpRequest r;
  ASSERT_TRUE(parse_http_request(
      "GET /health?serializable=true&x=a%20b+c HTTP/1.1\r\nHost: h\r\n\r\n", &r));
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/health");
  EXPECT_EQ(r.query.at("serializable"), "true");
  EXPECT_EQ(r.query.at("x"), "a b c");
  ASSERT_TRUE(parse_http_request("HEAD /version HTTP/1.0\r\n\r\n", &r));
  EXPECT_EQ(r.path, "/version");
  EXPECT_TRUE(r.query.empty());
  for (const char* bad : {"", "GET\r\n\r\n", "GET /x\r\n\r\n", "GET x HTTP/1.1\r\n\r\n",
                          "GET /x HTTP/2.0\r\n\r\n", "GET /x HTTP/1.1"}) {
    EXPECT_FALSE(parse_http_request(bad, &r)) << bad;
  }
}

TEST(ClientListener, RendersResponsesWithLengthAndClose) {
  const std::string out = render_http_response({404, "text/plain; charset=utf-8", "no\n"});
  EXPECT_EQ(out.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  EXPECT_NE(out.find("Content-Length: 3\r\n"), std::string::npos);
  EXPECT_NE(out.find("Connection: close\r\n\r\nno\n"), std::string::npos);
  EXPECT_NE(out.find("Access-Control-Allow-Origin: *\r\n"), std::string::npos);
}

// A real socket: the listener answers HTTP itself and closes what is not HTTP when there is no
// gRPC server to hand it to.
TEST(ClientListener, ServesHttpOnARealSocket) {
  std::string error;
  Url url{"http", "127.0.0.1", 0};
  // Port 0 cannot be known afterwards through the public interface: pick a free one first.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  url.port = ntohs(a.sin_port);
  ::close(probe);
  auto listener = ClientListener::open({url}, &error);
  ASSERT_NE(listener, nullptr) << error;
  listener->start({}, [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain; charset=utf-8", "path=" + r.path};
  });
  auto ask = [&](const std::string& bytes) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    std::string got;
    char buf[1024];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return got;
  };
  const std::string ok = ask("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("\r\n\r\npath=/metrics"), std::string::npos) << ok;
  EXPECT_EQ(ask("GET nonsense\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(ask("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "");  // no gRPC server: closed
  // A second listener on the same port is refused.
  EXPECT_EQ(ClientListener::open({url}, &error), nullptr);
  EXPECT_NE(error.find("cannot listen"), std::string::npos) << error;
  listener->stop();
}

}  // namespace
}  // namespace synod::server
