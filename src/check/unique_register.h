// Linearizability of one register whose writes all carry distinct values, without search
// (Gibbons & Korach, "Testing shared memories", 1997): each read names the write it saw, so a
// history is linearizable exactly when
//   1. no read returns a value nobody wrote, nor completes before its write was invoked;
//   2. no two forward zones overlap; and
//   3. no backward zone lies inside another cluster's forward zone,
// where the cluster of a value is its write and the reads that returned it (the initial
// "absent" is written before everything), its zone runs between the earliest completion and the
// latest invocation in the cluster, and the zone is forward when that completion comes before
// that invocation (the value must be current all along it), backward otherwise. O(n log n).
//
// Applies to a key with only reads and writes (no cas), completed reads, and distinct written
// values. Indeterminate writes are taken to have happened if some read saw them (then they
// never complete) and are left out otherwise. Pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "check/history.h"

namespace synod::check {

struct UniqueRegisterVerdict {
  bool applies = false;       // the key has the shape above
  bool linearizable = false;  // when it applies
  std::string reason;         // when not linearizable: which condition, with the values
  // When not linearizable: the operations (indices into `ops`) of the clusters the condition
  // names. They alone already break the condition, so they are a failing window by themselves.
  std::vector<size_t> window;
};

UniqueRegisterVerdict check_unique_register(const std::vector<const Operation*>& ops);

}  // namespace synod::check
