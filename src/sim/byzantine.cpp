#include "sim/byzantine.h"

#include <algorithm>
#include <sstream>

#include "sim/kv_machine.h"

namespace synod::sim {

namespace {

constexpr Behaviour kMenu[] = {Behaviour::kEquivocate,   Behaviour::kForge,  Behaviour::kAlter,
                               Behaviour::kWrongReplies, Behaviour::kSilent, Behaviour::kSlow,
                               Behaviour::kReplay,       Behaviour::kLie,    Behaviour::kBadState,
                               Behaviour::kReissue};
constexpr size_t kReplayMemory = 256;
constexpr size_t kSeenMemory = 64;

}  // namespace

const char* to_string(Behaviour b) {
  switch (b) {
    case Behaviour::kEquivocate:
      return "equivocate";
    case Behaviour::kForge:
      return "forge";
    case Behaviour::kAlter:
      return "alter";
    case Behaviour::kWrongReplies:
      return "wrong-replies";
    case Behaviour::kSilent:
      return "silent";
    case Behaviour::kSlow:
      return "slow";
    case Behaviour::kReplay:
      return "replay";
    case Behaviour::kLie:
      return "lie";
    case Behaviour::kBadState:
      return "bad-state";
    case Behaviour::kReissue:
      return "reissue";
  }
  return "?";
}

Adversary::Adversary(World& world, const std::set<int>& faulty, int nodes)
    : world_(world), nodes_(nodes) {
  Rng r = world_.rng.fork();
  std::map<uint64_t, pbft::PublicKeys> replicas;
  for (int i = 1; i <= nodes; ++i) {
    replicas[static_cast<uint64_t>(i)] = pbft::make_keys_from_seed(world_.options.seed, i).pub;
  }
  for (int slot : faulty) {
    Replica& rep = replicas_[slot];
    for (Behaviour b : kMenu) {
      if (r.chance(0.5)) rep.behaviours.insert(b);
    }
    if (rep.behaviours.empty()) rep.behaviours.insert(Behaviour::kEquivocate);
    rep.keys = std::make_unique<pbft::Keyring>(
        pbft::make_keys_from_seed(world_.options.seed, static_cast<uint64_t>(slot)), replicas);
  }
  // The plan they share: which honest replicas see the other side of every equivocation (some,
  // never all), and the request their view changes claim.
  std::vector<int> honest;
  for (int i = 1; i <= nodes; ++i) {
    if (!faulty.contains(i)) honest.push_back(i);
  }
  for (int h : honest) {
    if (r.chance(0.5)) victims_.insert(h);
  }
  if (victims_.empty() && !honest.empty()) victims_.insert(honest[r.uniform(honest.size())]);
  if (victims_.size() == honest.size() && honest.size() > 1) victims_.erase(*victims_.begin());
  for (uint8_t& byte : fabricated_) byte = static_cast<uint8_t>(r.uniform(256));
}

std::string Adversary::describe() const {
  std::ostringstream os;
  for (const auto& [slot, rep] : replicas_) {
    os << "n" << slot << " byzantine:";
    for (Behaviour b : rep.behaviours) os << " " << to_string(b);
    os << "\n";
  }
  os << "victims of equivocation:";
  for (int v : victims_) os << " n" << v;
  return os.str();
}

bool Adversary::has(int from, Behaviour b) const {
  auto it = replicas_.find(from);
  return it != replicas_.end() && it->second.behaviours.contains(b);
}

void Adversary::count(Behaviour b) {
  ++world_.result.faults_injected[std::string("byzantine-") + to_string(b)];
}

raft::Message Adversary::reseal(int from, const pbft::Msg& m, raft::NodeId to) const {
  raft::Message out;
  out.type = raft::MessageType::kPbft;
  out.from = raft::NodeId(static_cast<uint64_t>(from));
  out.to = to;
  out.term = m.view;
  out.payload = pbft::seal(m, *replicas_.at(from).keys, to);
  return out;
}

std::vector<Adversary::Out> Adversary::outgoing(int from, bool is_primary, const raft::Message& m) {
  Replica& rep = replicas_.at(from);
  std::vector<Out> out;
  if (m.type != raft::MessageType::kPbft) return {{m, 0}};
  if (is_primary && has(from, Behaviour::kSilent)) {
    count(Behaviour::kSilent);
    return out;
  }
  std::string why;
  std::optional<pbft::Msg> msg = pbft::open(m.payload, *rep.keys, m.from, &why, false);
  if (!msg) return {{m, 0}};
  switch (msg->kind) {
    case pbft::Kind::kPrePrepare:
      for (const pbft::AuthenticatedRequest& r : msg->requests) {
        if (seen_.size() < kSeenMemory && !r.request.is_null()) seen_.push_back(r);
      }
      reissued_now_ = false;
      if (is_primary && has(from, Behaviour::kReissue)) reissue(from, *msg);
      if (has(from, Behaviour::kEquivocate) && victims_.contains(static_cast<int>(m.to.value))) {
        equivocate(from, *msg, out, m);
      } else if (has(from, Behaviour::kReissue) && reissued_now_) {
        out.push_back({reseal(from, *msg, m.to), 0});
      } else {
        out.push_back({m, 0});
      }
      break;
    case pbft::Kind::kPrepare:
    case pbft::Kind::kCommit:
      match_votes(from, *msg, out, m);
      break;
    case pbft::Kind::kViewChange:
      if (has(from, Behaviour::kLie)) {
        lie(from, *msg);
        out.push_back({reseal(from, *msg, m.to), 0});
      } else {
        out.push_back({m, 0});
      }
      break;
    default:
      out.push_back({m, 0});
  }
  Rng& r = world_.fault_rng;
  if (has(from, Behaviour::kForge) && r.chance(0.05)) {
    // The same message, claiming to come from an honest replica: it cannot make that MAC.
    const int other = 1 + static_cast<int>(r.uniform(static_cast<uint64_t>(nodes_)));
    if (!replicas_.contains(other) && other != static_cast<int>(m.to.value)) {
      pbft::Msg forged = *msg;
      forged.sender = raft::NodeId(static_cast<uint64_t>(other));
      raft::Message f = reseal(from, forged, m.to);
      f.from = forged.sender;
      out.push_back({f, 0});
      count(Behaviour::kForge);
    }
  }
  if (has(from, Behaviour::kAlter) && !out.empty() && r.chance(0.1)) {
    std::string& payload = out.front().msg.payload;
    if (!payload.empty()) {
      payload[r.uniform(payload.size())] ^= static_cast<char>(1 + r.uniform(255));
      count(Behaviour::kAlter);
    }
  }
  if (has(from, Behaviour::kReplay)) {
    if (!rep.sent.empty() && r.chance(0.05)) {
      out.push_back({rep.sent[r.uniform(rep.sent.size())], 0});
      count(Behaviour::kReplay);
    }
    rep.sent.push_back(m);
    if (rep.sent.size() > kReplayMemory) rep.sent.pop_front();
  }
  if (has(from, Behaviour::kSlow)) {
    for (Out& o : out) o.delay_us = r.range(20'000, 200'000);
    count(Behaviour::kSlow);
  }
  return out;
}

// A primary orders again a request ordered long ago (it still carries its client's MACs): one
// more at the end of some runs, the same for every backup, so the honest replicas commit it.
// The state machine must not apply it twice.
void Adversary::reissue(int from, pbft::Msg& pp) {
  auto [it, fresh] = reissued_.try_emplace({pp.view.value, pp.seq.value});
  if (fresh && !seen_.empty() && pp.requests.size() < 8 && world_.fault_rng.chance(0.3)) {
    it->second = seen_[world_.fault_rng.uniform(seen_.size())];
    if (world_.options.verbose) {
      world_.at() << "n" << from << " reissues an old request at seq "
                  << pp.seq + pp.requests.size() << " of view " << pp.view << "\n";
    }
  }
  if (!it->second) return;
  const pbft::Digest old = pbft::digest(it->second->request);
  for (const pbft::AuthenticatedRequest& r : pp.requests) {
    if (pbft::digest(r.request) == old) return;
  }
  pp.requests.push_back(*it->second);
  reissued_now_ = true;
  count(Behaviour::kReissue);
}

// The victims get another batch for the same sequence numbers: reordered, or with another
// client's request in place of the only one. Every request still carries its client's MACs.
void Adversary::equivocate(int from, pbft::Msg& pp, std::vector<Out>& out, const raft::Message& m) {
  std::vector<pbft::AuthenticatedRequest> other = pp.requests;
  if (other.size() >= 2) {
    std::reverse(other.begin(), other.end());
  } else {
    const pbft::Digest mine = pbft::digest(other.front().request);
    auto swap = std::find_if(seen_.begin(), seen_.end(), [&](const pbft::AuthenticatedRequest& r) {
      return pbft::digest(r.request) != mine;
    });
    if (swap == seen_.end()) {
      out.push_back({m, 0});
      return;
    }
    other.front() = *swap;
  }
  std::vector<pbft::Digest> digests;
  for (const pbft::AuthenticatedRequest& r : other) digests.push_back(pbft::digest(r.request));
  const pbft::Digest side = pbft::run_digest(pp.seq, digests);
  other_side_[{pp.view.value, pp.seq.value}] = {side, static_cast<uint32_t>(other.size())};
  pp.requests = std::move(other);
  out.push_back({reseal(from, pp, m.to), 0});
  count(Behaviour::kEquivocate);
  if (world_.options.verbose) {
    world_.at() << "n" << from << " equivocates: view " << pp.view << " seq " << pp.seq << "+"
                << pp.requests.size() << " to n" << m.to << " is run " << pbft::short_hex(side)
                << ", not what the others get\n";
  }
  if (has(from, Behaviour::kForge)) {
    pbft::Msg vote;
    vote.kind = pbft::Kind::kPrepare;
    vote.view = pp.view;
    vote.seq = pp.seq;
    vote.count = static_cast<uint32_t>(pp.requests.size());
    vote.digest = side;
    forge_votes(from, vote, m.to, out);
  }
}

// Every faulty replica backs the side each victim was shown (they collude).
void Adversary::match_votes(int from, pbft::Msg& vote, std::vector<Out>& out,
                            const raft::Message& m) {
  auto side = other_side_.find({vote.view.value, vote.seq.value});
  if (side == other_side_.end() || side->second.second != vote.count ||
      !victims_.contains(static_cast<int>(m.to.value))) {
    out.push_back({m, 0});
    return;
  }
  vote.digest = side->second.first;
  out.push_back({reseal(from, vote, m.to), 0});
}

// Votes for the victims' side in the names of the honest replicas that were not shown it.
void Adversary::forge_votes(int from, const pbft::Msg& vote, raft::NodeId victim,
                            std::vector<Out>& out) {
  for (int h = 1; h <= nodes_; ++h) {
    if (replicas_.contains(h) || victims_.contains(h)) continue;
    for (pbft::Kind kind : {pbft::Kind::kPrepare, pbft::Kind::kCommit}) {
      pbft::Msg forged = vote;
      forged.kind = kind;
      forged.sender = raft::NodeId(static_cast<uint64_t>(h));
      raft::Message f = reseal(from, forged, victim);
      f.from = forged.sender;
      out.push_back({f, 0});
      count(Behaviour::kForge);
    }
  }
}

// A view change claiming the fabricated request prepared, in the latest view, at the first
// sequence numbers past the checkpoint; re-signed with the replica's own key.
void Adversary::lie(int from, pbft::Msg& m) {
  pbft::ViewChange& vc = *m.view_change;
  if (vc.view.value == 0) return;
  for (uint64_t k = 1; k <= 4; ++k) {
    const pbft::Claim c{vc.stable + k, fabricated_, vc.view - 1};
    std::erase_if(vc.prepared, [&](const pbft::Claim& x) { return x.seq == c.seq; });
    vc.prepared.push_back(c);
    vc.preprepared.push_back(c);
  }
  std::sort(vc.prepared.begin(), vc.prepared.end(),
            [](const pbft::Claim& a, const pbft::Claim& b) { return a.seq < b.seq; });
  vc.signature = replicas_.at(from).keys->sign(pbft::view_change_bytes(vc));
  count(Behaviour::kLie);
}

void Adversary::reply(int from, KvResult& result) {
  if (!has(from, Behaviour::kWrongReplies)) return;
  result.value = "byzantine";
  result.cas_succeeded = !result.cas_succeeded;
  count(Behaviour::kWrongReplies);
}

// The lie: the state one entry further on, that entry a put of the store's first key (or of a
// new one) to "byzantine", which no client wrote. The image is well formed and restores.
void Adversary::state(int from, std::string& image) {
  if (!has(from, Behaviour::kBadState)) return;
  KvMachine m;
  if (!m.restore(image)) return;
  etcdserverpb::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  all.set_limit(1);
  const KvResult first = m.range(all);
  synodpb::Request put;
  put.mutable_put()->set_key(first.range_response().kvs_size() > 0
                                 ? first.range_response().kvs(0).key()
                                 : std::string("byzantine"));
  put.mutable_put()->set_value("byzantine");
  m.apply(m.applied() + 1, put.SerializeAsString());
  image = m.image();
  count(Behaviour::kBadState);
}

}  // namespace synod::sim
