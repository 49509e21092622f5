// Client histories: operations with invocation and completion times and their outcomes.
// A history is a plain vector of operations in any order; times are the client's view.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace synod::check {

// kGet, kPut, kCas: a register (key-value). kAcquire, kRelease, kFencedPut (and kGet): a mutex
// guarding a register with fencing tokens. kAdd (set), kAppend (list) and kReadAll: a set and
// an append-only list. kGet, kPut and kAppend (concatenating strings): the kv model.
// check/models.h gives each its sequential specification.
enum class OpKind : uint8_t {
  kGet,
  kPut,
  kCas,
  kAcquire,
  kRelease,
  kFencedPut,
  kAdd,
  kAppend,
  kReadAll
};
// ok: took effect with the recorded output; fail: definitely did not take effect;
// info: indeterminate — may take effect at any time after invocation, or never.
enum class Outcome : uint8_t { kOk, kFail, kInfo };

struct Operation {
  uint64_t id = 0;      // unique within the history
  uint32_t client = 0;  // process id
  OpKind kind = OpKind::kGet;
  std::string key;
  std::string value;     // put: value written; cas: new value
  std::string expected;  // cas: value compared against
  uint64_t invoke_time = 0;
  uint64_t complete_time = 0;  // ignored for kInfo (treated as +infinity)
  Outcome outcome = Outcome::kOk;
  std::optional<std::string> output;  // get (ok): value read; nullopt = key absent
  bool cas_succeeded = false;         // cas (ok): the compare matched and the write happened
  int64_t token = 0;  // acquire (ok): the fencing token granted; fenced put: the one presented
  std::vector<std::string> elements;  // read-all (ok): what the set or list held, as read
};

const char* to_string(OpKind k);
const char* to_string(Outcome o);
std::string to_string(const Operation& op);  // one human-readable line

// The first reason `history` is malformed, or nullopt: ids must be unique, and an operation
// that completed (kOk or kFail) must not complete before it was invoked.
std::optional<std::string> validate(const std::vector<Operation>& history);

}  // namespace synod::check
