// Linearizability of one key of the kv model (check/kv_model.h: a string, "" at first; get
// returns it, put replaces it, append concatenates) without search, when the values written to
// the key are non-empty, pairwise distinct and no one of them is a prefix of another — a prefix
// code, as unique tokens such as "x 3 17 y" are. Then every value the key can hold splits in
// exactly one way into the written values, so each get names the exact sequence of writes that
// built what it read: a put or the initial "" first, then appends in order. That fixes:
//   - which writes took effect: every write some get saw (an indeterminate one included), plus
//     every ok one; an indeterminate write no get saw may be taken never to have happened;
//   - the write each get read from, and for every append a get saw, the write right before it:
//     nothing else can come between them;
// so a linearization is a sequence of blocks — a put (or the initial value) followed by its
// chain of appends, each write followed by the gets that read it — and of the writes no get saw,
// placed between blocks. With the block order chosen, assigning each operation the earliest
// point in its interval shows whether the order fits real time; that reduces to two conditions:
//   1. inside each block, no operation is invoked after a later one in the block completed;
//   2. the blocks can be ordered so that none starts after another that must follow it ended,
//      which fails exactly when two blocks each hold an operation invoked after the other
//      block's earliest completion (their "zones" overlap, as Gibbons & Korach's clusters of a
//      unique-value register do: "Testing shared memories", 1997), or when the initial block
//      outlasts another block's earliest completion.
// O(n log n) plus the length of the values read. The arguments are written at the code.
// Pure.
#pragma once

#include <string>
#include <vector>

#include "check/history.h"

namespace synod::check {

struct KvStructureVerdict {
  bool applies = false;       // the key's written values form a prefix code (above)
  bool linearizable = false;  // when it applies
  std::string reason;         // when not linearizable: the condition broken, naming operations
  // When not linearizable: operations (indices into `ops`) that break the condition by
  // themselves: each get with every write its value names, and the writes the condition
  // names. Checked as a history of its own, the window is not linearizable either.
  std::vector<size_t> window;
};

// `ops`: one key's operations of kinds get, put and append (check/kv_model.h). Gets that did
// not complete ok and failed writes are ignored (they constrain nothing).
KvStructureVerdict check_kv_structure(const std::vector<const Operation*>& ops);

}  // namespace synod::check
