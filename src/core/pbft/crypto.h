// PBFT's cryptography (Castro and Liskov, TOCS 2002, cited TOCS; OSDI '99, cited OSDI): digests,
// MACs between pairs of principals, and signatures, all from libsodium. Pure computation: no
// I/O and no global randomness except in make_keys(); keys for a deterministic run come from
// a seed (make_keys_from_seed), so the simulator replays a run exactly.
//
//   - Digests are BLAKE2b-256 (TOCS 2.1 "a collision-resistant hash function").
//   - Every principal (replica or client) has an X25519 key pair. The MAC key of a pair is the
//     hash of their Diffie-Hellman secret and both public keys: the same key in both directions,
//     computed by either side from its secret and the other's public key, so an operator
//     distributes public keys only (TOCS 4.1 "each pair of principals shares a session key";
//     the paper refreshes them, this code derives them). MACs are keyed BLAKE2b-128.
//   - Replicas also have an Ed25519 key pair; signatures authenticate the messages that are
//     forwarded inside others (view changes inside a new view: a MAC convinces only its
//     receiver, TOCS 4.1).
//
// Thread-safety: a Keyring is not thread-safe (its client-key cache mutates on use).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace synod::pbft {

using Digest = std::array<uint8_t, 32>;
using Mac = std::array<uint8_t, 16>;
using Signature = std::array<uint8_t, 64>;
using PublicKey = std::array<uint8_t, 32>;

Digest hash(std::string_view bytes);
std::string to_hex(const uint8_t* bytes, size_t n);
template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& a) {
  return to_hex(a.data(), N);
}
// The first `n` hex digits, for logs and transcripts.
std::string short_hex(const Digest& d, size_t n = 8);

// What others know of a principal.
struct PublicKeys {
  PublicKey kx;    // X25519: MAC keys
  PublicKey sign;  // Ed25519: signatures (replicas)

  bool operator==(const PublicKeys&) const = default;
};

struct SecretKeys {
  std::array<uint8_t, 32> kx;
  std::array<uint8_t, 64> sign;
  PublicKeys pub;
};

// Fresh keys from libsodium's generator (the `synod` key subcommand).
SecretKeys make_keys();
// Keys determined by (seed, who): the simulator's and the tests'.
SecretKeys make_keys_from_seed(uint64_t seed, uint64_t who);

// The MAC key two principals share (either side computes it); nullopt for a degenerate public
// key (one whose Diffie-Hellman result is all zeros).
std::optional<Digest> shared_key(const std::array<uint8_t, 32>& my_kx_secret,
                                 const PublicKey& my_kx_public, const PublicKey& their_kx_public);
Mac mac(const Digest& key, std::string_view bytes);
bool check_mac(const Digest& key, std::string_view bytes, const Mac& tag);
Signature sign(const std::array<uint8_t, 64>& sign_secret, std::string_view bytes);
bool check_signature(const PublicKey& sign_public, std::string_view bytes, const Signature& sig);

// A principal's keys and the public keys of the group's replicas, by replica ID: a replica's
// (MACs with its peers and its clients, signatures), or a client's (its MACs with each replica;
// its identity is public_keys().kx).
class Keyring {
 public:
  Keyring(SecretKeys mine, std::map<uint64_t, PublicKeys> replicas);

  const PublicKeys& public_keys() const { return mine_.pub; }
  bool knows(uint64_t replica) const { return replica_keys_.contains(replica); }
  const std::map<uint64_t, PublicKeys>& replicas() const { return replicas_; }

  // MACs with a replica (precondition: knows(replica)).
  Mac mac_for(uint64_t replica, std::string_view bytes) const;
  bool check_mac_from(uint64_t replica, std::string_view bytes, const Mac& tag) const;
  // MACs with a client, named by its X25519 public key; false for a key that makes no MAC key.
  std::optional<Mac> mac_for_client(const PublicKey& client, std::string_view bytes) const;
  bool check_mac_from_client(const PublicKey& client, std::string_view bytes, const Mac& tag) const;
  Signature sign(std::string_view bytes) const;
  bool check_signature_of(uint64_t replica, std::string_view bytes, const Signature& sig) const;

 private:
  std::optional<Digest> client_key(const PublicKey& client) const;

  SecretKeys mine_;
  std::map<uint64_t, PublicKeys> replicas_;
  std::map<uint64_t, Digest> replica_keys_;
  mutable std::map<PublicKey, Digest> client_keys_;  // bounded cache
};

}  // namespace synod::pbft
