// Reading client histories in Synod's own format: JSON lines, one event per line, as Jepsen
// records them (an invocation, then its completion):
//
//   {"process": 3, "type": "invoke", "f": "write", "key": "x", "value": "7", "time": 1200}
//   {"process": 3, "type": "ok",     "f": "write", "key": "x", "value": "7", "time": 1350}
//
//   process  integer: who issued the operation; one operation outstanding per process
//   type     "invoke", then "ok" (took effect, with its result), "fail" (certainly did not take
//            effect) or "info" (indeterminate: may take effect at any time after its
//            invocation, or never). An invocation with no completion is indeterminate too.
//   f        "read", "write" or "cas" (the register model; the mutex, set and list models of
//            check/models.h: "acquire" with the token as the ok value, "release", "write" with
//            [value, token], "read"; "add" and "read"; "append" and "read", where the read's
//            ok value is the array of elements; the kv model: "get", "put", "append")
//   key      string (optional; absent = the single register "", or on a completion, the key
//            of its invocation)
//   value    read: null on invoke; on ok the value read, null for an absent key.
//            write: the value written. cas: [expected, new]; ok = swapped, fail = the compare
//            did not match (nothing changed). Values are strings or integers (read as their
//            decimal text).
//   time     integer, any monotonic unit (optional: the line number stands in for it)
//
// Blank lines are skipped. Malformed input is refused with the line number and what is wrong.
// Pure (reads only the stream it is given).
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "check/history.h"
#include "check/models.h"

namespace synod::check {

struct HistoryStats {
  uint64_t events = 0;
  uint64_t processes = 0;
  uint64_t keys = 0;
};

// Appends the operations of `in` to `out`. Returns nullopt, or the first error as
// "line N: what" (out is then unspecified).
std::optional<std::string> read_history_jsonl(std::istream& in, std::vector<Operation>& out,
                                              HistoryStats* stats = nullptr,
                                              ObjectModel model = ObjectModel::kRegister);

// Importers: other tools' history formats, read into the same operations.
//   jepsen-log  Jepsen's text log, as in Porcupine's published etcd histories
//               (test_data/jepsen/etcd_*.log, test_data/etcd/*.log): lines
//               "INFO  jepsen.util - <process> :<type> :<f> <value>", value nil, an integer,
//               [expected new] or a keyword (":timed-out"); the line order is the time order;
//               other lines (the nemesis, other loggers) are skipped.
//   edn         Jepsen's history.edn, one map per line: {:type :invoke, :f :write, :value 3,
//               :process 0, :time 123, ...}; :time is used; maps whose :process is not an
//               integer (the nemesis) are skipped.
// Both describe one register (no key), or with `independent` one per key; :type, :f and
// :value mean what they mean in Synod's format (a cas "fail" is a compare that did not match).
enum class HistoryFormat : uint8_t { kSynod, kJepsenLog, kEdn };
std::optional<HistoryFormat> parse_history_format(const std::string& name);
// independent: the values are Jepsen's independent-key tuples [key, value] (a completion whose
// value is not a tuple, such as ":timed-out", completes its invocation's key).
std::optional<std::string> read_history(std::istream& in, HistoryFormat format,
                                        std::vector<Operation>& out, HistoryStats* stats = nullptr,
                                        ObjectModel model = ObjectModel::kRegister,
                                        bool independent = false);

// Writes `history` in the same format: each operation's invocation and completion events (an
// indeterminate one's "info" at the time its client gave up, complete_time, if later than its
// invocation), ordered by time, completions before invocations at equal times (an operation
// returning as another is invoked counts as concurrent either way, so this changes no
// verdict). A cas that did not swap is written as "fail". One client's operations must not
// overlap (the reader pairs events per process).
void write_history_jsonl(const std::vector<Operation>& history, std::ostream& out);

}  // namespace synod::check
