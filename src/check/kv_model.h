// The kv model, Porcupine's key-value store: each key holds a string, "" at first (an absent
// key reads as ""); get returns it, put replaces it, append concatenates its value onto it.
// Operations: kGet (output: the string read; nullopt reads as ""), kPut and kAppend (value).
//
// check_string_kv checks a history of it per key (linearizability is local: Herlihy & Wing
// 1990, theorem 1), in three steps for each key:
//   1. Indeterminate puts and appends whose effect no get can have seen are dropped (exact: the
//      argument is at drop_unobserved_writes in kv_model.cpp).
//   2. When the key's written values form a prefix code (distinct, non-empty, none a prefix of
//      another: unique tokens such as "x 3 17 y"), each get names the exact writes that built
//      what it read and the key is decided without search (check/kv_structure.h), in
//      O(n log n). Histories recorded with many timed-out appends under member pauses, which a
//      search cannot finish, take this path. When such a key is not linearizable, the
//      operations that break the structure's conditions fail by themselves; the search below
//      runs on just those (on a budget of 1,000,000 configurations) for the explanation and
//      the smallest failing window, and if it runs out they are the window.
//   3. Otherwise, Wing & Gong's search with Lowe's just-in-time linearization over the model's
//      states (check_by_key). Every searched key first gets a small budget, and only then the
//      ones it did not decide the whole budget, so that a key that fails quickly is found
//      before another key's search runs long; the key reported is the first found failing.
//
// Pure; thread-safety as check_kv.
#pragma once

#include <vector>

#include "check/history.h"
#include "check/linearizability.h"

namespace synod::check {

// How to decide each key: kStructure as above, kSearch with the search alone (for testing the
// two against each other).
enum class KvDecision : uint8_t { kStructure, kSearch };

LinearizabilityResult check_string_kv(const std::vector<Operation>& history,
                                      const CheckOptions& opts = {},
                                      KvDecision decision = KvDecision::kStructure);

}  // namespace synod::check
