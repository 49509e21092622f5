#include "sim/options.h"

#include <sstream>

namespace synod::sim {

// ---------------------------------------------------------------------------------------------
// Names.

namespace {

struct FaultName {
  Fault fault;
  const char* name;
};
constexpr FaultName kFaultNames[] = {
    {Fault::kPartition, "partition"}, {Fault::kCrash, "crash"},
    {Fault::kPause, "pause"},         {Fault::kLoss, "loss"},
    {Fault::kDuplicate, "dup"},       {Fault::kReorder, "reorder"},
    {Fault::kLatency, "latency"},     {Fault::kDrift, "drift"},
    {Fault::kTopology, "topology"},   {Fault::kMembership, "membership"},
    {Fault::kTransfer, "transfer"},   {Fault::kByzantine, "byzantine"},
    {Fault::kRebalance, "rebalance"},
};

}  // namespace

const char* to_string(Fault f) {
  for (const auto& [fault, name] : kFaultNames) {
    if (fault == f) return name;
  }
  return "?";
}

bool parse_faults(const std::string& list, std::set<Fault>& out, std::string& error) {
  out.clear();
  if (list == kSwarm) return true;  // the caller sets SimOptions::swarm
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item == "none") continue;
    if (item == "all") {
      for (Fault fault : kAllFaults) out.insert(fault);
      continue;
    }
    bool found = false;
    for (const auto& [fault, name] : kFaultNames) {
      if (item == name) {
        out.insert(fault);
        found = true;
      }
    }
    if (!found) {
      std::string known;
      for (const auto& [fault, name] : kFaultNames)
        known += std::string(known.empty() ? "" : ",") + name;
      error = "unknown fault '" + item + "' (known: " + known + ",all,none)";
      return false;
    }
  }
  return true;
}

std::string fault_list(const std::set<Fault>& faults) {
  if (faults.empty()) return "none";
  std::string out;
  for (Fault f : faults) out += std::string(out.empty() ? "" : ",") + to_string(f);
  return out;
}

namespace {

constexpr std::pair<Workload, const char*> kWorkloadNames[] = {{Workload::kRegister, "register"},
                                                               {Workload::kLock, "lock"},
                                                               {Workload::kSemaphore, "semaphore"},
                                                               {Workload::kBank, "bank"}};

// Every plantable bug: its name and the flag it sets.
struct BugName {
  const char* name;
  bool raft::PlantedBugs::*raft_flag;
  bool paxos::PlantedBugs::*paxos_flag;
  bool WorkloadBugs::*workload_flag;
  bool pbft::PlantedBugs::*pbft_flag = nullptr;
};
constexpr BugName kBugNames[] = {
    {"vote-without-log-check", &raft::PlantedBugs::vote_without_log_check, nullptr, nullptr},
    {"commit-previous-term", &raft::PlantedBugs::commit_previous_term_by_count, nullptr, nullptr},
    {"vote-before-persist", &raft::PlantedBugs::vote_before_persist, nullptr, nullptr},
    {"read-index-without-quorum", &raft::PlantedBugs::read_index_without_quorum, nullptr, nullptr},
    {"skip-phase1-on-round-change", nullptr, &paxos::PlantedBugs::skip_phase1_on_round_change,
     nullptr},
    {"answer-before-persist", nullptr, &paxos::PlantedBugs::answer_before_persist, nullptr},
    {"ignore-promised-values", nullptr, &paxos::PlantedBugs::ignore_promised_values, nullptr},
    {"unfenced-lock", nullptr, nullptr, &WorkloadBugs::unfenced},
    {"extra-permit", nullptr, nullptr, &WorkloadBugs::extra_permit},
    {"lessor-keeps-deadlines", nullptr, nullptr, &WorkloadBugs::lessor_keeps_deadlines},
    {"watch-resume-gap", nullptr, nullptr, &WorkloadBugs::watch_resume_gap},
    {"watch-resume-duplicate", nullptr, nullptr, &WorkloadBugs::watch_resume_duplicate},
    {"small-quorums", nullptr, nullptr, nullptr, &pbft::PlantedBugs::small_quorums},
    {"skip-mac-check", nullptr, nullptr, nullptr, &pbft::PlantedBugs::skip_mac_check},
    {"drop-prepared-in-view-change", nullptr, nullptr, nullptr,
     &pbft::PlantedBugs::drop_prepared_in_view_change},
    {"unchecked-state", nullptr, nullptr, nullptr, &pbft::PlantedBugs::unchecked_state},
    {"apply-every-copy", nullptr, nullptr, nullptr, &pbft::PlantedBugs::apply_every_copy},
    {"client-accepts-one-reply", nullptr, nullptr, &WorkloadBugs::client_accepts_one_reply},
    {"remove-before-catch-up", nullptr, nullptr, &WorkloadBugs::remove_before_catch_up},
    {"commit-before-decision", nullptr, nullptr, &WorkloadBugs::commit_before_decision},
    {"cut-ignores-in-flight", nullptr, nullptr, &WorkloadBugs::cut_ignores_in_flight},
};

}  // namespace

const char* to_string(Workload w) {
  for (const auto& [workload, name] : kWorkloadNames) {
    if (workload == w) return name;
  }
  return "?";
}

bool parse_workload(const std::string& name, Workload& out, std::string& error) {
  for (const auto& [workload, known] : kWorkloadNames) {
    if (name == known) {
      out = workload;
      return true;
    }
  }
  error = "unknown workload '" + name + "' (known: register, lock, semaphore, bank)";
  return false;
}

bool parse_bug(const std::string& name, SimOptions& options, std::string& error) {
  for (const BugName& b : kBugNames) {
    if (name != b.name) continue;
    if (b.raft_flag != nullptr) options.bugs.raft.*b.raft_flag = true;
    if (b.paxos_flag != nullptr) options.bugs.paxos.*b.paxos_flag = true;
    if (b.workload_flag != nullptr) options.workload_bugs.*b.workload_flag = true;
    if (b.pbft_flag != nullptr) options.bugs.pbft.*b.pbft_flag = true;
    return true;
  }
  std::string known;
  for (const BugName& b : kBugNames) known += std::string(known.empty() ? "" : ", ") + b.name;
  error = "unknown bug '" + name + "' (known: " + known + ")";
  return false;
}

uint32_t liveness_bound_ticks(const SimOptions& o) {
  return o.engine == replica::EngineKind::kPbft ? 2 * o.liveness_ticks : o.liveness_ticks;
}

int pbft_faults(const SimOptions& o) {
  return o.faults.contains(Fault::kByzantine) ? o.byzantine : (o.nodes - 1) / 3;
}

bool check_options(const SimOptions& o, std::string& error) {
  const bool pbft = o.engine == replica::EngineKind::kPbft;
  if (o.shards == 0 && o.nodes > 7) {
    error = "--nodes above 7 needs --shards (one group of at most 7 members)";
    return false;
  }
  if (o.three_phase && o.workload != Workload::kBank) {
    error = "--commit-protocol 3pc is for the bank workload (its cross-shard transactions)";
    return false;
  }
  if (o.workload == Workload::kBank && o.shards == 0) {
    error = "--workload bank needs --shards (its transfers cross shards)";
    return false;
  }
  if (o.faults.contains(Fault::kRebalance) && o.shards == 0) {
    error = "--faults rebalance needs --shards (it moves shards between hosts)";
    return false;
  }
  if (o.shards > 0) {
    if (pbft) {
      error = "--shards runs Raft or Multi-Paxos groups";
      return false;
    }
    if ((o.workload != Workload::kRegister && o.workload != Workload::kBank) || o.watchers != 0) {
      error = "--shards runs the register or bank workload, without watchers";
      return false;
    }
    if (o.faults.contains(Fault::kMembership) || o.duel) {
      error =
          "--shards has no membership fault or duel (a shard's replicas move by the rebalance "
          "fault)";
      return false;
    }
    if (o.replication > o.nodes) {
      error = "--replication must not exceed --nodes";
      return false;
    }
  }
  if (o.faults.contains(Fault::kByzantine) && !pbft) {
    error =
        "--faults byzantine needs --engine pbft (Raft and Multi-Paxos tolerate crashes "
        "and omissions only)";
    return false;
  }
  if (!pbft) return true;
  if (o.workload != Workload::kRegister) {
    error =
        "--engine pbft runs the register workload: leases, locks and semaphores expire by "
        "the primary's clock, which a Byzantine primary controls";
    return false;
  }
  if (o.faults.contains(Fault::kMembership) || o.faults.contains(Fault::kTransfer) || o.duel) {
    error = "--engine pbft has a fixed membership and no leadership transfer or duel";
    return false;
  }
  if (o.faults.contains(Fault::kByzantine) && o.byzantine >= o.nodes) {
    error = "--byzantine must leave at least one honest replica";
    return false;
  }
  return true;
}

std::string replay_command(const SimOptions& o) {
  std::ostringstream os;
  os << "synod sim --seed " << o.seed;
  if (o.engine != replica::EngineKind::kRaft) os << " --engine " << replica::to_string(o.engine);
  os << " --nodes " << o.nodes << " --faults " << (o.swarm ? kSwarm : fault_list(o.faults))
     << " --ops " << o.ops << " --clients " << o.clients;
  if (o.shards > 0) os << " --shards " << o.shards << " --replication " << o.replication;
  if (o.keys != SimOptions{}.keys) os << " --keys " << o.keys;
  if (o.workload != Workload::kRegister) os << " --workload " << to_string(o.workload);
  if (o.three_phase) os << " --commit-protocol 3pc";
  if (o.workload == Workload::kSemaphore) os << " --permits " << o.permits;
  if (o.watchers != 0) os << " --watchers " << o.watchers;
  // Also for a swarm run: a PBFT swarm run has Byzantine faults, drawn once the run starts.
  if (o.byzantine != SimOptions{}.byzantine) os << " --byzantine " << o.byzantine;
  for (const BugName& b : kBugNames) {
    if ((b.raft_flag != nullptr && o.bugs.raft.*b.raft_flag) ||
        (b.paxos_flag != nullptr && o.bugs.paxos.*b.paxos_flag) ||
        (b.workload_flag != nullptr && o.workload_bugs.*b.workload_flag) ||
        (b.pbft_flag != nullptr && o.bugs.pbft.*b.pbft_flag)) {
      os << " --bug " << b.name;
    }
  }
  if (o.read_mode == raft::ReadMode::kLease) os << " --lease-reads";
  if (o.duel) os << " --adversary duel --duel-rounds " << o.duel_rounds;
  if (o.max_inflight_msgs != 0) os << " --window " << o.max_inflight_msgs;
  if (o.swarm) return os.str();  // the seed draws the rest
  if (o.buggify) os << " --buggify";
  if (o.election_crash_probability != SimOptions{}.election_crash_probability) {
    os << " --election-crash " << o.election_crash_probability;
  }
  if (o.election_crash_max_delay_us != SimOptions{}.election_crash_max_delay_us) {
    os << " --election-crash-delay-us " << o.election_crash_max_delay_us;
  }
  if (o.election_isolate_probability != SimOptions{}.election_isolate_probability) {
    os << " --election-isolate " << o.election_isolate_probability;
  }
  return os.str();
}

}  // namespace synod::sim
