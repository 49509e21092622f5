// Passes bytes both ways, untouched, between accepted client connections and a local listener:
// how an https:// client URL hands gRPC its connections. gRPC can adopt an accepted socket only
// without TLS (grpc_server_add_channel_from_fd), so its TLS listener sits on an abstract unix
// socket of the member's own and each gRPC client connection is relayed to it, handshake and
// all: gRPC still terminates TLS and sees the client's certificate.
//
// One thread moves the bytes of every connection (epoll, non-blocking sockets, one bounded
// buffer per direction). A side's end of stream is passed on as a half close; an error on either
// side closes both.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace synod::server {

class Relay {
 public:
  // Relays to the abstract unix socket `backend` (the name without gRPC's "unix-abstract:").
  // nullptr and `error` if the thread cannot be set up.
  static std::unique_ptr<Relay> start(std::string backend, std::string* error);
  // Stops the thread and closes every connection still open.
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Takes `client_fd` (connected, any blocking mode) and relays it; false, with the socket
  // closed, if the backend cannot be reached or kMaxConnections are open. Thread-safe.
  bool add(int client_fd);
  size_t connections() const;

  static constexpr size_t kMaxConnections = 4096;
  static constexpr size_t kBufferBytes = 32 * 1024;  // per direction: two TLS records

 private:
  struct Pair;
  Relay(std::string backend, int epoll_fd, int wake_fd);
  void loop();
  // Moves what it can both ways; false once the pair is finished (closed or failed).
  static bool pump(Pair& p);

  const std::string backend_;
  const int epoll_fd_;
  const int wake_fd_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::unordered_map<Pair*, std::unique_ptr<Pair>> pairs_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace synod::server
