#include "server/relay.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

namespace synod::server {

namespace {

// Bytes read from one side and not yet written to the other.
struct Buffer {
  std::array<char, Relay::kBufferBytes> bytes;
  size_t begin = 0;
  size_t end = 0;
  bool empty() const { return begin == end; }
};

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int connect_abstract(const std::string& name) {
  sockaddr_un addr{};
  if (name.size() + 1 > sizeof addr.sun_path) return -1;
  addr.sun_family = AF_UNIX;
  addr.sun_path[0] = '\0';
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

// fd[0] is the client, fd[1] the backend; buffer[i] holds what was read from fd[i].
struct Relay::Pair {
  int fd[2] = {-1, -1};
  Buffer buffer[2];
  bool read_done[2] = {false, false};   // fd[i] said end of stream
  bool write_shut[2] = {false, false};  // fd[i] was half closed for writing
  ~Pair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
};

std::unique_ptr<Relay> Relay::start(std::string backend, std::string* error) {
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up
  if (epoll_fd < 0 || wake_fd < 0 || ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev) != 0) {
    *error = std::string("relay: ") + std::strerror(errno);
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (wake_fd >= 0) ::close(wake_fd);
    return nullptr;
  }
  std::unique_ptr<Relay> relay(new Relay(std::move(backend), epoll_fd, wake_fd));
  relay->thread_ = std::thread([r = relay.get()] { r->loop(); });
  return relay;
}

Relay::Relay(std::string backend, int epoll_fd, int wake_fd)
    : backend_(std::move(backend)), epoll_fd_(epoll_fd), wake_fd_(wake_fd) {}

Relay::~Relay() {
  stopping_.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mu_);
    pairs_.clear();
  }
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

size_t Relay::connections() const {
  std::lock_guard lock(mu_);
  return pairs_.size();
}

bool Relay::add(int client_fd) {
  const int backend_fd = connect_abstract(backend_);
  auto pair = std::make_unique<Pair>();
  pair->fd[0] = client_fd;
  pair->fd[1] = backend_fd;
  if (backend_fd < 0 || stopping_.load()) return false;  // ~Pair closes the sockets
  set_nonblocking(client_fd);
  set_nonblocking(backend_fd);
  std::lock_guard lock(mu_);
  if (pairs_.size() >= kMaxConnections) return false;
  Pair* p = pair.get();
  // Edge-triggered: every event runs pump, which goes on until the sockets would block.
  for (int side = 0; side < 2; ++side) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = p;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, p->fd[side], &ev) == 0) continue;
    if (side == 0) return false;  // nothing registered: no event can name the pair
    // The client's socket is registered and may already be pumped: ending both streams makes
    // its next event finish the pair on the relay's thread.
    ::shutdown(p->fd[0], SHUT_RDWR);
    ::shutdown(p->fd[1], SHUT_RDWR);
    pairs_.emplace(p, std::move(pair));
    return false;
  }
  pairs_.emplace(p, std::move(pair));
  return true;
}

bool Relay::pump(Pair& p) {
  // Bounded: each pass either moves bytes or stops a direction; a direction stops when its
  // source would block, has ended, or its buffer is full and its destination would block.
  for (int dir = 0; dir < 2; ++dir) {
    const int from = p.fd[dir];
    const int to = p.fd[1 - dir];
    Buffer& b = p.buffer[dir];
    for (;;) {
      if (!b.empty()) {
        const ssize_t n = ::send(to, b.bytes.data() + b.begin, b.end - b.begin, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) return false;
        b.begin += static_cast<size_t>(n);
        if (b.empty()) b.begin = b.end = 0;
        continue;
      }
      if (p.read_done[dir]) {
        if (!p.write_shut[1 - dir]) {
          ::shutdown(to, SHUT_WR);
          p.write_shut[1 - dir] = true;
        }
        break;
      }
      const ssize_t n = ::recv(from, b.bytes.data(), b.bytes.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) return false;
      if (n == 0) {
        p.read_done[dir] = true;
        continue;
      }
      b.begin = 0;
      b.end = static_cast<size_t>(n);
    }
  }
  return !(p.read_done[0] && p.read_done[1] && p.buffer[0].empty() && p.buffer[1].empty());
}

void Relay::loop() {
  std::vector<epoll_event> events(256);
  std::vector<Pair*> finished;
  while (!stopping_.load()) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    finished.clear();
    for (int i = 0; i < n; ++i) {
      auto* p = static_cast<Pair*>(events[static_cast<size_t>(i)].data.ptr);
      if (p == nullptr) continue;  // woken to stop
      const uint32_t what = events[static_cast<size_t>(i)].events;
      // Both sockets of a pair may report in one batch: a finished pair is pumped no more.
      bool done = false;
      for (Pair* f : finished) done = done || f == p;
      if (done) continue;
      if ((what & EPOLLERR) != 0 || !pump(*p)) finished.push_back(p);
    }
    if (finished.empty()) continue;
    std::lock_guard lock(mu_);
    for (Pair* p : finished) {
      for (int f : p->fd) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, f, nullptr);
      pairs_.erase(p);  // closes both sockets
    }
  }
}

}  // namespace synod::server
