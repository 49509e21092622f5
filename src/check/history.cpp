#include "check/history.h"

#include <sstream>
#include <unordered_set>

namespace synod::check {

const char* to_string(OpKind k) {
  switch (k) {
    case OpKind::kGet:
      return "get";
    case OpKind::kPut:
      return "put";
    case OpKind::kCas:
      return "cas";
    case OpKind::kAcquire:
      return "acquire";
    case OpKind::kRelease:
      return "release";
    case OpKind::kFencedPut:
      return "fenced-put";
    case OpKind::kAdd:
      return "add";
    case OpKind::kAppend:
      return "append";
    case OpKind::kReadAll:
      return "read";
  }
  return "?";
}

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFail:
      return "fail";
    case Outcome::kInfo:
      return "info";
  }
  return "?";
}

std::string to_string(const Operation& op) {
  std::ostringstream os;
  os << "#" << op.id << " c" << op.client << " [" << op.invoke_time << ", ";
  if (op.outcome == Outcome::kInfo) {
    os << "?";
  } else {
    os << op.complete_time;
  }
  os << "] " << to_string(op.kind) << " " << op.key;
  switch (op.kind) {
    case OpKind::kGet:
      if (op.outcome == Outcome::kOk) os << " -> " << (op.output ? *op.output : "<absent>");
      break;
    case OpKind::kPut:
      os << " = " << op.value;
      break;
    case OpKind::kCas:
      os << " " << op.expected << " -> " << op.value;
      if (op.outcome == Outcome::kOk) os << (op.cas_succeeded ? " (swapped)" : " (mismatch)");
      break;
    case OpKind::kAcquire:
      if (op.outcome == Outcome::kOk) os << " -> token " << op.token;
      break;
    case OpKind::kRelease:
      break;
    case OpKind::kFencedPut:
      os << " = " << op.value << " with token " << op.token;
      break;
    case OpKind::kAdd:
    case OpKind::kAppend:
      os << " " << op.value;
      break;
    case OpKind::kReadAll:
      if (op.outcome == Outcome::kOk) {
        os << " -> [";
        for (size_t i = 0; i < op.elements.size(); ++i) os << (i ? " " : "") << op.elements[i];
        os << "]";
      }
      break;
  }
  os << " " << to_string(op.outcome);
  return os.str();
}

std::optional<std::string> validate(const std::vector<Operation>& history) {
  std::unordered_set<uint64_t> ids;
  ids.reserve(history.size());
  for (const Operation& op : history) {
    if (!ids.insert(op.id).second) return "duplicate operation id " + std::to_string(op.id);
    if (op.outcome != Outcome::kInfo && op.complete_time < op.invoke_time) {
      return "operation completes before it is invoked: " + to_string(op);
    }
  }
  return std::nullopt;
}

}  // namespace synod::check
