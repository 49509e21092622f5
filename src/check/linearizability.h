// Linearizability checking of client histories (Herlihy & Wing 1990).
//
// Two layers:
//  - check_kv: the key-value front end the simulator and `synod check` call. It splits the
//    history per key (linearizability is local: a store is linearizable iff every key's register
//    is, Herlihy & Wing 1990, Theorem 1) and checks each key against a register model with
//    get / put / compare-and-set.
//  - check_partition: the model-independent search. Any sequential object can be checked by
//    implementing Model and handing it one partition's operations.
//
// The search is Wing & Gong's (1993) depth-first search with Lowe's just-in-time linearization
// ("Testing for linearizability", 2017) as in Porcupine: the calls and returns of one partition
// form an ordered list; an operation may be linearized only while its call precedes the first
// return still pending, and a return may be passed only once its operation is linearized.
// Every configuration (set of linearized operations, model state) is explored at most once.
//
// Thread-safety: the functions keep no global state and may run concurrently on different
// inputs; a Model instance serves one search at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "check/history.h"

namespace synod::check {

enum class Verdict : uint8_t { kLinearizable, kNotLinearizable, kUnknown };
const char* to_string(Verdict v);

struct CheckOptions {
  // Per partition (key) and per search: the most configurations one search may memoize; past
  // it the verdict is kUnknown. A configuration costs about 70 bytes plus one bit per
  // indeterminate operation of the partition, so this bounds memory as well as time.
  uint64_t max_states = 50'000'000;
  // Whether to shrink the failing window (see LinearizabilityResult::failing_window). It costs
  // a logarithmic number of extra searches over slices of the failing partition.
  bool shrink_window = true;
  // Polled every 1024 configurations; once it answers true every search still running stops
  // with kUnknown (a time limit, say). Empty: never.
  std::function<bool()> stop;
};

// ---------------------------------------------------------------------------------------------
// Key-value histories.

struct LinearizabilityResult {
  Verdict verdict = Verdict::kLinearizable;
  std::string key;  // kNotLinearizable: the failing key; kUnknown: the first undecided key
  // kNotLinearizable: the smallest failing window, in invocation order. Let F be the operation
  // of the failing key whose completion no linearization reaches: everything that completes
  // before F can be linearized, but no linearization extends to F's return. Among slices of the
  // key's events that end at F's return, the window is the latest-starting one that is still
  // not linearizable on its own. The slice starting at the invocation of operation S holds the
  // operations invoked from there until F's return, plus the earlier ones still open at S's
  // invocation (taken as optional: they may have taken effect before the slice or inside it, by
  // their return), and starts from an arbitrary register value, or from absent when S is the
  // key's first operation. Operations still open at F's return are optional too. Because the
  // slice only relaxes the history, the window is self-contained evidence: checked by itself as
  // a history, it is not linearizable. The model may leave out of it operations that provably
  // change none of that (Model::trim_window). Without shrinking (CheckOptions), the slice
  // starts at the first op.
  std::vector<Operation> failing_window;
  // kNotLinearizable: the id of F, the operation no linearization reaches.
  uint64_t failed_id = 0;
  // Keys decided without the search (check_kv: registers whose writes carry distinct values).
  uint64_t keys_without_search = 0;
  std::string explanation;  // multi-line human text; every line ends in '\n'
  // Configurations memoized by all searches, the window search included.
  uint64_t states_explored = 0;
};

// Checks a key-value history. Semantics of the register model:
//  - Every key starts absent. Absent differs from every string, the empty one included.
//  - get ok: read `output`. A get that is kFail or kInfo constrains nothing and is dropped.
//  - put ok: wrote `value`. cas ok with cas_succeeded: the key held `expected` and now holds
//    `value`. cas ok without cas_succeeded: a read that saw something other than `expected`.
//  - put / cas kFail: never took effect; dropped.
//  - put / cas kInfo: may take effect at any point after invocation, or never. An indeterminate
//    cas that took effect swapped (one that took effect as a mismatch changed nothing).
//  - An operation returning at the instant another is invoked counts as concurrent with it.
// Invalid histories (see validate) get kUnknown with the problem in `explanation`.
// Keys are checked in sorted order; the first non-linearizable one is reported.
LinearizabilityResult check_kv(const std::vector<Operation>& history,
                               const CheckOptions& opts = {});

class Model;
// Builds the model for one key's operations (in the order the search will index them). It may
// drop operations from `ops` first, when dropping them provably changes no verdict.
using ModelFactory = std::function<std::unique_ptr<Model>(std::vector<const Operation*>& ops)>;
// The per-key front end for any model (check_kv is it with the register model): splits the
// history by key, leaving out what cannot constrain it (failed operations, reads that did not
// complete), and checks each key's operations against its model. Invalid histories get
// kUnknown. The first non-linearizable key in key order is reported, with its window.
// A check without search for keys of a special shape: nullopt where it does not apply.
struct FastVerdict {
  bool linearizable = false;
  std::string reason;          // when not linearizable
  std::vector<size_t> window;  // when not linearizable: operations (indices into ops) that are
                               // not linearizable by themselves
};
using FastCheck =
    std::function<std::optional<FastVerdict>(const std::vector<const Operation*>& ops)>;
// With `fast`, a key it finds linearizable is not searched; for one it finds not linearizable
// the search still looks for the smallest failing window, on a budget of at most 2,000,000
// configurations, and the fast check's own window is reported if that runs out.
LinearizabilityResult check_by_key(const std::vector<Operation>& history, const ModelFactory& make,
                                   const CheckOptions& opts = {}, const FastCheck& fast = {});

// ---------------------------------------------------------------------------------------------
// Model-independent search.

// A sequential specification, seen by the search through small integer state ids. The model
// assigns them and must give equal states equal ids: the search memoizes on ids, so two ids for
// one state only cost time, but one id for two different states makes the checker unsound.
class Model {
 public:
  virtual ~Model() = default;
  virtual uint32_t initial_state() = 0;
  // A state standing for "any state": stepping from it must allow at least every outcome that
  // some concrete state allows (an over-approximation); it may step to a concrete state. It lets
  // the checker test windows cut from the middle of a history. nullopt if the model has none;
  // failing windows then always start at the partition's first operation.
  virtual std::optional<uint32_t> unknown_state() { return std::nullopt; }
  // The state after operation `op` (an index into the partition given to check_partition)
  // takes effect in `state` with its recorded output, or nullopt if that output is impossible.
  virtual std::optional<uint32_t> step(uint32_t state, size_t op) = 0;
  virtual std::string describe_state(uint32_t state) const = 0;
  // Called before each search (the partition's, and those of failing windows cut from it) with
  // the operations it may linearize. A model may give one id to states that no operation of
  // those can tell apart; ids then only mean something within one search, and describe_state
  // and symmetry_class answer for the last one begun (check_partition begins the partition's
  // again before returning, for its states_at_failure).
  virtual void begin_search(const std::vector<size_t>& /*ops*/) {}
  // Operations with the same class step alike: step(s, a) == step(s, b) for every state s, the
  // unknown state included. Where several are optional the search then only tries the earliest
  // called one not yet linearized (exact: see check_partition). nullopt: no class.
  virtual std::optional<uint32_t> symmetry_class(size_t /*op*/) const { return std::nullopt; }
  // An operation of a failing window: its index, whether the window takes it as optional, and
  // its call and return as positions in the partition's order of events (see
  // LinearizabilityResult::failing_window; return: UINT64_MAX when it has none in the window).
  struct WindowOp {
    size_t op = 0;
    bool optional = false;
    uint64_t call = 0;
    uint64_t ret = UINT64_MAX;
  };
  // Leaves out of a failing window operations without which it is linearizable exactly when
  // with them, so that the evidence shown is shorter. Default: none.
  virtual void trim_window(std::vector<WindowOp>& /*window*/) const {}
};

// One operation of a partition, as the search sees it.
struct SearchOp {
  uint64_t invoke_time = 0;
  uint64_t complete_time = 0;  // ignored when optional
  // Indeterminate: may take effect at any time after invocation, or never. The search succeeds
  // once every non-optional operation is linearized.
  bool optional = false;
};

inline constexpr size_t kMaxStatesReported = 8;

struct PartitionResult {
  Verdict verdict = Verdict::kLinearizable;
  uint64_t states_explored = 0;  // all searches, the window search included
  // kNotLinearizable only; indices are into the partition.
  size_t failed_op = 0;  // F: the operation whose completion no linearization reaches
  // Distinct model states of the linearizations that reach F's return without F (at most
  // kMaxStatesReported): what F found and could not explain.
  std::vector<uint32_t> states_at_failure;
  std::vector<size_t> window;              // see LinearizabilityResult::failing_window
  bool window_from_unknown_state = false;  // the window starts from Model::unknown_state()
};

// Checks one partition. Precondition: invoke_time <= complete_time for non-optional operations,
// and fewer than 2^31 operations.
PartitionResult check_partition(const std::vector<SearchOp>& ops, Model& model,
                                const CheckOptions& opts = {});

}  // namespace synod::check
