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
};

std::vector<Operation> generate_linearizable(const GenerateOptions& options);

}  // namespace synod::check
