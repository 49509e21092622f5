#include "server/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "server/tls.h"

namespace synod::server {

namespace {

enum class KeyKind { kRsa, kRsaPss, kEc };

struct Method {
  std::string_view name;
  const EVP_MD* (*digest)();
  KeyKind kind;
  std::string_view curve;  // kEc: OpenSSL's group name
  size_t ec_bytes;         // kEc: bytes of r and of s
};

constexpr Method kMethods[] = {
    {"RS256", EVP_sha256, KeyKind::kRsa, "", 0},
    {"RS384", EVP_sha384, KeyKind::kRsa, "", 0},
    {"RS512", EVP_sha512, KeyKind::kRsa, "", 0},
    {"PS256", EVP_sha256, KeyKind::kRsaPss, "", 0},
    {"PS384", EVP_sha384, KeyKind::kRsaPss, "", 0},
    {"PS512", EVP_sha512, KeyKind::kRsaPss, "", 0},
    {"ES256", EVP_sha256, KeyKind::kEc, "prime256v1", 32},
    {"ES384", EVP_sha384, KeyKind::kEc, "secp384r1", 48},
    {"ES512", EVP_sha512, KeyKind::kEc, "secp521r1", 66},
};

const Method* find_method(std::string_view name) {
  for (const Method& m : kMethods) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string base64url(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::optional<std::string> unbase64url(std::string_view text) {
  std::string out(text.size() * 3 / 4 + 3, '\0');
  size_t size = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &size, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(size);
  return out;
}

// A Go duration of whole seconds or more: "300s", "5m", "1h30m".
std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    const size_t digits_from = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && n < 1'000'000'000) {
      n = n * 10 + (text[i++] - '0');
    }
    if (i == digits_from || i == text.size()) return std::nullopt;
    const char unit = text[i++];
    if (unit == 'h') {
      total += n * 3600;
    } else if (unit == 'm') {
      total += n * 60;
    } else if (unit == 's') {
      total += n;
    } else {
      return std::nullopt;
    }
  }
  return std::chrono::seconds(total);
}

EVP_PKEY* read_key(const std::string& path, bool is_private, std::string* error) {
  const std::optional<std::string> pem =
      read_pem_file(path, is_private ? "priv-key" : "pub-key", error);
  if (!pem) {
    *error = "--auth-token: " + *error;
    return nullptr;
  }
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  EVP_PKEY* key = nullptr;
  if (bio != nullptr) {
    key = is_private ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                     : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  }
  BIO_free(bio);
  if (key == nullptr) {
    *error =
        "--auth-token: '" + path + "' is not a PEM " + (is_private ? "private key" : "public key");
  }
  return key;
}

bool suits(EVP_PKEY* key, const Method& m) {
  if (m.kind == KeyKind::kEc) {
    char group[64] = {};
    size_t len = 0;
    return EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1 &&
           std::string_view(group, len) == m.curve;
  }
  return EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) >= 2048;
}

// Sets up `ctx` to sign or verify with `key` by `m`.
bool init(EVP_MD_CTX* ctx, EVP_PKEY* key, const Method& m, bool signing) {
  EVP_PKEY_CTX* pctx = nullptr;
  const int ok = signing ? EVP_DigestSignInit(ctx, &pctx, m.digest(), nullptr, key)
                         : EVP_DigestVerifyInit(ctx, &pctx, m.digest(), nullptr, key);
  if (ok != 1) return false;
  if (m.kind != KeyKind::kRsaPss) return true;
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
}

// ECDSA's DER signature as JWS's r||s (RFC 7518 3.4), and back.
std::optional<std::string> der_to_raw(const std::string& der, size_t half) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return std::nullopt;
  std::string raw(2 * half, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  const bool ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, static_cast<int>(half)) > 0 &&
                  BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + half, static_cast<int>(half)) > 0;
  ECDSA_SIG_free(sig);
  if (!ok) return std::nullopt;
  return raw;
}

std::optional<std::string> raw_to_der(const std::string& raw, size_t half) {
  if (raw.size() != 2 * half) return std::nullopt;
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(in, static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(in + half, static_cast<int>(half), nullptr);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (r == nullptr || s == nullptr || sig == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);  // frees r and s
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

std::optional<JwtOptions> parse_jwt_options(std::string_view options, std::string* error) {
  JwtOptions out;
  size_t from = 0;
  while (from <= options.size()) {
    const size_t comma = std::min(options.find(',', from), options.size());
    const std::string_view item = options.substr(from, comma - from);
    from = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? "" : item.substr(eq + 1));
    if (key == "pub-key") {
      out.public_key_path = value;
    } else if (key == "priv-key") {
      out.private_key_path = value;
    } else if (key == "sign-method") {
      out.method = value;
    } else if (key == "ttl") {
      std::optional<std::chrono::seconds> ttl = parse_duration(value);
      if (!ttl || ttl->count() < 1) {
        *error = "--auth-token: ttl '" + value + "' is not a duration of a second or more (5m)";
        return std::nullopt;
      }
      out.ttl = *ttl;
    } else {
      *error = "--auth-token: unknown jwt option '" + std::string(key) +
               "' (known: pub-key, priv-key, sign-method, ttl)";
      return std::nullopt;
    }
  }
  if (find_method(out.method) == nullptr) {
    *error =
        "--auth-token: jwt needs sign-method RS256, RS384, RS512, PS256, PS384, PS512, "
        "ES256, ES384 or ES512, got '" +
        out.method + "'";
    return std::nullopt;
  }
  if (out.public_key_path.empty()) {
    *error = "--auth-token: jwt needs pub-key=PATH (a PEM public key)";
    return std::nullopt;
  }
  return out;
}

std::unique_ptr<JwtTokens> JwtTokens::make(const JwtOptions& options, std::string* error) {
  const Method* m = find_method(options.method);
  if (m == nullptr) {
    *error = "--auth-token: unknown sign-method '" + options.method + "'";
    return nullptr;
  }
  EVP_PKEY* pub = read_key(options.public_key_path, false, error);
  if (pub == nullptr) return nullptr;
  EVP_PKEY* priv = nullptr;
  if (!options.private_key_path.empty()) {
    priv = read_key(options.private_key_path, true, error);
    if (priv == nullptr) {
      EVP_PKEY_free(pub);
      return nullptr;
    }
  }
  auto tokens = std::unique_ptr<JwtTokens>(new JwtTokens(options, pub, priv));
  if (!suits(pub, *m)) {
    *error = "--auth-token: the pub-key does not suit " + options.method + " (" +
             (m->kind == KeyKind::kEc ? "an EC key on " + std::string(m->curve)
                                      : std::string("an RSA key of 2048 bits or more")) +
             ")";
    return nullptr;
  }
  if (priv != nullptr && EVP_PKEY_eq(pub, priv) != 1) {
    *error = "--auth-token: priv-key and pub-key are not one key pair";
    return nullptr;
  }
  return tokens;
}

JwtTokens::~JwtTokens() {
  EVP_PKEY_free(public_key_);
  EVP_PKEY_free(private_key_);
}

std::optional<std::string> JwtTokens::sign(const std::string& user, uint64_t revision,
                                           int64_t now_unix_s) const {
  if (private_key_ == nullptr) return std::nullopt;
  const Method& m = *find_method(options_.method);
  const nlohmann::json header = {{"alg", options_.method}, {"typ", "JWT"}};
  const nlohmann::json claims = {
      {"exp", now_unix_s + options_.ttl.count()}, {"revision", revision}, {"username", user}};
  std::string claims_text;
  try {
    claims_text = claims.dump();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a user name that is not UTF-8 text
  }
  const std::string input = base64url(header.dump()) + "." + base64url(claims_text);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string signature;
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  bool ok = ctx != nullptr && init(ctx, private_key_, m, true) &&
            EVP_DigestSign(ctx, nullptr, &len, data, input.size()) == 1;
  if (ok) {
    signature.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &len, data,
                        input.size()) == 1;
    signature.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return std::nullopt;
  if (m.kind == KeyKind::kEc) {
    std::optional<std::string> raw = der_to_raw(signature, m.ec_bytes);
    if (!raw) return std::nullopt;
    signature = std::move(*raw);
  }
  return input + "." + base64url(signature);
}

std::optional<JwtClaims> JwtTokens::verify(std::string_view token, int64_t now_unix_s) const {
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  const std::optional<std::string> header_text = unbase64url(token.substr(0, dot1));
  const std::optional<std::string> claims_text =
      unbase64url(token.substr(dot1 + 1, dot2 - dot1 - 1));
  std::optional<std::string> signature = unbase64url(token.substr(dot2 + 1));
  if (!header_text || !claims_text || !signature) return std::nullopt;
  // The header must name this member's method: a token may not choose how it is checked
  // ("none", or HMAC keyed with the public key).
  const nlohmann::json header = nlohmann::json::parse(*header_text, nullptr, false);
  if (!header.is_object() || !header.contains("alg") || header["alg"] != options_.method) {
    return std::nullopt;
  }
  const Method& m = *find_method(options_.method);
  if (m.kind == KeyKind::kEc) {
    signature = raw_to_der(*signature, m.ec_bytes);
    if (!signature) return std::nullopt;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const std::string_view input = token.substr(0, dot2);
  const bool valid =
      ctx != nullptr && init(ctx, public_key_, m, false) &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature->data()),
                       signature->size(), reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!valid) return std::nullopt;
  const nlohmann::json claims = nlohmann::json::parse(*claims_text, nullptr, false);
  if (!claims.is_object()) return std::nullopt;
  const auto user = claims.find("username");
  const auto revision = claims.find("revision");
  const auto exp = claims.find("exp");
  if (user == claims.end() || !user->is_string() || revision == claims.end() ||
      !revision->is_number_unsigned() || exp == claims.end() || !exp->is_number_integer()) {
    return std::nullopt;
  }
  JwtClaims out{user->get<std::string>(), revision->get<uint64_t>(), exp->get<int64_t>()};
  if (out.expires_unix_s <= now_unix_s) return std::nullopt;
  return out;
}

}  // namespace synod::server
