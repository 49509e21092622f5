// Synthetic key-value histories with a known verdict, for tests and benchmarks: a sequential
// execution whose operations are stretched into overlapping intervals around their
// linearization points, so the result is linearizable by construction.
#pragma once

#include <cstdint>
#include <vector>

#include "check/history.h"

namespace synod::check {

struct GenerateOptions {
  uint64_t seed = 1;
  size_t ops = 1000;
  uint32_t clients = 8;
  uint32_t keys = 4;
  uint64_t spread = 300;     // how far an interval reaches around its point (time units)
  double info_share = 0.05;  // writes left indeterminate
  // The simulator's register workload (src/sim): a cas expects the value its client last saw
  // on the key (a put when it saw none), so most answer "mismatch"; written values are unique;
  // an indeterminate put or cas took effect or not with even odds. Otherwise a cas expects the
  // current value (always swapping once the key exists), and indeterminate puts took effect.
  bool client_view = false;
};

std::vector<Operation> generate_linearizable(const GenerateOptions& options);

}  // namespace synod::check
