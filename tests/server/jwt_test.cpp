// JWT auth tokens: the --auth-token options, every signing method round trip, and tokens refused
// for a bad signature, another key, a changed claim, a header naming another method, expiry and
// malformed text.
#include "server/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace synod::server {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNow = 1'800'000'000;

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = fs::temp_directory_path() / ("synod-jwt-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a fresh key pair ("rsa", or an EC curve's name) as NAME.pub and NAME.key.
  JwtOptions keys(const std::string& name, const std::string& kind, const std::string& method) {
    EVP_PKEY* key = kind == "rsa" ? EVP_RSA_gen(2048) : EVP_EC_gen(kind.c_str());
    EXPECT_NE(key, nullptr);
    JwtOptions o;
    o.public_key_path = (dir_ / (name + ".pub")).string();
    o.private_key_path = (dir_ / (name + ".key")).string();
    o.method = method;
    FILE* pub = std::fopen(o.public_key_path.c_str(), "w");
    PEM_write_PUBKEY(pub, key);
    std::fclose(pub);
    FILE* priv = std::fopen(o.private_key_path.c_str(), "w");
    PEM_write_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(priv);
    EVP_PKEY_free(key);
    return o;
  }

  std::unique_ptr<JwtTokens> make(const JwtOptions& o) {
    std::string error;
    auto t = JwtTokens::make(o, &error);
    EXPECT_NE(t, nullptr) << error;
    return t;
  }

  fs::path dir_;
};

TEST_F(JwtTest, ParsesEtcdsOptions) {
  std::string error;
  auto o = parse_jwt_options(",pub-key=a.pub,priv-key=a.key,sign-method=RS512,ttl=1h30m", &error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->public_key_path, "a.pub");
  EXPECT_EQ(o->private_key_path, "a.key");
  EXPECT_EQ(o->method, "RS512");
  EXPECT_EQ(o->ttl.count(), 5400);
  o = parse_jwt_options(",pub-key=a.pub,sign-method=ES256", &error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->ttl.count(), 300);  // etcd's default
  EXPECT_FALSE(parse_jwt_options(",pub-key=a.pub,sign-method=HS256", &error));
  EXPECT_NE(error.find("sign-method"), std::string::npos) << error;
  EXPECT_FALSE(parse_jwt_options(",sign-method=RS256", &error));
  EXPECT_NE(error.find("pub-key"), std::string::npos) << error;
  EXPECT_FALSE(parse_jwt_options(",pub-key=a,sign-method=RS256,colour=red", &error));
  EXPECT_NE(error.find("unknown jwt option 'colour'"), std::string::npos) << error;
  for (const char* ttl : {"ttl=", "ttl=5", "ttl=5x", "ttl=m", "ttl=0s"}) {
    EXPECT_FALSE(parse_jwt_options(std::string(",pub-key=a,sign-method=RS256,") + ttl, &error))
        << ttl;
  }
}

TEST_F(JwtTest, EveryMethodSignsWhatItVerifies) {
  const std::pair<const char*, const char*> methods[] = {
      {"RS256", "rsa"}, {"RS384", "rsa"},   {"RS512", "rsa"},   {"PS256", "rsa"},  {"PS384", "rsa"},
      {"PS512", "rsa"}, {"ES256", "P-256"}, {"ES384", "P-384"}, {"ES512", "P-521"}};
  for (const auto& [method, kind] : methods) {
    auto t = make(keys(method, kind, method));
    ASSERT_NE(t, nullptr);
    for (int i = 0; i < 4; ++i) {  // ECDSA and PSS signatures differ each time
      auto token = t->sign("alice", 7, kNow);
      ASSERT_TRUE(token) << method;
      auto claims = t->verify(*token, kNow + 299);
      ASSERT_TRUE(claims) << method << " " << *token;
      EXPECT_EQ(claims->user, "alice");
      EXPECT_EQ(claims->revision, 7u);
      EXPECT_EQ(claims->expires_unix_s, kNow + 300);
      EXPECT_FALSE(t->verify(*token, kNow + 300)) << method << ": expired";
    }
  }
}

TEST_F(JwtTest, RefusesTokensItDidNotSign) {
  auto a = make(keys("a", "rsa", "RS256"));
  auto b = make(keys("b", "rsa", "RS256"));
  const std::string token = *a->sign("alice", 3, kNow);
  EXPECT_FALSE(b->verify(token, kNow)) << "another key";
  // A claim changed after signing: root instead of alice.
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  const std::string forged_claims = R"({"exp":1900000000,"revision":3,"username":"root"})";
  std::string encoded(
      sodium_base64_ENCODED_LEN(forged_claims.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
      '\0');
  sodium_bin2base64(encoded.data(), encoded.size(),
                    reinterpret_cast<const unsigned char*>(forged_claims.data()),
                    forged_claims.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  encoded.resize(encoded.size() - 1);
  EXPECT_FALSE(a->verify(token.substr(0, dot1 + 1) + encoded + token.substr(dot2), kNow));
  // "alg":"none" with no signature.
  EXPECT_FALSE(a->verify("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + encoded + ".", kNow));
  for (const char* junk : {"", ".", "..", "...", "a.b.c", "abc", "simpletoken.12"}) {
    EXPECT_FALSE(a->verify(junk, kNow)) << junk;
  }
  // Every byte changed in turn.
  for (size_t i = 0; i < token.size(); ++i) {
    std::string bad = token;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    if (bad != token) {
      EXPECT_FALSE(a->verify(bad, kNow)) << i;
    }
  }
}

// Found by the auth_token fuzz harness: the JSON writer threw on such a name.
TEST_F(JwtTest, ANameThatIsNotUtf8IsNotSigned) {
  auto t = make(keys("utf", "P-256", "ES256"));
  EXPECT_FALSE(t->sign("al\xc3ice", 1, kNow));
  EXPECT_TRUE(t->sign("al\xc3\xa9ice", 1, kNow));
}

TEST_F(JwtTest, RefusesKeysThatDoNotSuitTheMethod) {
  std::string error;
  EXPECT_FALSE(JwtTokens::make(keys("ec", "P-256", "RS256"), &error));
  EXPECT_NE(error.find("does not suit RS256"), std::string::npos) << error;
  EXPECT_FALSE(JwtTokens::make(keys("p384", "P-384", "ES256"), &error));
  EXPECT_NE(error.find("prime256v1"), std::string::npos) << error;
  JwtOptions mixed = keys("one", "rsa", "RS256");
  mixed.private_key_path = keys("two", "rsa", "RS256").private_key_path;
  EXPECT_FALSE(JwtTokens::make(mixed, &error));
  EXPECT_NE(error.find("not one key pair"), std::string::npos) << error;
  JwtOptions missing = keys("three", "rsa", "RS256");
  missing.public_key_path += ".gone";
  EXPECT_FALSE(JwtTokens::make(missing, &error));
  EXPECT_NE(error.find("cannot read pub-key"), std::string::npos) << error;
}

TEST_F(JwtTest, AMemberWithThePublicKeyOnlyVerifiesAndSignsNothing) {
  const JwtOptions full = keys("pair", "P-256", "ES256");
  JwtOptions verify_only = full;
  verify_only.private_key_path.clear();
  auto signer = make(full);
  auto checker = make(verify_only);
  EXPECT_FALSE(checker->can_sign());
  EXPECT_FALSE(checker->sign("alice", 1, kNow));
  auto claims = checker->verify(*signer->sign("alice", 1, kNow), kNow);
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->user, "alice");
}

}  // namespace
}  // namespace synod::server
