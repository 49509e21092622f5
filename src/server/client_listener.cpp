#include "server/client_listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string_view>

#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "server/relay.h"
#include "server/tls.h"

namespace synod::server {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHead = 8192;  // an HTTP request head larger than this is refused
constexpr auto kFirstBytesWait = std::chrono::seconds(10);
constexpr auto kHttpRequestWait = std::chrono::seconds(5);
constexpr size_t kMaxConnectionThreads = 1024;  // connections being told apart or served

int wait_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// Waits for `fd` to be readable before `deadline`.
bool readable(int fd, Clock::time_point deadline) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    const int r = ::poll(&p, 1, wait_ms(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

// What an HTTP exchange needs of a connection, plain or TLS.
struct Stream {
  std::function<ssize_t(char*, size_t)> read_some;  // > 0 bytes read; <= 0 end, error or late
  std::function<bool(const std::string&)> write_all;
};

bool write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// Reads one request head from `stream`, answers it with `handler` and writes the response.
void answer_http(const Stream& stream, const HttpHandler& handler) {
  std::string received;
  while (received.find("\r\n\r\n") == std::string::npos && received.size() < kMaxHead) {
    char buf[2048];
    const ssize_t n = stream.read_some(buf, sizeof buf);
    if (n <= 0) break;
    received.append(buf, static_cast<size_t>(n));
  }
  HttpRequest req;
  HttpResponse resp;
  if (received.find("\r\n\r\n") == std::string::npos || !parse_http_request(received, &req)) {
    resp.status = 400;
    resp.body = "400 Bad Request";
  } else {
    try {
      resp = handler(req);
    } catch (const std::exception& e) {
      spdlog::error("http: {} {}: {}", req.method, req.path, e.what());
      resp = HttpResponse{503, "text/plain; charset=utf-8", "internal error\n"};
    }
    if (req.method == "HEAD") resp.body.clear();
  }
  stream.write_all(render_http_response(resp));
}

// Peeks at what a client sent first, without taking it, until `enough` says it is enough or
// the deadline (or `stopping`) ends the wait. Returns the bytes seen.
std::string peek(int fd, size_t most, const std::function<bool(std::string_view)>& enough,
                 const std::atomic<bool>& stopping) {
  std::string seen(most, '\0');
  size_t n = 0;
  const auto deadline = Clock::now() + kFirstBytesWait;
  while (!stopping.load() && Clock::now() < deadline) {
    if (!readable(fd, std::min(deadline, Clock::now() + std::chrono::milliseconds(200)))) continue;
    const ssize_t got = ::recv(fd, seen.data(), most, MSG_PEEK);
    if (got <= 0) {
      n = 0;
      break;
    }
    n = static_cast<size_t>(got);
    if (n == most || enough(std::string_view(seen).substr(0, n))) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a partial first segment
  }
  seen.resize(n);
  return seen;
}

}  // namespace

bool looks_like_http1(const char* data, size_t size) {
  if (size < 4) return false;
  static constexpr const char* kMethods[] = {"GET ", "HEAD", "POST", "PUT ",
                                             "DELE", "OPTI", "PATC", "TRAC"};
  for (const char* m : kMethods) {
    if (std::memcmp(data, m, 4) == 0) return true;
  }
  return false;
}

bool parse_http_request(const std::string& head, HttpRequest* out) {
  const size_t eol = head.find("\r\n");
  if (eol == std::string::npos) return false;
  const std::string line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return false;
  const std::string version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
  out->method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty() || target[0] != '/') return false;
  const size_t q = target.find('?');
  out->path = url_decode(target.substr(0, q));
  out->query.clear();
  if (q != std::string::npos) {
    std::string_view rest(target);
    rest.remove_prefix(q + 1);
    while (!rest.empty()) {
      const size_t amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      const size_t eq = pair.find('=');
      out->query[url_decode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  return true;
}

std::string render_http_response(const HttpResponse& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  out += "Access-Control-Allow-Headers: accept, content-type, authorization\r\n";
  out += "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n";
  out += "Access-Control-Allow-Origin: *\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

std::unique_ptr<ClientListener> ClientListener::open(const std::vector<Url>& urls,
                                                     std::string* error) {
  std::vector<Socket> sockets;
  auto fail = [&](const std::string& what) {
    for (const Socket& s : sockets) ::close(s.fd);
    *error = what;
    return nullptr;
  };
  for (const Url& u : urls) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(u.port);
    if (const int rc = ::getaddrinfo(u.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      return fail("cannot resolve " + u.str() + ": " + ::gai_strerror(rc));
    }
    size_t bound = 0;
    std::string last_error;
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      const int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (a->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
        last_error = std::strerror(errno);
        ::close(fd);
        continue;
      }
      sockets.push_back({fd, u.scheme == "https"});
      ++bound;
    }
    ::freeaddrinfo(found);
    if (bound == 0) return fail("cannot listen on " + u.str() + ": " + last_error);
  }
  return std::unique_ptr<ClientListener>(new ClientListener(std::move(sockets)));
}

ClientListener::~ClientListener() {
  stop();
}

void ClientListener::start(Backends backends, HttpHandler handler) {
  backends_ = backends;
  handler_ = std::move(handler);
  for (const Socket& s : listening_) acceptors_.emplace_back([this, s] { accept_loop(s); });
}

void ClientListener::stop() {
  stopping_.store(true);
  for (std::thread& t : acceptors_) t.join();
  acceptors_.clear();
  for (const Socket& s : listening_) ::close(s.fd);
  listening_.clear();
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return in_flight_ == 0; });
}

void ClientListener::accept_loop(Socket listening) {
  while (!stopping_.load()) {
    pollfd p{listening.fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = ::accept4(listening.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    {
      std::lock_guard lock(mu_);
      if (in_flight_ >= kMaxConnectionThreads) {
        ::close(fd);
        continue;
      }
      ++in_flight_;
    }
    std::thread([this, fd, tls = listening.tls] {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (tls) {
        serve_tls(fd);
      } else {
        serve(fd);
      }
      std::lock_guard lock(mu_);
      if (--in_flight_ == 0) idle_.notify_all();
    }).detach();
  }
}

void ClientListener::serve(int fd) {
  // Peek at the first bytes without taking them: gRPC must read them itself.
  const std::string first = peek(
      fd, 4, [](std::string_view) { return false; }, stopping_);
  if (looks_like_http1(first.data(), first.size())) {
    const auto deadline = Clock::now() + kHttpRequestWait;
    Stream plain;
    plain.read_some = [&](char* buf, size_t size) -> ssize_t {
      if (!readable(fd, deadline)) return -1;
      return ::recv(fd, buf, size, 0);
    };
    plain.write_all = [&](const std::string& bytes) { return write_all(fd, bytes); };
    answer_http(plain, handler_);
    ::shutdown(fd, SHUT_WR);
  } else if (!first.empty() && backends_.grpc != nullptr && !stopping_.load()) {
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    grpc::AddInsecureChannelFromFd(backends_.grpc, fd);  // gRPC owns the socket now
    return;
  }
  ::close(fd);
}

void ClientListener::serve_tls(int fd) {
  auto decided = [](std::string_view seen) {
    return route_client_hello(reinterpret_cast<const uint8_t*>(seen.data()), seen.size()) !=
           TlsRoute::kNeedMore;
  };
  const std::string first = peek(fd, kMaxClientHelloBytes, decided, stopping_);
  switch (route_client_hello(reinterpret_cast<const uint8_t*>(first.data()), first.size())) {
    case TlsRoute::kHttp:
      if (backends_.https != nullptr) return serve_https(fd);
      break;
    case TlsRoute::kGrpc:
      // The relay owns the socket now, or closed it.
      if (backends_.tls_grpc != nullptr && !stopping_.load()) {
        backends_.tls_grpc->add(fd);
        return;
      }
      break;
    case TlsRoute::kPlainHttp:
      // What Go's HTTP server (and so etcd) answers.
      write_all(fd,
                "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS "
                "server.\n");
      ::shutdown(fd, SHUT_WR);
      break;
    case TlsRoute::kNeedMore:
    case TlsRoute::kNotTls:
      break;
  }
  ::close(fd);
}

void ClientListener::serve_https(int fd) {
  // The socket is blocking: these bound every handshake read and write.
  const timeval wait{static_cast<time_t>(kHttpRequestWait.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait);
  SSL* ssl = SSL_new(backends_.https->get());
  if (ssl != nullptr && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
    const auto deadline = Clock::now() + kHttpRequestWait;
    Stream tls;
    tls.read_some = [&](char* buf, size_t size) -> ssize_t {
      if (Clock::now() >= deadline) return -1;
      return SSL_read(ssl, buf, static_cast<int>(size));
    };
    tls.write_all = [&](const std::string& bytes) {
      return SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) ==
             static_cast<int>(bytes.size());
    };
    answer_http(tls, handler_);
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
  ::close(fd);
}

}  // namespace synod::server
