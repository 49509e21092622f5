// A small seeded generator (splitmix64). Protocol code receives one of these; it never reaches
// for global randomness, so a seed replays a run exactly on every platform.
#pragma once

#include <cassert>
#include <cstdint>

namespace synod {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound). Precondition: bound > 0.
  uint64_t uniform(uint64_t bound) {
    assert(bound > 0);
    return next() % bound;
  }

  // Uniform in [lo, hi]. Precondition: lo <= hi.
  uint64_t range(uint64_t lo, uint64_t hi) {
    assert(lo <= hi);
    return lo + uniform(hi - lo + 1);
  }

  // True with probability p (0 <= p <= 1).
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

  // A generator for a sub-component, so adding draws in one place does not shift another's.
  Rng fork() { return Rng(next()); }

 private:
  uint64_t state_;
};

}  // namespace synod
