#include "check/models.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>

#include "check/kv_model.h"

namespace synod::check {

namespace {

// Gives each distinct state (any ordered, copyable value) a small id, as Model requires.
template <typename State>
class StateTable {
 public:
  uint32_t id(const State& s) {
    auto [it, inserted] = ids_.try_emplace(s, static_cast<uint32_t>(states_.size()));
    if (inserted) states_.push_back(s);
    return it->second;
  }
  const State& at(uint32_t id) const { return states_[id]; }

 private:
  std::map<State, uint32_t> ids_;
  std::vector<State> states_;
};

class MutexModel final : public Model {
 public:
  explicit MutexModel(const std::vector<const Operation*>& ops) : ops_(ops) {}

  // Drops what provably changes no verdict, so that long histories with many indeterminate
  // operations need no search over which of them took effect:
  //  - releases: they change no state and return nothing;
  //  - acquires that are not ok: taking effect only raises the highest token granted, which
  //    only ever forbids;
  //  - indeterminate writes whose value no read returned: in a linearization where one took
  //    effect, nothing read its value before the next write, and without it the highest token
  //    written is lower or equal, which forbids nothing that it allowed.
  static void prune(std::vector<const Operation*>& ops) {
    std::set<std::string> read;
    for (const Operation* op : ops) {
      if (op->kind == OpKind::kGet && op->output) read.insert(*op->output);
    }
    std::erase_if(ops, [&](const Operation* op) {
      switch (op->kind) {
        case OpKind::kRelease:
          return true;
        case OpKind::kAcquire:
          return op->outcome != Outcome::kOk;
        case OpKind::kFencedPut:
          return op->outcome == Outcome::kInfo && !read.contains(op->value);
        default:
          return false;
      }
    });
  }

  uint32_t initial_state() override { return table_.id(State{}); }

  std::optional<uint32_t> step(uint32_t state, size_t i) override {
    State s = table_.at(state);
    const Operation& op = *ops_[i];
    switch (op.kind) {
      case OpKind::kAcquire:
        if (op.outcome != Outcome::kOk) {
          s.issued += 1;  // took effect with some token above the last; the least is likeliest
        } else if (op.token <= s.issued) {
          return std::nullopt;  // tokens strictly increase across holders
        } else {
          s.issued = op.token;
        }
        return table_.id(s);
      case OpKind::kRelease:
        return state;
      case OpKind::kFencedPut:
        if (op.token < s.fence) return std::nullopt;  // a stale token must be refused
        s.fence = op.token;
        s.value = op.value;
        return table_.id(s);
      case OpKind::kGet:
        if (s.value != op.output) return std::nullopt;
        return state;
      default:
        return std::nullopt;
    }
  }

  std::string describe_state(uint32_t state) const override {
    const State& s = table_.at(state);
    std::ostringstream os;
    os << (s.value ? "\"" + *s.value + "\"" : std::string("<absent>")) << " (highest token written "
       << s.fence << ", granted " << s.issued << ")";
    return os.str();
  }

 private:
  struct State {
    std::optional<std::string> value;
    int64_t fence = 0;   // the highest token a successful write carried
    int64_t issued = 0;  // the highest token granted
    auto operator<=>(const State&) const = default;
  };
  const std::vector<const Operation*>& ops_;
  StateTable<State> table_;
};

// A set (sorted elements) or a list (elements in order).
class CollectionModel final : public Model {
 public:
  CollectionModel(const std::vector<const Operation*>& ops, bool ordered)
      : ops_(ops), ordered_(ordered) {}

  // Drops the indeterminate adds whose element no read returned: every read linearized after
  // such an add would have returned it, so in any linearization where one took effect no read
  // follows it, and without it the rest still fits.
  static void prune(std::vector<const Operation*>& ops) {
    std::set<std::string> seen;
    for (const Operation* op : ops) {
      if (op->kind == OpKind::kReadAll) seen.insert(op->elements.begin(), op->elements.end());
    }
    std::erase_if(ops, [&](const Operation* op) {
      return (op->kind == OpKind::kAdd || op->kind == OpKind::kAppend) &&
             op->outcome == Outcome::kInfo && !seen.contains(op->value);
    });
  }

  uint32_t initial_state() override { return table_.id({}); }

  std::optional<uint32_t> step(uint32_t state, size_t i) override {
    const Operation& op = *ops_[i];
    std::vector<std::string> s = table_.at(state);
    if (op.kind == OpKind::kAdd || op.kind == OpKind::kAppend) {
      if (ordered_) {
        s.push_back(op.value);
      } else {
        s.insert(std::lower_bound(s.begin(), s.end(), op.value), op.value);
      }
      return table_.id(s);
    }
    if (op.kind != OpKind::kReadAll) return std::nullopt;
    std::vector<std::string> read = op.elements;
    if (!ordered_) std::sort(read.begin(), read.end());
    if (read != s) return std::nullopt;
    return state;
  }

  std::string describe_state(uint32_t state) const override {
    const std::vector<std::string>& s = table_.at(state);
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? " " : "") + s[i];
    return out + "]";
  }

 private:
  const std::vector<const Operation*>& ops_;
  const bool ordered_;
  StateTable<std::vector<std::string>> table_;
};

constexpr std::pair<ObjectModel, const char*> kNames[] = {{ObjectModel::kRegister, "register"},
                                                          {ObjectModel::kMutex, "mutex"},
                                                          {ObjectModel::kSet, "set"},
                                                          {ObjectModel::kList, "list"},
                                                          {ObjectModel::kKv, "kv"}};

}  // namespace

const char* to_string(ObjectModel m) {
  for (const auto& [model, name] : kNames) {
    if (model == m) return name;
  }
  return "?";
}

std::optional<ObjectModel> parse_object_model(const std::string& name) {
  for (const auto& [model, known] : kNames) {
    if (name == known) return model;
  }
  return std::nullopt;
}

LinearizabilityResult check_history(const std::vector<Operation>& history, ObjectModel model,
                                    const CheckOptions& opts) {
  switch (model) {
    case ObjectModel::kRegister:
      return check_kv(history, opts);
    case ObjectModel::kMutex:
      return check_by_key(
          history,
          [](std::vector<const Operation*>& ops) -> std::unique_ptr<Model> {
            MutexModel::prune(ops);
            return std::make_unique<MutexModel>(ops);
          },
          opts);
    case ObjectModel::kSet:
    case ObjectModel::kList:
      return check_by_key(
          history,
          [ordered = model == ObjectModel::kList](
              std::vector<const Operation*>& ops) -> std::unique_ptr<Model> {
            CollectionModel::prune(ops);
            return std::make_unique<CollectionModel>(ops, ordered);
          },
          opts);
    case ObjectModel::kKv:
      return check_string_kv(history, opts);
  }
  return {};
}

}  // namespace synod::check
