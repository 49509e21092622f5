// JSON Web Tokens for authentication (RFC 7519), as etcd's `--auth-token jwt,...` makes them:
// a header naming the signing method, claims {"exp", "revision", "username"}, and a signature by
// the member's private key. Any member holding the public key verifies a token without state, so
// a token outlives the member that made it, a restart, and a leader change; it lapses at "exp".
//
// The methods are etcd 3.4's: RS256/384/512 (RSA PKCS#1 v1.5), PS256/384/512 (RSA-PSS, salt the
// digest's length) and ES256/384/512 (ECDSA on P-256/384/521, signature r||s as RFC 7518 3.4).
// A member given only the public key verifies tokens and makes none (logins are refused).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

typedef struct evp_pkey_st EVP_PKEY;

namespace synod::server {

// The options of `--auth-token jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m`.
struct JwtOptions {
  std::string public_key_path;
  std::string private_key_path;  // empty: verify only
  std::string method;
  std::chrono::seconds ttl{300};
};

// Parses the --auth-token value after "jwt,". nullopt with a one-line error naming what is wrong.
std::optional<JwtOptions> parse_jwt_options(std::string_view options, std::string* error);

struct JwtClaims {
  std::string user;
  uint64_t revision = 0;
  int64_t expires_unix_s = 0;
};

// Thread-safe once made.
class JwtTokens {
 public:
  // Reads the keys and checks they suit the method. nullptr with a one-line error otherwise.
  static std::unique_ptr<JwtTokens> make(const JwtOptions& options, std::string* error);
  ~JwtTokens();
  JwtTokens(const JwtTokens&) = delete;
  JwtTokens& operator=(const JwtTokens&) = delete;

  bool can_sign() const { return private_key_ != nullptr; }
  // A token for `user` at auth revision `revision`, lapsing `ttl` after `now_unix_s`. nullopt if
  // this member has no private key, `user` is not UTF-8 text, or OpenSSL fails.
  std::optional<std::string> sign(const std::string& user, uint64_t revision,
                                  int64_t now_unix_s) const;
  // The claims of a token whose signature checks with this member's public key and method and
  // whose "exp" is after `now_unix_s`; nullopt for anything else, never an exception.
  std::optional<JwtClaims> verify(std::string_view token, int64_t now_unix_s) const;

 private:
  JwtTokens(JwtOptions options, EVP_PKEY* public_key, EVP_PKEY* private_key)
      : options_(std::move(options)), public_key_(public_key), private_key_(private_key) {}
  const JwtOptions options_;
  EVP_PKEY* const public_key_;
  EVP_PKEY* const private_key_;
};

}  // namespace synod::server
