// A member's side of authentication: the simple tokens it accepts, the caller of a gRPC call,
// and password hashing.
//
// Tokens are etcd's "simple" tokens: random strings that every member learns when the login
// that made them applies (so a token works on any member), kept in memory only, and forgotten
// after --auth-token-ttl seconds without use, when the user is deleted or changes password, or
// when authentication is disabled. A restarted member knows no token: clients log in again, as
// etcd's do on "invalid auth token".
//
// Passwords are hashed with Argon2id (libsodium's crypto_pwhash_str, its interactive limits) by
// the member that takes the request, before it is proposed: the log and the store hold only the
// hash, and every replica applies the same bytes.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kv/auth_store.h"
#include "kv/errors.h"
#include "kv/expected.h"
#include "synodpb/request.pb.h"

namespace synod::server {

struct ServerContext;

// Thread-safe.
class Tokens {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Tokens(std::chrono::seconds ttl) : ttl_(ttl) {}

  // The user a token names, if it is known and has not expired; each use extends it.
  std::optional<std::string> user_of(std::string_view token);
  // Follows an applied auth change: a login adds its token, a user deleted or given a new
  // password loses its tokens, disabling authentication forgets them all.
  void on_applied(const synodpb::AuthRequest& req);
  size_t size() const;  // tokens held, expired ones not yet swept included

  // A new random token (etcd's form: 16 letters, a dot, a number). libsodium must have been
  // initialized (run_server does, at start).
  static std::string generate();

 private:
  struct Entry {
    std::string user;
    Clock::time_point expires;
  };
  void sweep(Clock::time_point now);

  const std::chrono::seconds ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> tokens_;
  size_t swept_size_ = 0;
};

// Seconds since the Unix epoch, by the system clock (JWT "exp").
int64_t unix_now_s();

// The caller of a call, for the auth store's checks: the user its "token" metadata names (or,
// without a token, the common name of its verified client certificate) and the auth revision
// now. With authentication disabled the caller is nobody (nothing is checked).
// Errors: a token this member does not know (invalid auth token).
kv::Expected<kv::Caller, kv::Error> caller_of(const ServerContext& ctx,
                                              const grpc::ServerContextBase& call);
// etcd's IsAdminPermitted for an API-layer check (membership, maintenance): the caller holds
// the root role, or authentication is disabled. etcd's maintenance service answers with the
// auth store's own error, unconverted (gRPC Unknown, "auth: permission denied"): kRaw does too.
enum class AdminErrors { kEtcdserver, kRaw };
std::optional<kv::Error> check_admin(const ServerContext& ctx, const grpc::ServerContextBase& call,
                                     AdminErrors form = AdminErrors::kEtcdserver);
// Stamps a proposal with its caller (etcd's RequestHeader username and auth revision).
inline void stamp(const kv::Caller& caller, synodpb::Request* request) {
  if (caller.revision == 0) return;
  request->set_auth_user(caller.user);
  request->set_auth_revision(caller.revision);
}

// Checks a read done under the store's lock: the caller reads with the permissions in force
// then, so its auth revision is the store's (a JWT's own revision excepted: etcd refuses a read
// made with a token older than the permissions).
inline std::optional<kv::Error> check_read(const kv::AuthStore& auth, kv::Caller caller,
                                           std::string_view key, std::string_view range_end) {
  if (caller.revision != 0 && !caller.revision_from_token) caller.revision = auth.revision();
  return auth.check(caller, key, range_end, kv::Access::kRead);
}

// An error as a Go gRPC client prints it ("rpc error: code = PermissionDenied desc = ..."):
// etcd's watch cancel reasons take this form.
std::string grpc_error_text(const kv::Error& error);

// Argon2id hash of a password, in crypto_pwhash_str's encoded form. Costs about a tenth of a
// second and 64 MiB: call it off the gRPC and raft threads.
// nullopt when libsodium cannot (the hash needs 64 MiB): the caller answers with an error.
std::optional<std::string> hash_password(std::string_view password);
bool password_matches(std::string_view hash, std::string_view password);

}  // namespace synod::server
