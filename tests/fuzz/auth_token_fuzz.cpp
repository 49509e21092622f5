// Authentication: the tokens a client presents (any bytes in its "token" metadata) and the auth
// tables a member loads (from its backend, or from an image a peer sent).
//
// Input: a u16 length, that many bytes for the tokens, then the rest for the auth tables.
//   Tokens: up to 64 operations, each an op byte and its strings: a login (user, token)
//   applied, a user deleted or given a new password, authentication disabled, or a token looked
//   up (user_of), which must name the user of the last login that made it unless something
//   since forgot it. The same bytes go to a JWT verifier (jwt.h, ES256 with a key made at
//   start): a looked-up token must not verify, and a login's user, signed, must verify as
//   itself.
//   Auth tables: up to 64 (key, value) pairs under table 'a' (the key is 'a' + bytes), taken as
//   a restore takes them: the records are decoded (AuthStore::decode) and an accepted set is
//   loaded; then check() and check_admin() for every user, and for a caller and ranges from the
//   input.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "fuzz_support.h"
#include "kv/auth_store.h"
#include "kv/mem_backend.h"
#include "server/auth.h"
#include "server/jwt.h"

namespace synod {
namespace {

constexpr size_t kMaxOps = 64;
constexpr int64_t kNow = 1'800'000'000;

// An ES256 verifier and signer whose key pair is made once, in files under /tmp.
const server::JwtTokens& jwt() {
  static const std::unique_ptr<server::JwtTokens> tokens = [] {
    const std::string base = "/tmp/synod-fuzz-jwt-" + std::to_string(::getpid());
    const std::string pub = base + ".pub";
    const std::string priv = base + ".key";
    EVP_PKEY* key = EVP_EC_gen("P-256");
    FILE* f = std::fopen(pub.c_str(), "w");
    PEM_write_PUBKEY(f, key);
    std::fclose(f);
    f = std::fopen(priv.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    EVP_PKEY_free(key);
    std::string error;
    auto made = server::JwtTokens::make({pub, priv, "ES256", std::chrono::seconds(300)}, &error);
    std::remove(pub.c_str());
    std::remove(priv.c_str());
    if (!made) fuzz::property_failed(("no JWT signer: " + error).c_str());
    return made;
  }();
  return *tokens;
}

void fuzz_tokens(fuzz::ByteReader in) {
  server::Tokens tokens(std::chrono::seconds(300));
  std::map<std::string, std::string> expected;  // token -> user, for tokens still known
  for (size_t n = 0; n < kMaxOps && !in.empty(); ++n) {
    const uint8_t op = in.byte() % 5;
    synodpb::AuthRequest req;
    if (op == 0) {
      const std::string user(in.short_string(32));
      const std::string token(in.short_string(64));
      req.mutable_login()->set_name(user);
      req.mutable_login()->set_token(token);
      tokens.on_applied(req);
      expected[token] = user;
      // A name that is not UTF-8 text is not signed (JSON cannot carry it).
      if (const std::optional<std::string> signed_token = jwt().sign(user, n + 1, kNow)) {
        const std::optional<server::JwtClaims> claims = jwt().verify(*signed_token, kNow);
        if (!claims || claims->user != user || claims->revision != n + 1)
          fuzz::property_failed("a signed token does not verify as its user");
      }
    } else if (op == 1 || op == 2) {
      const std::string user(in.short_string(32));
      if (op == 1) {
        req.set_user_delete(user);
      } else {
        req.mutable_user_change_password()->set_name(user);
      }
      tokens.on_applied(req);
      std::erase_if(expected, [&](const auto& entry) { return entry.second == user; });
    } else if (op == 3) {
      req.mutable_disable();
      tokens.on_applied(req);
      expected.clear();
    } else {
      const std::string token(in.short_string(64));
      const std::optional<std::string> user = tokens.user_of(token);
      const auto it = expected.find(token);
      if (user.has_value() != (it != expected.end()) || (user && *user != it->second))
        fuzz::property_failed("user_of disagrees with the logins applied");
      if (jwt().verify(token, kNow)) fuzz::property_failed("input bytes verified as a JWT");
    }
  }
  if (tokens.size() != expected.size())
    fuzz::property_failed("the token table holds another number of tokens");
}

void fuzz_auth_tables(fuzz::ByteReader in) {
  kv::MemBackend backend;
  kv::WriteBatch batch;
  for (size_t n = 0; n < kMaxOps && in.remaining() > 1; ++n) {
    std::string key = "a" + std::string(in.short_string(32));
    batch.put(std::move(key), std::string(in.take(in.u16() % 1024)));
  }
  backend.write(std::move(batch));
  std::string why;
  const std::optional<kv::AuthStore> decoded = kv::AuthStore::decode(backend, &why);
  if (!decoded) {
    if (why.empty()) fuzz::property_failed("auth tables refused without a reason");
    return;
  }
  const kv::AuthStore store = kv::AuthStore::load(backend);
  for (const std::string& name : store.user_names()) {
    for (uint64_t revision : {uint64_t{0}, store.revision(), store.revision() + 1}) {
      const kv::Caller caller{name, revision};
      (void)store.check(caller, "a", "", kv::Access::kRead);
      (void)store.check(caller, std::string(1, '\0'), std::string(1, '\0'), kv::Access::kWrite);
      (void)store.check_admin(caller);
      for (const std::string& role : store.role_names()) (void)store.has_role(name, role);
    }
  }
  // Ranges from the input, for a user the tables may name.
  const kv::Caller caller{std::string(in.short_string(16)), store.revision()};
  for (size_t n = 0; n < 16 && !in.empty(); ++n) {
    const std::string key(in.short_string(16));
    const std::string range_end(in.short_string(16));
    const kv::Access access = in.byte() % 2 == 0 ? kv::Access::kRead : kv::Access::kWrite;
    (void)store.check(caller, key, range_end, access);
  }
  (void)store.check_admin(caller);
}

}  // namespace
}  // namespace synod

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace synod;
  fuzz::ByteReader in(data, size);
  const std::string_view token_part = in.take(in.u16());
  fuzz_tokens(
      fuzz::ByteReader(reinterpret_cast<const uint8_t*>(token_part.data()), token_part.size()));
  fuzz_auth_tables(in);
  return 0;
}
