#include "check/generate.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "core/rand.h"

namespace synod::check {

std::vector<Operation> generate_linearizable(const GenerateOptions& o) {
  Rng rng(o.seed);
  std::map<std::string, std::optional<std::string>> state;
  std::map<std::pair<uint32_t, std::string>, std::string> seen;  // (client, key) -> last seen
  std::vector<Operation> ops;
  ops.reserve(o.ops);
  for (size_t i = 0; i < o.ops; ++i) {
    Operation op;
    op.id = i;
    op.client = static_cast<uint32_t>(rng.uniform(o.clients));
    op.key = "k" + std::to_string(rng.uniform(o.keys));
    const uint64_t point = 100 * (i + 1);
    op.invoke_time = point - std::min<uint64_t>(point, rng.uniform(o.spread));
    op.complete_time = point + rng.uniform(o.spread);
    auto& cur = state[op.key];
    const auto last_seen = seen.find({op.client, op.key});
    uint64_t kind = rng.uniform(3);
    if (o.client_view && kind == 2 && last_seen == seen.end()) kind = 1;
    // An indeterminate write of the client-view workload may never have happened.
    const bool info = (kind == 1 || (o.client_view && kind == 2)) && rng.chance(o.info_share);
    const bool lands = !info || !o.client_view || rng.chance(0.5);
    switch (kind) {
      case 0:
        op.kind = OpKind::kGet;
        op.output = cur;
        break;
      case 1:
        op.kind = OpKind::kPut;
        op.value = "v" + std::to_string(i);
        if (lands) cur = op.value;
        break;
      default:
        op.kind = OpKind::kCas;
        op.expected = o.client_view ? last_seen->second : cur.value_or("none");
        op.value = "v" + std::to_string(i);
        op.cas_succeeded = cur == op.expected;
        if (op.cas_succeeded && lands) cur = op.value;
        break;
    }
    if (info) op.outcome = Outcome::kInfo;
    if (op.outcome == Outcome::kOk && op.kind == OpKind::kGet && op.output) {
      seen[{op.client, op.key}] = *op.output;
    } else if (op.outcome == Outcome::kOk && (op.kind == OpKind::kPut || op.cas_succeeded)) {
      seen[{op.client, op.key}] = op.value;
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

}  // namespace synod::check
