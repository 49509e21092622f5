// The sequential objects `synod check` knows besides the register (check_kv), each checked per
// key by check_by_key (linearizability.h):
//
//   mutex   a lock that issues fencing tokens, guarding a register that accepts only fenced
//           writes. acquire (ok) grants a token, which must exceed every token granted before
//           it; a fenced put takes effect only with a token at least the highest one a write
//           has carried (a stale holder's write must fail); get reads the register. release
//           constrains nothing: a lease may have ended the hold anyway. An indeterminate
//           acquire that took effect granted some token above the last. This is how "two
//           holders at once" shows: a write with an older token succeeding after a newer
//           holder's write.
//   set     add(x), then read-all returns exactly the elements added (order ignored).
//   list    append(x), then read-all returns exactly the elements appended, in order.
//   kv      Porcupine's key-value store: a string per key, get / put / append (check/kv_model.h).
//
// Pure; thread-safety as check_kv.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "check/linearizability.h"

namespace synod::check {

enum class ObjectModel : uint8_t { kRegister, kMutex, kSet, kList, kKv };
const char* to_string(ObjectModel m);
std::optional<ObjectModel> parse_object_model(const std::string& name);

// check_kv for kRegister; the models above otherwise.
LinearizabilityResult check_history(const std::vector<Operation>& history, ObjectModel model,
                                    const CheckOptions& opts = {});

}  // namespace synod::check
