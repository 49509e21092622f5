#include "sim/simulation.h"

#include <memory>
#include <set>
#include <sstream>

#include "base/assert.h"
#include "kv/cluster_cut.h"
#include "sim/bank_client.h"
#include "sim/clients.h"
#include "sim/cluster.h"
#include "sim/nemesis.h"
#include "sim/nodes.h"
#include "sim/truth.h"
#include "sim/txn_resolver.h"
#include "sim/watchers.h"
#include "sim/world.h"

namespace synod::sim {

namespace {

// One run: the world and its parts, the loop that hands each event to the part it is for, and
// the verdict. The parts hear from the nodes through NodeObserver.
class Sim final : public NodeObserver {
 public:
  Sim(const SimOptions& options, std::ostream& log)
      : world_(options, log),
        o_(world_.options),
        cluster_(world_, *this),
        nodes_(cluster_.group(0)),
        clients_(world_, cluster_.truth(0), routing()),
        watchers_(world_, nodes_, cluster_.truth(0)),
        rebalancer_(world_, cluster_),
        resolver_(world_, cluster_),
        nemesis_(world_, cluster_, clients_, watchers_, rebalancer_) {}

  SimResult run();

 private:
  // A run whose events multiply without bound (a message storm) fails at this many pending
  // events rather than by running out of memory: a correct cluster never keeps so many.
  static constexpr size_t kMaxPendingEvents = 2'000'000;
  // The fault phase ends when the clients have issued their operations, or at this time.
  static constexpr uint64_t kFaultPhaseCapUs = 120'000'000;

  void started(Node& n) override { watchers_.node_gone(n); }
  void crashed(Node& n) override { watchers_.node_gone(n); }
  void stepped(Node& n) override { watchers_.flush(n); }
  void elected(Node& n) override { nemesis_.elected(n); }

  // Sharded: a key's requests go to its shard's group.
  Routing routing() const {
    if (o_.shards == 0) return {};
    return {[this](std::string_view key) { return cluster_.group_of_key(key); },
            [this](uint32_t g) { return cluster_.live_slots(g); },
            [this](const std::string& key) { return cluster_.group_of_key(key); }};
  }
  // The bank's accounts, read from each group's leader at the end: their total is what it was.
  void check_bank_total();
  // Each consistent cut the bank client took, from the groups' records: its total, once the
  // messages in flight at the cut are delivered, is the bank's.
  void check_cuts();
  void dispatch(const Event& e);
  void heal_all();
  // After the heal: true once every client finished and no membership change is half done,
  // or once the liveness bound has passed (a failure).
  bool final_phase_over();
  void verdict();

  World world_;
  const SimOptions& o_;
  Cluster cluster_;
  Nodes& nodes_;  // group 0: the only one unless sharded
  Clients clients_;
  Watchers watchers_;
  Rebalancer rebalancer_;
  TxnResolver resolver_;
  Nemesis nemesis_;
  std::unique_ptr<Duel> duel_;
  uint64_t bound_ticks_ = 0;  // the liveness bound, from the heal
  static constexpr uint64_t kAuditTicksPerGroup = 8;
};

void Sim::dispatch(const Event& e) {
  switch (e.type) {
    case EventType::kTick:
    case EventType::kDeliver:
    case EventType::kFsyncDone:
    case EventType::kFetchServe:
    case EventType::kStateFetched:
    case EventType::kStoreFlushed:
    case EventType::kStateRetained:
    case EventType::kClientRequest:
      return cluster_.handle(e);
    case EventType::kClientResponse:
    case EventType::kClientTimeout:
    case EventType::kClientNext:
      return clients_.handle(e);
    case EventType::kWatchConnect:
    case EventType::kWatchDeliver:
      return watchers_.handle(e);
    case EventType::kFault:
    case EventType::kHeal:
    case EventType::kMembership:
    case EventType::kTargetedCrash:
    case EventType::kTargetedIsolate:
      return nemesis_.handle(e);
    case EventType::kRebalance:
      return rebalancer_.handle(e);
    case EventType::kTxnResolve:
      return resolver_.handle(e);
  }
}

void Sim::heal_all() {
  nemesis_.heal_all();
  clients_.heal();
  // Moves still to make take their time after the heal too: each is a learner's catch-up, a
  // promotion and a removal, a few at once.
  bound_ticks_ = liveness_bound_ticks(o_) + Rebalancer::kTicksPerMove * rebalancer_.outstanding();
  if (o_.workload == Workload::kBank) {
    // A bank client's audit visits every group holding accounts in turn, twice (prepare,
    // resolve), and starts over when it finds an account held.
    std::set<uint32_t> groups;
    for (int i = 0; i < o_.keys; ++i) groups.insert(cluster_.group_of_key(bank_account(i)));
    bound_ticks_ += kAuditTicksPerGroup * groups.size();
  }
}

bool Sim::final_phase_over() {
  const bool bank = o_.workload == Workload::kBank;
  if (clients_.all_done() && nemesis_.membership_idle() && rebalancer_.idle() &&
      (!bank || resolver_.idle())) {
    return true;
  }
  const uint64_t liveness_us = bound_ticks_ * o_.tick_us;
  if (world_.now() <= world_.heal_time() + liveness_us) return false;
  SimResult& result = world_.result;
  result.liveness_ok = false;
  std::ostringstream os;
  os << "cluster did not finish within " << bound_ticks_ << " ticks of the heal (";
  if (cluster_.groups() == 1) {
    os << (nodes_.first_leader_after_heal() ? "a leader was elected" : "no leader elected");
  } else {
    os << (cluster_.leaders_after_heal() ? "every group elected a leader"
                                         : "some group elected no leader");
  }
  os << ", " << clients_.unfinished() << " client(s) unfinished";
  if (!nemesis_.membership_idle()) {
    os << ", membership change stuck at stage " << nemesis_.membership_stage();
  }
  if (!rebalancer_.idle()) os << ", rebalancing unfinished: " << rebalancer_.describe();
  if (bank && !resolver_.idle()) os << ", transactions still held:" << resolver_.describe();
  os << ")";
  os << cluster_.describe();  // where each member stands, for whoever replays it
  result.liveness_detail = os.str();
  return true;
}

SimResult Sim::run() {
  SYNOD_ASSERT(o_.nodes >= 1 && o_.nodes <= (o_.shards > 0 ? kMaxShardedHosts : 9));
  world_.result.seed = o_.seed;
  nemesis_.draw_swarm();
  if (o_.duel) {
    duel_ = std::make_unique<Duel>(o_.engine == replica::EngineKind::kMultiPaxos, o_.duel_rounds);
    nodes_.set_duel(duel_.get());
  }
  cluster_.start_all();
  if (o_.workload == Workload::kBank) resolver_.start();
  world_.watch_rng = world_.rng.fork();
  clients_.start_all();
  watchers_.start_all();
  nemesis_.start();
  while (!world_.idle()) {
    if (world_.pending() > kMaxPendingEvents) {
      std::ostringstream os;
      os << world_.pending() << " events pending at " << world_.now() / 1000 << " ms (bound "
         << kMaxPendingEvents << ")";
      world_.flag("EventStorm", os.str());
      break;
    }
    const std::unique_ptr<Event> e = world_.next_event();
    world_.advance(e->time);
    dispatch(*e);
    if (world_.fault_phase()) {
      if (duel_ != nullptr) {
        // The duel runs its rounds (bounded in virtual time too), then the network is timely.
        const uint64_t cap = o_.duel_rounds * 4 * o_.election_ticks * o_.tick_us + kFaultPhaseCapUs;
        if (duel_->done() || world_.now() > cap) {
          duel_->release(world_.now(), world_.log);
          heal_all();
        }
      } else if (clients_.fault_phase_over() || world_.now() > kFaultPhaseCapUs) {
        heal_all();
      }
    } else if (final_phase_over()) {
      break;
    }
  }
  verdict();
  return std::move(world_.result);
}

void Sim::check_bank_total() {
  int64_t total = 0;
  for (int i = 0; i < o_.keys; ++i) {
    const std::string key = bank_account(i);
    Node* lead = cluster_.group(cluster_.group_of_key(key)).leader();
    if (lead == nullptr) return;  // a liveness failure says so already
    const KvResult r = lead->kv->read(key);
    if (r.error) return;  // still held: the liveness failure says so
    total += r.value ? std::stoll(*r.value) : kBankInitialBalance;
  }
  if (total != kBankInitialBalance * o_.keys) {
    world_.flag("BankTotal", "the accounts hold " + std::to_string(total) + " at the end, not " +
                                 std::to_string(kBankInitialBalance * o_.keys));
  }
}

void Sim::check_cuts() {
  SimResult& result = world_.result;
  for (uint64_t epoch = 1; epoch <= BankClient::kMaxCuts; ++epoch) {
    std::map<uint32_t, std::string> images;
    for (uint32_t g = 0; g < cluster_.groups(); ++g) {
      Nodes& group = cluster_.group(g);
      for (int slot : group.live_slots()) {
        const Node& n = group[slot];
        if (n.kv == nullptr) continue;
        if (const kv::CutRecord* record = n.kv->cut(epoch)) {
          images[g] = record->image;
          break;
        }
      }
    }
    if (images.empty()) continue;  // not taken
    if (images.size() < cluster_.groups()) {
      ++result.cuts_incomplete;
      continue;
    }
    kv::Expected<kv::ClusterCut, std::string> cut = kv::ClusterCut::load(images);
    if (!cut) {
      world_.flag("CutTotal", "cut " + std::to_string(epoch) + ": " + cut.error());
      continue;
    }
    result.cut_messages_in_flight += cut.value().channel_state().size();
    cut.value().settle(
        kv::ClusterCutBugs{.ignore_in_flight = o_.workload_bugs.cut_ignores_in_flight});
    std::map<std::string, int64_t> balances;
    for (const mvccpb::KeyValue& kv : cut.value().data_keys()) {
      balances[kv.key()] = std::stoll(kv.value());
    }
    int64_t total = 0;
    for (int i = 0; i < o_.keys; ++i) {
      auto it = balances.find(bank_account(i));
      total += it == balances.end() ? kBankInitialBalance : it->second;
    }
    ++result.cuts_checked;
    if (total != kBankInitialBalance * o_.keys) {
      world_.flag("CutTotal", "cut " + std::to_string(epoch) + " holds " + std::to_string(total) +
                                  ", not " + std::to_string(kBankInitialBalance * o_.keys) + " (" +
                                  std::to_string(cut.value().channel_state().size()) +
                                  " messages in flight)");
    }
  }
}

void Sim::verdict() {
  SimResult& result = world_.result;
  result.end_time_us = world_.now();
  if (result.liveness_ok) {
    const uint64_t heal = world_.heal_time();
    const uint64_t first_leader = cluster_.leaders_after_heal();
    std::ostringstream os;
    os << "leader "
       << (first_leader >= heal && first_leader ? (first_leader - heal) / o_.tick_us : 0)
       << " ticks after the heal; clients finished " << (world_.now() - heal) / o_.tick_us
       << " ticks after (bound " << bound_ticks_ << ")";
    result.liveness_detail = os.str();
  }
  if (!watchers_.empty()) watchers_.finish();
  clients_.add_stats(result);
  if (duel_ != nullptr) {
    result.duel_rounds = duel_->rounds();
    result.duel_chosen = duel_->chosen_during_duel();
    result.duel_refused = duel_->refused();
    result.duel_decided_after = duel_->first_chosen_after_us() != 0;
    result.duel_first_chosen_ms =
        duel_->first_chosen_after_us()
            ? (duel_->first_chosen_after_us() - duel_->released_at_us()) / 1000
            : 0;
    if (duel_->chosen_during_duel() > 0) {
      world_.flag("DuelDecided", std::to_string(duel_->chosen_during_duel()) +
                                     " values were chosen while the adversary ran");
    }
    if (duel_->rounds() < o_.duel_rounds) {
      world_.flag("DuelShort", "the duel played " + std::to_string(duel_->rounds()) + " of " +
                                   std::to_string(o_.duel_rounds) + " rounds in its time bound");
    }
  }
  cluster_.check_truths();
  if (o_.workload == Workload::kBank) check_bank_total();
  if (o_.workload == Workload::kBank && o_.shards > 0) check_cuts();
  cluster_.check_store_convergence();
  result.violations = cluster_.violations();
  result.violations.insert(result.violations.end(), world_.violations.begin(),
                           world_.violations.end());
  check::CheckOptions check_options;
  check_options.max_states = 500'000;
  std::vector<check::Operation> history = clients_.take_history();
  result.linearizability = check::check_kv(history, check_options);
  result.history = std::move(history);
}

}  // namespace

SimResult run_simulation(const SimOptions& options, std::ostream& log) {
  Sim sim(options, log);
  return sim.run();
}

void print_summary(const SimOptions& o, const SimResult& r, std::ostream& out) {
  out << "seed " << o.seed << ": " << o.nodes << " nodes";
  if (o.shards > 0) out << ", " << o.shards << " shards of " << o.replication << " replicas";
  out << ", faults " << (o.swarm ? "swarm" : fault_list(o.faults)) << ", " << o.clients
      << " clients, workload " << to_string(o.workload) << "\n";
  if (!r.swarm.empty()) out << "  swarm drew   " << r.swarm << "\n";
  out << "  operations   ok=" << r.ops_ok << " fail=" << r.ops_fail << " info=" << r.ops_info
      << "  committed entries=" << r.committed << "\n";
  out << "  elections    " << r.elections << "\n";
  if (o.shards > 0) {
    out << "  rebalancing  moves planned=" << r.moves_planned << " done=" << r.moves_done << "\n";
  }
  if (o.workload == Workload::kBank) {
    out << "  bank         transfers=" << r.transfers << " (cross-shard " << r.cross_shard
        << ") audits=" << r.audits << " coordinator crashes=" << r.coordinator_crashes
        << " resolver proposals=" << r.resolver_proposals;
    if (r.resolver_commits > 0) out << " (commits of precommitted=" << r.resolver_commits << ")";
    out << " records forgotten=" << r.txn_records_forgotten;
    out << "\n";
    if (o.shards > 0) {
      out << "  cuts         checked=" << r.cuts_checked
          << " messages in flight=" << r.cut_messages_in_flight
          << " incomplete=" << r.cuts_incomplete << "\n";
    }
  }
  out << "  messages     sent=" << r.messages_sent << " dropped=" << r.messages_dropped
      << " duplicated=" << r.messages_duplicated << " snapshot-chunks=" << r.snapshots_sent
      << " state-fetches=" << r.state_fetches << " (failed " << r.state_fetch_failures << ")\n";
  out << "  faults      ";
  if (r.faults_injected.empty()) out << " none";
  for (const auto& [name, count] : r.faults_injected) out << " " << name << "=" << count;
  out << "\n";
  out << "  virtual time " << r.end_time_us / 1000 << " ms\n";
  if (o.workload == Workload::kLock || o.workload == Workload::kSemaphore) {
    out << "  " << to_string(o.workload) << (o.workload == Workload::kLock ? "         " : "    ")
        << "cycles=" << r.cycles << " acquisitions=" << r.acquisitions << " acts ok=" << r.acts_ok
        << " refused=" << r.acts_refused << " leases lost=" << r.leases_lost
        << " expired=" << r.lease_expiries << " client pauses=" << r.client_pauses << "\n";
  }
  if (o.watchers > 0) {
    out << "  watches      watchers=" << o.watchers << " streams=" << r.watch_streams
        << " events=" << r.watch_events << " compaction-cancels=" << r.watch_compaction_cancels
        << "\n";
  }
  out << "  invariants   " << (r.violations.empty() ? "ok" : "VIOLATED") << "\n";
  for (const check::Violation& v : r.violations) {
    out << "    " << v.invariant << ": " << v.detail << "\n";
  }
  if (o.workload == Workload::kRegister) {
    out << "  linearizable " << check::to_string(r.linearizability.verdict) << " ("
        << r.linearizability.states_explored << " states)\n";
  }
  if (r.linearizability.verdict == check::Verdict::kNotLinearizable) {
    out << "    " << r.linearizability.explanation;
    out << "    failing window:\n";
    for (const check::Operation& op : r.linearizability.failing_window) {
      out << "      " << check::to_string(op) << "\n";
    }
  }
  if (o.duel) {
    out << "  duel         " << r.duel_rounds << " rounds, " << r.duel_chosen
        << " values chosen while it ran, " << r.duel_refused << " held messages refused; "
        << (r.duel_decided_after ? "first value chosen " + std::to_string(r.duel_first_chosen_ms) +
                                       " ms after the release"
                                 : std::string("no value chosen after the release"))
        << "\n";
  }
  out << "  liveness     " << (r.liveness_ok ? "ok" : "VIOLATED") << ": " << r.liveness_detail
      << "\n";
  out << "  verdict      " << (r.passed() ? "PASS" : "FAIL") << "\n";
  if (!r.passed()) out << "  replay with:  " << replay_command(o) << " --trace\n";
}

}  // namespace synod::sim
