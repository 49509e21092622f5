#include "cli/bench_workload.h"

#include <cassert>

namespace synod::cli::bench {

KeySource::KeySource(uint32_t key_size, uint64_t key_space_size, bool sequential)
    : key_size_(key_size), key_space_size_(key_space_size), sequential_(sequential) {
  assert(key_space_size_ >= 1);
  assert(key_size_ >= digits_needed(key_space_size_));
}

uint32_t KeySource::digits_needed(uint64_t key_space_size) {
  uint64_t largest = key_space_size > 0 ? key_space_size - 1 : 0;
  uint32_t digits = 1;
  while (largest >= 10) {  // at most 20 iterations for a uint64_t
    largest /= 10;
    ++digits;
  }
  return digits;
}

uint64_t KeySource::pick(uint64_t sequence, Rng& rng) const {
  if (sequential_) return sequence % key_space_size_;
  return std::uniform_int_distribution<uint64_t>(0, key_space_size_ - 1)(rng);
}

void KeySource::format(uint64_t number, std::string& out) const {
  assert(number < key_space_size_);
  out.assign(key_size_, '0');
  for (size_t i = key_size_; number > 0 && i > 0; --i) {
    out[i - 1] = static_cast<char>('0' + number % 10);
    number /= 10;
  }
  assert(number == 0);
}

std::string make_value(uint32_t val_size, uint64_t seed) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  Rng rng(seed ^ 0x5eed'0f'7a1'e5ULL);
  std::uniform_int_distribution<size_t> letter(0, sizeof(kAlphabet) - 2);
  std::string value(val_size, 'x');
  for (char& c : value) c = kAlphabet[letter(rng)];
  return value;
}

void fill_put(const KeySource& keys, const std::string& value, uint64_t sequence, Rng& rng,
              etcdserverpb::PutRequest& request) {
  keys.format(keys.pick(sequence, rng), *request.mutable_key());
  if (request.value().size() != value.size()) request.set_value(value);
}

void fill_txn_put(const KeySource& keys, const std::string& value, uint32_t ops, uint64_t sequence,
                  Rng& rng, etcdserverpb::TxnRequest& request) {
  assert(ops >= 1 && ops <= keys.space());
  // Consecutive key numbers from a picked start (wrapping) are distinct within one txn.
  uint64_t first = keys.pick(sequence * ops, rng);
  while (static_cast<uint32_t>(request.success_size()) < ops) request.add_success();
  for (uint32_t j = 0; j < ops; ++j) {
    etcdserverpb::PutRequest* put =
        request.mutable_success(static_cast<int>(j))->mutable_request_put();
    keys.format((first + j) % keys.space(), *put->mutable_key());
    if (put->value().size() != value.size()) put->set_value(value);
  }
}

}  // namespace synod::cli::bench
