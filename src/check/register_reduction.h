// Exact reductions of one key's register history (the register model of check_kv), applied
// before the search: operations that provably change no verdict are dropped, so that long
// histories full of indeterminate writes and compare-and-sets that answered "mismatch" do not
// make the search try which of them took effect.
//
// The operations are one key's constraining ones (no failed operation, no incomplete read). A
// put or cas "writes" a value; a cas that answered "mismatch" (ok, !cas_succeeded) is a read
// that saw something other than `expected`. Rules, each argued where it is implemented:
//  1. A mismatch cas whose expected value cannot be current at any point of its interval. That
//     needs the expected value e to have one writer W (or none): the cas is invoked after
//     e's lifetime certainly ended (a completed operation that started after W took effect
//     showed the register not holding e: a write, or a read of another value) or it completes
//     before W is invoked.
//  2. An indeterminate cas that cannot swap: its expected value has no writer, its lifetime
//     ended before the cas was invoked, or another cas that certainly swapped expects it (a
//     value written once is swapped away at most once).
//  3. An indeterminate write of a value no remaining operation observes (no read returned it,
//     no cas expects it) that no remaining mismatch cas could need: one invoked after every
//     moment at which such a cas could still be linearized while its expected value was
//     current.
// Repeated until nothing more goes (dropping one operation can make another value unobserved).
// Rules 1 and 2 only use values written at most once; 3 holds for any history.
//
// Pure; the order of `ops` is kept.
#pragma once

#include <vector>

#include "check/history.h"

namespace synod::check {

void reduce_register_history(std::vector<const Operation*>& ops);

}  // namespace synod::check
