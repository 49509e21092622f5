// No input from the network may crash a member: random peer frames that pass the codec are
// stepped into a live Raft core (asserts on in the sanitizer build) with its Ready loop run.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "core/raft/raft.h"
#include "core/rand.h"
#include "net/raft_codec.h"

namespace synod::net {
namespace {

uint64_t seed_from_env(uint64_t fallback) {
  const char* s = std::getenv("SYNOD_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : fallback;
}

// Half the frames carry the node's own term (or the next), so elections, replication and
// snapshot paths are reached, not only the stale-term drop.
synodpb::RaftMessage random_frame(Rng& rng, uint64_t term_now) {
  synodpb::RaftMessage w;
  w.set_type(static_cast<uint32_t>(rng.uniform(16)));
  w.set_from(1 + rng.uniform(4));  // 1 is the node itself, 4 a stranger
  w.set_to(rng.uniform(8) == 0 ? 3 : 1);
  w.set_term(rng.uniform(2) == 0 ? term_now + rng.uniform(2) : rng.uniform(6));
  w.set_log_index(rng.uniform(12));
  w.set_log_term(rng.uniform(6));
  w.set_commit(rng.uniform(14));
  const uint64_t n = rng.uniform(4);
  uint64_t term = w.log_term();
  for (uint64_t i = 0; i < n; ++i) {
    synodpb::RaftEntry* e = w.add_entries();
    term += rng.uniform(2);
    e->set_term(term);
    e->set_index(w.log_index() + 1 + i);
    e->set_type(static_cast<uint32_t>(rng.uniform(3)));
    e->set_data(rng.uniform(2) == 0 ? "" : "x");
  }
  w.set_reject(rng.uniform(2) == 0);
  w.set_reject_hint(rng.uniform(12));
  w.set_reject_hint_term(rng.uniform(6));
  w.set_context(rng.uniform(4));
  w.set_sent_tick(rng.uniform(50));
  w.set_snapshot_index(rng.uniform(12));
  w.set_snapshot_term(rng.uniform(6));
  w.mutable_snapshot_conf()->add_voters(1 + rng.uniform(3));
  w.set_snapshot_offset(rng.uniform(3) * 4);
  w.set_snapshot_total(rng.uniform(3) * 4);
  w.set_snapshot_chunk(std::string(rng.uniform(5), 's'));
  w.set_snapshot_done(rng.uniform(2) == 0);
  return w;
}

TEST(PeerInputFuzz, RandomFramesNeverCrashTheCore) {
  const uint64_t seed = seed_from_env(20261201);
  std::printf("seed %llu (replay: SYNOD_SEED=%llu)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  Rng rng(seed);
  size_t led = 0;
  for (int run = 0; run < 40; ++run) {
    raft::Config cfg;
    cfg.id = raft::NodeId(1);
    cfg.seed = rng.next();
    cfg.initial_conf.voters = {raft::NodeId(1), raft::NodeId(2), raft::NodeId(3)};
    raft::Raft node(cfg, raft::Persisted{});
    for (int step = 0; step < 300; ++step) {
      const uint64_t what = rng.uniform(10);
      if (what <= 1) {
        for (int t = 0; t < 1 + static_cast<int>(rng.uniform(12)); ++t) node.tick();
      } else if (what == 2) {
        (void)node.propose("p");
      } else {
        std::string error;
        std::optional<raft::Message> m = decode(random_frame(rng, node.term().value), &error);
        if (m) node.step(*m);
      }
      while (node.has_ready()) {
        (void)node.ready();
        node.advance();
      }
      if (node.role() == raft::Role::kLeader) ++led;
    }
  }
  std::printf("steps as leader: %zu\n", led);
}

}  // namespace
}  // namespace synod::net
