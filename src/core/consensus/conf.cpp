#include "core/consensus/conf.h"

#include <algorithm>
#include <sstream>

namespace synod::raft {

bool ConfState::is_voter(NodeId id) const {
  return std::find(voters.begin(), voters.end(), id) != voters.end();
}

bool ConfState::is_learner(NodeId id) const {
  return std::find(learners.begin(), learners.end(), id) != learners.end();
}

namespace {

void erase_id(std::vector<NodeId>& ids, NodeId id) {
  ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::optional<uint64_t> get_u64(std::string_view& in) {
  if (in.size() < 8) return std::nullopt;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  in.remove_prefix(8);
  return v;
}

constexpr uint64_t kMaxMembers = 1024;

}  // namespace

std::optional<ConfState> apply_change(const ConfState& conf, const ConfChange& change) {
  if (change.node == kNoNode) return std::nullopt;
  ConfState next = conf;
  switch (change.type) {
    case ConfChangeType::kAddVoter:
      if (conf.is_voter(change.node)) return std::nullopt;
      erase_id(next.learners, change.node);
      next.voters.push_back(change.node);
      break;
    case ConfChangeType::kAddLearner:
      if (conf.contains(change.node)) return std::nullopt;
      next.learners.push_back(change.node);
      break;
    case ConfChangeType::kRemoveNode:
      if (!conf.contains(change.node)) return std::nullopt;
      erase_id(next.voters, change.node);
      erase_id(next.learners, change.node);
      if (next.voters.empty()) return std::nullopt;
      break;
    default:
      return std::nullopt;
  }
  std::sort(next.voters.begin(), next.voters.end());
  std::sort(next.learners.begin(), next.learners.end());
  return next;
}

std::string encode_conf(const ConfState& conf) {
  std::string out;
  put_u64(out, conf.voters.size());
  for (NodeId id : conf.voters) put_u64(out, id.value);
  put_u64(out, conf.learners.size());
  for (NodeId id : conf.learners) put_u64(out, id.value);
  return out;
}

std::optional<ConfState> decode_conf(std::string_view data) {
  ConfState conf;
  for (auto* list : {&conf.voters, &conf.learners}) {
    auto n = get_u64(data);
    if (!n || *n > kMaxMembers) return std::nullopt;
    for (uint64_t i = 0; i < *n; ++i) {
      auto id = get_u64(data);
      if (!id || *id == 0) return std::nullopt;
      list->push_back(NodeId(*id));
    }
  }
  if (!data.empty()) return std::nullopt;
  return conf;
}

std::string to_string(const ConfState& conf) {
  std::ostringstream os;
  os << "voters=(";
  for (size_t i = 0; i < conf.voters.size(); ++i) os << (i ? " " : "") << conf.voters[i];
  os << ")";
  if (!conf.learners.empty()) {
    os << " learners=(";
    for (size_t i = 0; i < conf.learners.size(); ++i) os << (i ? " " : "") << conf.learners[i];
    os << ")";
  }
  return os.str();
}

}  // namespace synod::raft
