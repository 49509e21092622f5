#include "check/pbft_invariants.h"

#include "core/pbft/pbft.h"

namespace synod::check {

void PbftInvariants::on_apply(raft::NodeId node, const raft::Entry& e) {
  if (byzantine_.contains(node)) return;
  const uint64_t h = entry_hash(e);
  auto [it, fresh] = executed_.try_emplace(e.index.value, Seen{node, h});
  if (fresh || it->second.hash == h) return;
  fail("HonestReplicasAgree", "honest replicas n" + std::to_string(it->second.node.value) +
                                  " and n" + std::to_string(node.value) +
                                  " executed different requests at sequence number " +
                                  std::to_string(e.index.value));
}

void PbftInvariants::on_step(const Engine& engine) {
  const auto* p = dynamic_cast<const pbft::Pbft*>(&engine);
  if (p == nullptr || byzantine_.contains(p->id())) return;
  const uint64_t seq = p->committed_index().value;
  if (seq == 0) return;
  auto [it, fresh] = histories_.try_emplace(seq, SeenDigest{p->id(), p->executed_digest()});
  if (fresh || it->second.digest == p->executed_digest()) return;
  fail("HonestHistoriesAgree", "honest replicas n" + std::to_string(it->second.node.value) +
                                   " and n" + std::to_string(p->id().value) +
                                   " hold different histories through sequence number " +
                                   std::to_string(seq) + " (" + pbft::short_hex(it->second.digest) +
                                   " vs " + pbft::short_hex(p->executed_digest()) + ")");
}

}  // namespace synod::check
