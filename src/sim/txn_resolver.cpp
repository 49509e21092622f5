#include "sim/txn_resolver.h"

#include <sstream>

#include "base/assert.h"
#include "sim/kv_command.h"

namespace synod::sim {

namespace {

constexpr uint64_t kStepUs = 100'000;
// The resolver's proposals' client: next to the rebalancer's, past every simulated client.
constexpr uint32_t kResolverClient = static_cast<uint32_t>(RequestId::kMaxClient - 1);

}  // namespace

void TxnResolver::start() {
  world_.schedule(kStepUs, EventType::kTxnResolve);
}

void TxnResolver::handle(const Event& e) {
  SYNOD_ASSERT(e.type == EventType::kTxnResolve);
  const uint64_t now_ms = world_.now() / 1000;
  const bool forget = ++steps_ % kForgetEverySteps == 0;
  for (uint32_t g = 0; g < cluster_.groups(); ++g) {
    Node* lead = cluster_.group(g).leader();
    if (lead == nullptr) continue;
    if (forget && now_ms > kForgetAfterMs) {
      // Records of transactions settled long ago go (txn_forget), as a server's resolver does.
      std::vector<std::string> txns =
          lead->kv->store().settled_txns(static_cast<int64_t>(now_ms - kForgetAfterMs), 100);
      if (!txns.empty()) {
        KvCommand cmd;
        cmd.client = kResolverClient;
        cmd.seq = ++seq_;
        cmd.op = KvOp::kPropose;
        world_.result.txn_records_forgotten += txns.size();
        for (std::string& t : txns) cmd.proposal.mutable_txn_forget()->add_txns(std::move(t));
        lead->engine->propose(cmd.encode());
        cluster_.group(g).after_input(*lead);
      }
    }
    if (!lead->kv->store().holding()) continue;  // nothing prepared
    for (const synodpb::TxnIntent& intent : lead->kv->store().intents()) {
      const synodpb::TxnPrepare& p = intent.prepare();
      if (static_cast<uint64_t>(p.started_at()) + kStaleMs > now_ms) continue;
      if (p.coordinator() >= cluster_.groups()) continue;  // no such group: never decided
      Node* coord = cluster_.group(p.coordinator()).leader();
      if (coord == nullptr) continue;
      KvCommand cmd;
      cmd.client = kResolverClient;
      cmd.seq = ++seq_;
      cmd.op = KvOp::kPropose;
      Node* target = lead;
      uint32_t target_group = g;
      if (const std::optional<kv::TxnDecided> d = coord->kv->store().decision(p.txn())) {
        synodpb::TxnDecision* r = cmd.proposal.mutable_txn_resolve();
        r->set_txn(p.txn());
        r->set_commit(d->commit);
        r->set_succeeded(d->succeeded);
        r->set_at(static_cast<int64_t>(now_ms));
        // Caused by the coordinator group's state: it carries that group's newest cut.
        cmd.proposal.set_cut_epoch(coord->kv->store().cut_epoch());
      } else {
        // Three-phase commit's termination rule: a precommitted part means every participant
        // voted yes, so commit; otherwise abort. The first decision applied stands.
        synodpb::TxnDecision* r = cmd.proposal.mutable_txn_decide();
        r->set_txn(p.txn());
        r->set_commit(intent.precommitted());
        r->set_succeeded(intent.precommitted() && intent.succeeded());
        r->set_at(static_cast<int64_t>(now_ms));
        if (intent.precommitted()) ++world_.result.resolver_commits;
        cmd.proposal.set_cut_epoch(lead->kv->store().cut_epoch());
        target = coord;
        target_group = p.coordinator();
      }
      target->engine->propose(cmd.encode());
      cluster_.group(target_group).after_input(*target);
      ++world_.result.resolver_proposals;
    }
  }
  world_.schedule(world_.now() + kStepUs, EventType::kTxnResolve);
}

bool TxnResolver::idle() {
  for (uint32_t g = 0; g < cluster_.groups(); ++g) {
    const Node* lead = cluster_.group(g).leader();
    if (lead == nullptr || lead->kv->store().holding()) return false;
  }
  return true;
}

std::string TxnResolver::describe() {
  std::ostringstream os;
  for (uint32_t g = 0; g < cluster_.groups(); ++g) {
    const Node* lead = cluster_.group(g).leader();
    if (lead == nullptr || !lead->kv->store().holding()) continue;
    const size_t held = lead->kv->store().intents().size();
    if (held > 0) os << " group " << g << " holds " << held << " transaction(s);";
  }
  return os.str();
}

}  // namespace synod::sim
