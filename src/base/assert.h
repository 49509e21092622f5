// SYNOD_ASSERT: an invariant check that stays on in release builds (assert() compiles out
// there). For cheap checks whose failure means the process can no longer be trusted: it prints
// the condition and where it failed, then aborts, so that a member stops rather than acknowledge
// or apply something wrong. Expensive checks stay in assert() or in the simulator's checkers.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace synod::base {

[[noreturn]] inline void assert_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: SYNOD_ASSERT(%s) failed\n", file, line, condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace synod::base

#define SYNOD_ASSERT(condition)       \
  ((condition) ? static_cast<void>(0) \
               : ::synod::base::assert_failed(#condition, __FILE__, __LINE__))
