// Linearizability checking for key-value histories (get, put, compare-and-set).
//
// The search is Wing & Gong's, with Lowe's just-in-time linearization and memoization of
// (set of linearized operations, model state) pairs, as in Porcupine. Histories are split per
// key first: a key-value store is linearizable iff each key's register is (locality, Herlihy &
// Wing 1990).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "check/history.h"

namespace synod::check {

enum class Verdict : uint8_t { kLinearizable, kNotLinearizable, kUnknown };
const char* to_string(Verdict v);

struct CheckOptions {
  uint64_t max_states = 50'000'000;  // per key; past it the verdict is kUnknown
};

struct LinearizabilityResult {
  Verdict verdict = Verdict::kLinearizable;
  std::string key;                        // the failing key (kNotLinearizable)
  std::vector<Operation> failing_window;  // see check_kv
  std::string explanation;                // multi-line, human readable
  uint64_t states_explored = 0;
};

// Checks a whole history. On failure, `failing_window` holds the operations of the failing key
// that overlap the interval from the earliest operation left unlinearized in the deepest
// configuration the search reached, to the completion of the operation it could not place.
LinearizabilityResult check_kv(const std::vector<Operation>& history,
                               const CheckOptions& opts = {});

}  // namespace synod::check
