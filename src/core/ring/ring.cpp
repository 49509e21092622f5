#include "core/ring/ring.h"

#include <xxhash.h>

#include <algorithm>

#include "base/assert.h"

namespace synod::ring {

namespace {

uint64_t hash_words(uint64_t a, uint64_t b, uint64_t seed) {
  const uint64_t words[2] = {a, b};
  return XXH64(words, sizeof(words), seed);
}

// Tags keep the two kinds of points from ever being the same hash input.
constexpr uint64_t kMemberTag = 0x6d656d626572;  // "member"
constexpr uint64_t kShardTag = 0x7368617264;     // "shard"

}  // namespace

uint32_t jump_hash(uint64_t key, uint32_t buckets) {
  SYNOD_ASSERT(buckets > 0);
  int64_t b = -1;
  int64_t j = 0;
  while (j < static_cast<int64_t>(buckets)) {
    b = j;
    key = key * 2862933555777941757ULL + 1;
    j = static_cast<int64_t>(static_cast<double>(b + 1) * (static_cast<double>(1LL << 31) /
                                                           static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<uint32_t>(b);
}

ShardId shard_of_key(std::string_view key, uint32_t shards) {
  return jump_hash(XXH64(key.data(), key.size(), 0), shards);
}

Ring::Ring(RingOptions options) : options_(options) {
  SYNOD_ASSERT(options_.vnodes > 0 && options_.replication > 0);
}

bool Ring::add(MemberId member) {
  SYNOD_ASSERT(member != 0);
  if (!members_.insert(member).second) return false;
  for (uint32_t v = 0; v < options_.vnodes; ++v) {
    const uint64_t point = hash_words(kMemberTag ^ member, v, options_.seed);
    points_.insert(std::upper_bound(points_.begin(), points_.end(), std::make_pair(point, member)),
                   {point, member});
  }
  return true;
}

bool Ring::remove(MemberId member) {
  if (members_.erase(member) == 0) return false;
  std::erase_if(points_, [&](const auto& p) { return p.second == member; });
  return true;
}

std::vector<MemberId> Ring::owners(uint64_t point) const {
  const size_t want = std::min<size_t>(options_.replication, members_.size());
  std::vector<MemberId> out;
  if (want == 0) return out;
  auto it = std::lower_bound(points_.begin(), points_.end(), std::make_pair(point, MemberId{0}));
  // Bounded: one lap of the ring meets every member.
  for (size_t step = 0; step < points_.size() && out.size() < want; ++step, ++it) {
    if (it == points_.end()) it = points_.begin();
    if (std::find(out.begin(), out.end(), it->second) == out.end()) out.push_back(it->second);
  }
  SYNOD_ASSERT(out.size() == want);
  return out;
}

uint64_t Ring::shard_point(ShardId shard) const {
  return hash_words(kShardTag, shard, options_.seed);
}

Placement Ring::placement(uint32_t shards) const {
  Placement out;
  out.reserve(shards);
  for (ShardId s = 0; s < shards; ++s) out.push_back(owners(shard_point(s)));
  return out;
}

std::vector<Move> plan_moves(const Placement& from, const Placement& to) {
  SYNOD_ASSERT(from.size() == to.size());
  std::vector<Move> moves;
  for (ShardId s = 0; s < from.size(); ++s) {
    std::vector<MemberId> gained;
    std::vector<MemberId> lost;
    for (MemberId m : to[s]) {
      if (std::find(from[s].begin(), from[s].end(), m) == from[s].end()) gained.push_back(m);
    }
    for (MemberId m : from[s]) {
      if (std::find(to[s].begin(), to[s].end(), m) == to[s].end()) lost.push_back(m);
    }
    const size_t steps = std::max(gained.size(), lost.size());
    for (size_t i = 0; i < steps; ++i) {
      moves.push_back(Move{s, i < gained.size() ? gained[i] : 0, i < lost.size() ? lost[i] : 0});
    }
  }
  return moves;
}

}  // namespace synod::ring
