#include "sim/clients.h"

#include <algorithm>

#include "base/assert.h"
#include "core/pbft/messages.h"

namespace synod::sim {

void Clients::start_all() {
  clients_.resize(o_.clients);
  for (int c = 0; c < o_.clients; ++c) {
    clients_[c].id = static_cast<uint32_t>(c);
    if (o_.workload == Workload::kBank) {
      BankOptions bo;
      bo.accounts = o_.keys;
      bo.group_of = routing_.bank_group_of;
      bo.commit_before_decision = o_.workload_bugs.commit_before_decision;
      bo.three_phase = o_.three_phase;
      // The first client also takes consistent cuts of every group (the metadata group too).
      if (c == 0 && o_.shards > 0) bo.cut_groups = static_cast<uint32_t>(o_.shards) + 1;
      clients_[c].bank = std::make_unique<BankClient>(static_cast<uint32_t>(c), std::move(bo));
    } else if (o_.workload != Workload::kRegister) {
      RecipeOptions ro;
      ro.recipe = o_.workload == Workload::kLock ? Recipe::kLock : Recipe::kSemaphore;
      ro.permits = o_.permits;
      ro.unfenced = o_.workload_bugs.unfenced;
      ro.extra_permit = o_.workload_bugs.extra_permit;
      clients_[c].recipe = std::make_unique<RecipeClient>(static_cast<uint32_t>(c), ro);
    }
    Event& e =
        world_.schedule(200'000 + world_.client_rng.range(0, 10'000), EventType::kClientNext);
    e.client = c;
  }
}

void Clients::handle(const Event& e) {
  Client& c = clients_[static_cast<size_t>(e.client)];
  switch (e.type) {
    case EventType::kClientNext:
      return next(c);
    case EventType::kClientResponse:
      return on_reply(c, e.reply);
    case EventType::kClientTimeout:
      return on_timeout(c, e.gen);
    default:
      SYNOD_ASSERT(false && "not a client event");
  }
}

bool Clients::fault_phase_over() const {
  bool idle = issued_ >= o_.ops;
  for (const Client& c : clients_) idle = idle && !c.busy;
  return idle;
}

bool Clients::all_done() const {
  return unfinished() == 0;
}

int Clients::unfinished() const {
  int unfinished = 0;
  for (const Client& c : clients_) unfinished += c.done ? 0 : 1;
  return unfinished;
}

void Clients::heal() {
  for (Client& c : clients_) {
    c.pause_next_us = 0;
    Event& e = world_.schedule(world_.now(), EventType::kClientNext);
    e.client = static_cast<int>(c.id);
  }
}

void Clients::pause_one() {
  std::vector<Client*> holders;
  for (Client& c : clients_) {
    if (c.recipe->holding()) holders.push_back(&c);
  }
  Client& victim = holders.empty() ? clients_[world_.fault_rng.uniform(clients_.size())]
                                   : *holders[world_.fault_rng.uniform(holders.size())];
  victim.pause_next_us = world_.fault_rng.range(1'200'000, 2'500'000);  // strikes before an act
  ++world_.result.client_pauses;
  ++world_.result.faults_injected["client-pause"];
}

void Clients::next(Client& c) {
  if (c.recipe) return recipe_next(c);
  if (c.bank) return bank_next(c);
  if (c.busy || c.done) return;
  if (world_.fault_phase() && issued_ >= o_.ops) return;  // waits for the heal
  if (!world_.fault_phase() && c.final_ok >= o_.final_ops) {
    c.done = true;
    return;
  }
  ++issued_;
  c.busy = true;
  ++c.seq;
  check::Operation op;
  op.client = c.id;
  op.key = "k" + std::to_string(world_.client_rng.uniform(o_.keys));
  op.invoke_time = world_.now();
  const uint64_t dice = world_.client_rng.uniform(10);
  KvCommand req;
  req.client = c.id;
  req.seq = c.seq;
  req.key = op.key;
  if (dice < 4) {
    op.kind = check::OpKind::kGet;
    req.op = KvOp::kGet;
  } else if (dice < 8 || !c.last_seen.contains(op.key)) {
    op.kind = check::OpKind::kPut;
    op.value = "v" + std::to_string(c.id) + "." + std::to_string(c.seq);
    req.op = KvOp::kPut;
  } else {
    op.kind = check::OpKind::kCas;
    op.expected = c.last_seen[op.key];
    op.value = "v" + std::to_string(c.id) + "." + std::to_string(c.seq);
    req.op = KvOp::kCas;
  }
  req.value = op.value;
  req.expected = op.expected;
  c.op = op;
  send_request(c, std::move(req), 0);
}

// PBFT: a write goes to the replicas as the client's own request, with a MAC for each
// (OSDI 4.1); the timestamp is the client's operation number.
std::string Clients::authenticate(Client& c, const KvCommand& req) {
  if (!c.keys) {
    std::map<uint64_t, pbft::PublicKeys> replicas;
    for (int i = 1; i <= o_.nodes; ++i) {
      replicas[static_cast<uint64_t>(i)] = pbft::make_keys_from_seed(o_.seed, i).pub;
    }
    c.keys = std::make_unique<pbft::Keyring>(pbft::make_keys_from_seed(o_.seed, 1'000'000 + c.id),
                                             replicas);
  }
  pbft::AuthenticatedRequest r;
  r.request = pbft::Request{c.keys->public_keys().kx, req.seq, req.encode()};
  const std::string bytes = pbft::request_auth_bytes(r.request);
  for (int i = 1; i <= o_.nodes; ++i) {
    r.macs.emplace_back(i, c.keys->mac_for(static_cast<uint64_t>(i), bytes));
  }
  return pbft::encode_client_request(r);
}

// Sends after a network delay, plus `wait_us` on the client's side first. A PBFT client sends
// to every replica (OSDI 4.1: a client that does not trust the primary).
void Clients::send_request(Client& c, KvCommand req, uint64_t wait_us) {
  if (o_.engine == replica::EngineKind::kPbft) {
    c.votes.clear();
    const bool write = req.op != KvOp::kGet && req.op != KvOp::kRange;
    const std::string bft = write ? authenticate(c, req) : std::string();
    const uint64_t send_at = world_.now() + wait_us;
    c.sent_us = send_at;
    for (int node = 1; node <= o_.nodes; ++node) {
      Event& e =
          world_.schedule(send_at + world_.client_rng.range(200, 1000), EventType::kClientRequest);
      e.node = node;
      e.request = req;
      e.bft = bft;
    }
    Event& t =
        world_.schedule(world_.now() + wait_us + o_.client_timeout_us, EventType::kClientTimeout);
    t.client = static_cast<int>(c.id);
    t.gen = c.seq;
    return;
  }
  const bool keyed = req.op == KvOp::kGet || req.op == KvOp::kPut || req.op == KvOp::kCas;
  if (!routing_.group_of) {
    c.group = 0;
  } else if (req.group >= 0) {
    c.group = static_cast<uint32_t>(req.group);
  } else if (keyed || req.op == KvOp::kRange) {
    c.group = routing_.group_of(keyed ? req.key : req.range.key());
  } else {
    c.group = 0;
  }
  int target = c.leader_hints[c.group];
  c.keepalive_outstanding = req.op == KvOp::kKeepAlive;
  if (routing_.group_of) {
    // The group's replicas as the shard map has them now; a hint naming one that moved away
    // is dropped.
    const std::vector<int> slots = routing_.slots(c.group);
    if (std::find(slots.begin(), slots.end(), target) == slots.end() ||
        world_.client_rng.chance(0.2)) {
      target = slots[world_.client_rng.uniform(slots.size())];
    }
  } else if (c.keepalive_outstanding && c.keepalive_node != 0) {
    target = c.keepalive_node;
  } else if (target < 1 || target > o_.nodes || world_.client_rng.chance(0.2)) {
    target = 1 + static_cast<int>(world_.client_rng.uniform(o_.nodes));
  }
  if (c.keepalive_outstanding) c.keepalive_node = target;
  const uint64_t send_at = world_.now() + wait_us + world_.client_rng.range(200, 1000);
  c.sent_us = send_at;
  Event& e = world_.schedule(send_at, EventType::kClientRequest);
  e.node = target;
  e.group = c.group;
  e.request = std::move(req);
  Event& t =
      world_.schedule(world_.now() + wait_us + o_.client_timeout_us, EventType::kClientTimeout);
  t.client = static_cast<int>(c.id);
  t.gen = c.seq;
}

// A recipe client's next step. A pause planted on the client strikes between deciding on a
// request and sending it, as a GC pause or SIGSTOP of a lock holder that is about to write.
void Clients::recipe_next(Client& c) {
  if (c.busy || c.done) return;
  if (world_.fault_phase() && issued_ >= o_.ops) return;  // waits for the heal
  if (!world_.fault_phase() && c.final_ok >= o_.final_ops) {
    c.done = true;
    return;
  }
  const bool was_holding = c.recipe->holding();
  RecipeStep step = c.recipe->next(world_.now(), world_.client_rng);
  if (step.counted) ++issued_;
  c.busy = true;
  ++c.seq;
  step.cmd.client = c.id;
  step.cmd.seq = c.seq;
  uint64_t wait_us = step.delay_us;
  if (c.pause_next_us != 0 && was_holding && step.cmd.op == KvOp::kPropose) {
    if (o_.verbose)
      world_.at() << "pause client c" << c.id << " for " << c.pause_next_us / 1000 << " ms\n";
    wait_us += c.pause_next_us;
    c.pause_next_us = 0;
  }
  send_request(c, std::move(step.cmd), wait_us);
}

// A bank client's next request. A new operation counts toward the fault phase's budget.
void Clients::bank_next(Client& c) {
  if (c.busy || c.done) return;
  if (c.bank->idle()) {
    if (world_.fault_phase() && issued_ >= o_.ops) return;  // waits for the heal
    if (!world_.fault_phase() && c.final_ok >= o_.final_ops) {
      c.done = true;
      return;
    }
    ++issued_;
    c.bank_op_start_us = world_.now();
  }
  c.busy = true;
  ++c.seq;
  KvCommand cmd = c.bank->next(world_.now() / 1000, world_.client_rng);
  cmd.client = c.id;
  cmd.seq = c.seq;
  send_request(c, std::move(cmd), 0);
}

// A bank client's request was answered (reply) or timed out (null).
void Clients::bank_done(Client& c, const ClientReply* reply) {
  c.busy = false;
  if (reply != nullptr && reply->status == ReplyStatus::kOk && !reply->result.error) {
    ++world_.result.ops_ok;
    c.bank->on_reply(reply->result);
  } else {
    ++(reply != nullptr ? world_.result.ops_fail : world_.result.ops_info);
    c.bank->on_failure();
  }
  for (const std::string& bad : c.bank->take_bad_audits()) world_.flag("BankTotal", bad);
  if (c.bank->take_finished() && !world_.fault_phase() &&
      c.bank_op_start_us >= world_.heal_time()) {
    ++c.final_ok;
  }
  Event& e =
      world_.schedule(world_.now() + world_.client_rng.range(0, 2000), EventType::kClientNext);
  e.client = static_cast<int>(c.id);
}

void Clients::finish_op(Client& c, check::Outcome outcome) {
  c.op.outcome = outcome;
  c.op.complete_time = world_.now();
  c.op.id = history_.size();
  if (outcome == check::Outcome::kOk) {
    if (c.op.kind == check::OpKind::kGet) {
      if (c.op.output) c.last_seen[c.op.key] = *c.op.output;
    } else if (c.op.kind == check::OpKind::kPut || c.op.cas_succeeded) {
      c.last_seen[c.op.key] = c.op.value;
    }
  }
  switch (outcome) {
    case check::Outcome::kOk:
      ++world_.result.ops_ok;
      break;
    case check::Outcome::kFail:
      ++world_.result.ops_fail;
      break;
    case check::Outcome::kInfo:
      ++world_.result.ops_info;
      break;
  }
  if (!world_.fault_phase() && outcome == check::Outcome::kOk &&
      c.op.invoke_time >= world_.heal_time()) {
    ++c.final_ok;
  }
  if (o_.trace) world_.at() << "c" << c.id << " " << check::to_string(c.op) << "\n";
  history_.push_back(c.op);
  c.busy = false;
  Event& e =
      world_.schedule(world_.now() + world_.client_rng.range(0, 2000), EventType::kClientNext);
  e.client = static_cast<int>(c.id);
}

// A PBFT client takes a result once f + 1 replicas sent it: one of them is honest (OSDI 4.1).
// Refusals are not results: the operation waits for its timeout.
bool Clients::take_bft_reply(Client& c, const ClientReply& r) {
  if (r.status != ReplyStatus::kOk) return false;
  std::string what = r.result.value ? "v" + *r.result.value : "-";
  what += r.result.cas_succeeded ? "/cas" : "/";
  what += r.result.error ? "/e" + *r.result.error : "/";
  std::set<int>& from = c.votes[what];
  from.insert(r.from);
  const size_t needed =
      o_.workload_bugs.client_accepts_one_reply ? 1 : static_cast<size_t>(pbft_faults(o_)) + 1;
  return from.size() >= needed;
}

void Clients::on_reply(Client& c, const ClientReply& r) {
  if (!c.busy || r.seq != c.seq) return;  // answer to an operation that already timed out
  if (o_.engine == replica::EngineKind::kPbft && !take_bft_reply(c, r)) return;
  c.leader_hints[c.group] = r.leader_hint;
  if (c.bank) return bank_done(c, &r);
  if (c.recipe) {
    c.busy = false;
    if (r.status == ReplyStatus::kRejected) {
      ++world_.result.ops_fail;
      if (c.keepalive_outstanding) c.keepalive_node = 0;
      c.recipe->on_failure();
    } else {
      ++world_.result.ops_ok;
      const RecipeClient::Learned learned =
          c.recipe->on_reply(r.result, c.sent_us, world_.now(), world_.client_rng);
      if (learned.promise) truth_.promised(learned.promise->first, learned.promise->second);
      if (learned.acquired) {
        truth_.acquired({c.id, learned.acquired->first, learned.acquired->second});
      }
      if (learned.cycle_done && !world_.fault_phase() &&
          learned.cycle_start_us >= world_.heal_time())
        ++c.final_ok;
    }
    Event& e =
        world_.schedule(world_.now() + world_.client_rng.range(0, 2000), EventType::kClientNext);
    e.client = static_cast<int>(c.id);
    return;
  }
  if (r.status == ReplyStatus::kRejected) {
    finish_op(c, check::Outcome::kFail);  // never proposed, so it never takes effect
    return;
  }
  c.op.output = r.result.value;
  c.op.cas_succeeded = r.result.cas_succeeded;
  finish_op(c, check::Outcome::kOk);
}

void Clients::on_timeout(Client& c, uint64_t seq) {
  if (!c.busy || seq != c.seq) return;
  c.leader_hints[c.group] = 0;
  if (c.bank) return bank_done(c, nullptr);
  if (c.recipe) {
    c.busy = false;
    ++world_.result.ops_info;
    if (c.keepalive_outstanding) c.keepalive_node = 0;
    c.recipe->on_failure();
    Event& e =
        world_.schedule(world_.now() + world_.client_rng.range(0, 2000), EventType::kClientNext);
    e.client = static_cast<int>(c.id);
    return;
  }
  // A read that timed out changed nothing; a write may still land.
  finish_op(c, c.op.kind == check::OpKind::kGet ? check::Outcome::kFail : check::Outcome::kInfo);
}

void Clients::add_stats(SimResult& result) const {
  for (const Client& c : clients_) {
    if (c.bank) {
      result.transfers += c.bank->transfers();
      result.cross_shard += c.bank->cross_shard();
      result.audits += c.bank->audits();
      result.coordinator_crashes += c.bank->coordinator_crashes();
    }
    if (!c.recipe) continue;
    const RecipeStats& st = c.recipe->stats();
    result.cycles += st.cycles;
    result.acquisitions += st.acquisitions;
    result.acts_ok += st.acts_ok;
    result.acts_refused += st.acts_refused;
    result.leases_lost += st.leases_lost;
  }
}

}  // namespace synod::sim
