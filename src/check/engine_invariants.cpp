#include "check/engine_invariants.h"

#include <sstream>

#include "core/consensus/replication.h"

namespace synod::check {

uint64_t entry_hash(const raft::Entry& e) {
  uint64_t h = 1469598103934665603ULL ^ static_cast<uint8_t>(e.type);
  for (char c : e.data) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

void EngineInvariants::fail(const char* invariant, std::string detail) {
  size_t same_kind = 0;
  for (const Violation& v : violations_) {  // at most kMaxViolations
    if (v.invariant != invariant) continue;
    if (v.detail == detail) return;  // the same fault seen again, e.g. on the next step
    ++same_kind;
  }
  if (same_kind >= kMaxPerInvariant || violations_.size() >= kMaxViolations) {
    ++suppressed_;
    return;
  }
  violations_.push_back({invariant, std::move(detail)});
}

size_t holders_needed(const raft::ConfState& conf) {
  return conf.voters.size() - raft::quorum_size(conf) + 1;
}

std::string voters_string(const raft::ConfState& conf) {
  std::ostringstream os;
  os << "{";
  for (size_t i = 0; i < conf.voters.size(); ++i) os << (i ? "," : "") << "n" << conf.voters[i];
  os << "}";
  return os.str();
}

}  // namespace synod::check
