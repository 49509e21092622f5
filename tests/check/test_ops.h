// Building operations in checker tests: the fields every operation has; each test sets the rest.
#pragma once

#include <string>

#include "check/history.h"

namespace synod::check::testing {

inline Operation make_op(uint64_t id, uint32_t client, OpKind kind, std::string key, uint64_t t0,
                         uint64_t t1, Outcome outcome = Outcome::kOk) {
  Operation op;
  op.id = id;
  op.client = client;
  op.kind = kind;
  op.key = std::move(key);
  op.invoke_time = t0;
  op.complete_time = t1;
  op.outcome = outcome;
  return op;
}

}  // namespace synod::check::testing
