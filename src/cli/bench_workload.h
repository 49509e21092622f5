// synod bench: the requests of each workload (put, range, txn-put), built from a request's
// sequence number and the client thread's seeded generator.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "etcdserverpb/rpc.pb.h"

namespace synod::cli::bench {

using Rng = std::mt19937_64;

// Keys are the key number in zero-padded decimal, exactly key_size bytes ("00000042"), so they are
// printable and sort like their numbers. Thread-compatible (const after construction).
class KeySource {
 public:
  // Precondition: key_space_size >= 1 and key_size >= digits_needed(key_space_size).
  KeySource(uint32_t key_size, uint64_t key_space_size, bool sequential);

  // Digits of the largest key number, key_space_size - 1 (at least 1).
  static uint32_t digits_needed(uint64_t key_space_size);

  // The key number for request `sequence`: sequence mod space if sequential, else uniform.
  uint64_t pick(uint64_t sequence, Rng& rng) const;
  // Writes key `number` into `out` (resized to key_size). Precondition: number < key space.
  void format(uint64_t number, std::string& out) const;
  uint64_t space() const { return key_space_size_; }

 private:
  uint32_t key_size_;
  uint64_t key_space_size_;
  bool sequential_;
};

// A value of val_size printable bytes drawn from `seed`; every request of a run writes it.
std::string make_value(uint32_t val_size, uint64_t seed);

// Fills `request` with a Put of the key picked for `sequence`.
void fill_put(const KeySource& keys, const std::string& value, uint64_t sequence, Rng& rng,
              etcdserverpb::PutRequest& request);

// Fills `request` with a Txn without compares whose success branch holds `ops` puts to distinct
// keys (etcd refuses a txn that puts one key twice). Precondition: 1 <= ops <= keys.space().
void fill_txn_put(const KeySource& keys, const std::string& value, uint32_t ops, uint64_t sequence,
                  Rng& rng, etcdserverpb::TxnRequest& request);

}  // namespace synod::cli::bench
