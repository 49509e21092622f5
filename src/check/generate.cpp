#include "check/generate.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "core/rand.h"

namespace synod::check {

std::vector<Operation> generate_linearizable(const GenerateOptions& o) {
  Rng rng(o.seed);
  std::map<std::string, std::optional<std::string>> state;
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
    switch (rng.uniform(3)) {
      case 0:
        op.kind = OpKind::kGet;
        op.output = cur;
        break;
      case 1:
        op.kind = OpKind::kPut;
        op.value = "v" + std::to_string(i);
        cur = op.value;
        if (rng.chance(o.info_share)) op.outcome = Outcome::kInfo;
        break;
      default:
        op.kind = OpKind::kCas;
        op.expected = cur.value_or("none");
        op.value = "v" + std::to_string(i);
        op.cas_succeeded = cur.has_value();
        if (cur) cur = op.value;
        break;
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

}  // namespace synod::check
