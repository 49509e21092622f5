#include "core/pbft/crypto.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "base/assert.h"

namespace synod::pbft {

namespace {

// libsodium's one-time setup; safe to call from any thread, any number of times.
void init() {
  static const int ok = sodium_init();
  SYNOD_ASSERT(ok >= 0);
}

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

SecretKeys keys_from(const std::array<uint8_t, 32>& kx_seed,
                     const std::array<uint8_t, 32>& sign_seed) {
  SecretKeys k;
  crypto_box_seed_keypair(k.pub.kx.data(), k.kx.data(), kx_seed.data());
  crypto_sign_seed_keypair(k.pub.sign.data(), k.sign.data(), sign_seed.data());
  return k;
}

constexpr size_t kMaxCachedClients = 4096;

}  // namespace

Digest hash(std::string_view bytes) {
  init();
  Digest d;
  crypto_generichash(d.data(), d.size(), bytes_of(bytes), bytes.size(), nullptr, 0);
  return d;
}

std::string to_hex(const uint8_t* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

std::string short_hex(const Digest& d, size_t n) {
  return to_hex(d).substr(0, n);
}

SecretKeys make_keys() {
  init();
  std::array<uint8_t, 32> kx_seed;
  std::array<uint8_t, 32> sign_seed;
  randombytes_buf(kx_seed.data(), kx_seed.size());
  randombytes_buf(sign_seed.data(), sign_seed.size());
  SecretKeys k = keys_from(kx_seed, sign_seed);
  sodium_memzero(kx_seed.data(), kx_seed.size());
  sodium_memzero(sign_seed.data(), sign_seed.size());
  return k;
}

SecretKeys make_keys_from_seed(uint64_t seed, uint64_t who) {
  init();
  std::string material = "synod-pbft-key";
  material.append(reinterpret_cast<const char*>(&seed), sizeof seed);
  material.append(reinterpret_cast<const char*>(&who), sizeof who);
  const Digest kx_seed = hash(material + "/kx");
  const Digest sign_seed = hash(material + "/sign");
  return keys_from(kx_seed, sign_seed);
}

std::optional<Digest> shared_key(const std::array<uint8_t, 32>& my_kx_secret,
                                 const PublicKey& my_kx_public, const PublicKey& their_kx_public) {
  init();
  std::array<uint8_t, crypto_scalarmult_BYTES> dh;
  if (crypto_scalarmult(dh.data(), my_kx_secret.data(), their_kx_public.data()) != 0) {
    return std::nullopt;
  }
  // Both sides hash the same bytes: the secret, then the two public keys in a fixed order.
  const PublicKey& lo = std::min(my_kx_public, their_kx_public);
  const PublicKey& hi = std::max(my_kx_public, their_kx_public);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, sizeof(Digest));
  crypto_generichash_update(&st, dh.data(), dh.size());
  crypto_generichash_update(&st, lo.data(), lo.size());
  crypto_generichash_update(&st, hi.data(), hi.size());
  Digest key;
  crypto_generichash_final(&st, key.data(), key.size());
  sodium_memzero(dh.data(), dh.size());
  return key;
}

Mac mac(const Digest& key, std::string_view bytes) {
  init();
  Mac tag;
  crypto_generichash(tag.data(), tag.size(), bytes_of(bytes), bytes.size(), key.data(), key.size());
  return tag;
}

bool check_mac(const Digest& key, std::string_view bytes, const Mac& tag) {
  const Mac expected = mac(key, bytes);
  return sodium_memcmp(expected.data(), tag.data(), tag.size()) == 0;
}

Signature sign(const std::array<uint8_t, 64>& sign_secret, std::string_view bytes) {
  init();
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, bytes_of(bytes), bytes.size(), sign_secret.data());
  return sig;
}

bool check_signature(const PublicKey& sign_public, std::string_view bytes, const Signature& sig) {
  init();
  return crypto_sign_verify_detached(sig.data(), bytes_of(bytes), bytes.size(),
                                     sign_public.data()) == 0;
}

// --- Keyring ----------------------------------------------------------------------------------

Keyring::Keyring(SecretKeys mine, std::map<uint64_t, PublicKeys> replicas)
    : mine_(mine), replicas_(std::move(replicas)) {
  for (const auto& [id, pub] : replicas_) {
    if (std::optional<Digest> key = shared_key(mine_.kx, mine_.pub.kx, pub.kx)) {
      replica_keys_.emplace(id, *key);
    }
  }
}

Mac Keyring::mac_for(uint64_t replica, std::string_view bytes) const {
  auto it = replica_keys_.find(replica);
  SYNOD_ASSERT(it != replica_keys_.end());
  return mac(it->second, bytes);
}

bool Keyring::check_mac_from(uint64_t replica, std::string_view bytes, const Mac& tag) const {
  auto it = replica_keys_.find(replica);
  return it != replica_keys_.end() && check_mac(it->second, bytes, tag);
}

std::optional<Digest> Keyring::client_key(const PublicKey& client) const {
  auto it = client_keys_.find(client);
  if (it != client_keys_.end()) return it->second;
  std::optional<Digest> key = shared_key(mine_.kx, mine_.pub.kx, client);
  if (!key) return std::nullopt;
  if (client_keys_.size() >= kMaxCachedClients) client_keys_.clear();
  client_keys_.emplace(client, *key);
  return key;
}

std::optional<Mac> Keyring::mac_for_client(const PublicKey& client, std::string_view bytes) const {
  std::optional<Digest> key = client_key(client);
  if (!key) return std::nullopt;
  return mac(*key, bytes);
}

bool Keyring::check_mac_from_client(const PublicKey& client, std::string_view bytes,
                                    const Mac& tag) const {
  std::optional<Digest> key = client_key(client);
  return key && check_mac(*key, bytes, tag);
}

Signature Keyring::sign(std::string_view bytes) const {
  return pbft::sign(mine_.sign, bytes);
}

bool Keyring::check_signature_of(uint64_t replica, std::string_view bytes,
                                 const Signature& sig) const {
  auto it = replicas_.find(replica);
  return it != replicas_.end() && check_signature(it->second.sign, bytes, sig);
}

}  // namespace synod::pbft
