#include "interaction.h"

#include "replica/memory_log.h"

#include <sstream>
#include <stdexcept>

namespace synod::golden {

using raft::Entry;
using raft::EntryType;
using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::NodeId;

namespace {

std::vector<uint64_t> parse_ids(const std::string& list) {
  std::vector<uint64_t> ids;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) ids.push_back(std::stoull(item));
  return ids;
}

bool flag(const Command& c, const std::string& key, bool def) {
  auto it = c.flags.find(key);
  return it == c.flags.end() ? def : it->second == "true";
}

uint64_t number(const Command& c, const std::string& key, uint64_t def) {
  auto it = c.flags.find(key);
  return it == c.flags.end() ? def : std::stoull(it->second);
}

std::string quote(const std::string& data) {
  bool printable = true;
  for (char ch : data) printable = printable && ch >= 32 && ch < 127;
  if (!printable) {
    return "<" + std::to_string(data.size()) + " bytes>";
  }
  return "\"" + data + "\"";
}

}  // namespace

// A PBFT log record: its request's operation, and what the slot knows.
std::string describe_record(const pbft::SlotRecord& r) {
  std::string out = r.request.request.is_null() ? "null" : quote(r.request.request.op);
  if (r.prepared) out += " prepared";
  if (r.earlier_prepared) {
    out += " earlier-prepared=" + std::to_string(r.earlier_prepared->view.value) + ":" +
           pbft::short_hex(r.earlier_prepared->digest, 6);
  }
  return out;
}

std::string describe_claims(const std::vector<pbft::Claim>& claims) {
  std::string out = "[";
  for (const pbft::Claim& c : claims) {
    out += (out.size() > 1 ? " " : "") + std::to_string(c.seq.value) + "@" +
           std::to_string(c.view.value) + ":" + pbft::short_hex(c.digest, 6);
  }
  return out + "]";
}

// A PBFT message as its payload says (its MAC is not checked here).
std::string describe_pbft(const Message& m) {
  std::string why;
  pbft::Keyring none(pbft::make_keys_from_seed(0, 0), {});
  std::optional<pbft::Msg> p = pbft::open(m.payload, none, m.from, &why, /*check_macs=*/false);
  if (!p) return " <" + why + ">";
  std::ostringstream os;
  os << " " << pbft::to_string(p->kind) << " v=" << p->view;
  switch (p->kind) {
    case pbft::Kind::kRequest:
    case pbft::Kind::kPrePrepare:
      if (p->kind == pbft::Kind::kPrePrepare) os << " seq=" << p->seq;
      os << " [";
      for (size_t i = 0; i < p->requests.size(); ++i) {
        const pbft::Request& r = p->requests[i].request;
        os << (i ? ", " : "") << (r.is_null() ? "null" : quote(r.op));
      }
      os << "]";
      break;
    case pbft::Kind::kPrepare:
    case pbft::Kind::kCommit:
      os << " seq=" << p->seq << "+" << p->count << " run=" << pbft::short_hex(p->digest, 6);
      break;
    case pbft::Kind::kCheckpoint:
    case pbft::Kind::kSnapshot:
    case pbft::Kind::kState:
      os << " seq=" << p->seq << " digest=" << pbft::short_hex(p->digest, 6);
      break;
    case pbft::Kind::kViewChange: {
      const pbft::ViewChange& vc = *p->view_change;
      os << " stable=" << vc.stable << " P=" << describe_claims(vc.prepared)
         << " Q=" << describe_claims(vc.preprepared);
      break;
    }
    case pbft::Kind::kNewView: {
      const pbft::NewView& nv = *p->new_view;
      os << " proofs=" << nv.proofs.size() << " checkpoint=" << nv.decision.checkpoint
         << " chosen=[";
      for (size_t i = 0; i < nv.decision.chosen.size(); ++i) {
        const auto& [seq, d] = nv.decision.chosen[i];
        os << (i ? " " : "") << seq << ":"
           << (d == pbft::null_digest() ? std::string("null") : pbft::short_hex(d, 6));
      }
      os << "]";
      break;
    }
    case pbft::Kind::kStatus:
      os << " executed=" << p->seq << " stable=" << p->stable << (p->changing ? " changing" : "");
      if (p->count) os << " held=" << p->count;
      break;
    case pbft::Kind::kFetch:
      os << " wanted=" << p->wanted.size();
      break;
    case pbft::Kind::kBodies:
      os << " bodies=" << p->bodies.size();
      break;
  }
  return os.str();
}

std::string describe(const Entry& e) {
  std::ostringstream os;
  os << e.term << "/" << e.index;
  if (e.type == EntryType::kClientOp) {
    std::optional<raft::ClientOp> c = raft::decode_client_op(e.data);
    os << " " << (c ? quote(c->op) + " (a client's)" : "<malformed client op>");
  } else if (std::optional<pbft::SlotRecord> r = pbft::decode_record(e.data)) {
    os << " " << describe_record(*r);
  } else if (e.type == EntryType::kConfChange) {
    auto conf = raft::decode_conf(e.data);
    os << " conf " << (conf ? raft::to_string(*conf) : "<malformed>");
  } else {
    os << " " << quote(e.data);
  }
  return os.str();
}

std::string describe(const Message& m) {
  std::ostringstream os;
  os << m.from << "->" << m.to << " " << raft::to_string(m.type) << " term=" << m.term;
  switch (m.type) {
    case MessageType::kPreVote:
    case MessageType::kVote:
      os << " last=" << m.log_term << "/" << m.log_index;
      if (m.commit > Index(0)) os << " chosen=" << m.commit;
      if (m.transfer) os << " transfer";
      break;
    case MessageType::kAppend:
      os << " prev=" << m.log_term << "/" << m.log_index << " commit=" << m.commit;
      if (!m.entries.empty()) {
        os << " entries=[";
        for (size_t i = 0; i < m.entries.size(); ++i)
          os << (i ? ", " : "") << describe(m.entries[i]);
        os << "]";
      }
      break;
    case MessageType::kAppendResp:
      os << " index=" << m.log_index;
      if (m.reject) os << " reject hint=" << m.reject_hint_term << "/" << m.reject_hint;
      break;
    case MessageType::kHeartbeat:
      os << " commit=" << m.commit;
      if (m.context) os << " ctx=" << m.context;
      break;
    case MessageType::kHeartbeatResp:
      if (m.context) os << " ctx=" << m.context;
      break;
    case MessageType::kSnapshot:
      os << " snap=" << m.snapshot_meta.term << "/" << m.snapshot_meta.index
         << " offset=" << m.snapshot_offset << " len=" << m.snapshot_chunk.size() << "/"
         << m.snapshot_total << (m.snapshot_done ? " done" : "");
      break;
    case MessageType::kSnapshotResp:
      os << " snap=" << m.snapshot_meta.index << " offset=" << m.snapshot_offset
         << (m.reject ? " reject" : "");
      break;
    case MessageType::kForwardPropose:
      os << " entries=" << m.entries.size();
      break;
    case MessageType::kForwardRead:
      os << " ctx=" << m.context;
      break;
    case MessageType::kForwardReadResp:
      os << " ctx=" << m.context << " index=" << m.log_index;
      break;
    case MessageType::kPreVoteResp:
    case MessageType::kVoteResp:
      if (m.reject) os << " reject";
      break;
    case MessageType::kTimeoutNow:
      break;
    case MessageType::kPrepare:
      os << " chosen=" << m.commit;
      if (m.transfer) os << " transfer";
      break;
    case MessageType::kPromise:
      if (m.reject) {
        os << " reject hint=" << m.reject_hint;
        break;
      }
      os << " from=" << m.log_index << " chosen=" << m.commit << " accepted=[";
      for (size_t i = 0; i < m.entries.size(); ++i) os << (i ? ", " : "") << describe(m.entries[i]);
      os << "]";
      break;
    case MessageType::kAccept:
      os << " prev=" << m.log_index << " commit=" << m.commit;
      if (!m.entries.empty()) {
        os << " entries=[";
        for (size_t i = 0; i < m.entries.size(); ++i)
          os << (i ? ", " : "") << describe(m.entries[i]);
        os << "]";
      }
      break;
    case MessageType::kAccepted:
      if (m.reject && m.log_index == Index(0)) {
        os << " reject";  // a Nack: the round in term= is higher
      } else if (m.reject) {
        os << " reject prev=" << m.log_index << " hint=" << m.reject_hint;
      } else {
        os << " match=" << m.log_index;
      }
      break;
    case MessageType::kCommit:
      os << " commit=" << m.commit;
      if (m.context) os << " ctx=" << m.context;
      break;
    case MessageType::kCommitResp:
      if (m.context) os << " ctx=" << m.context;
      if (m.reject) {
        os << " reject";
      } else {
        os << " run=" << m.log_index;
      }
      break;
    case MessageType::kPbft:
      os << describe_pbft(m);
      break;
    case MessageType::kForwardRequest:  // a host's, never an engine's
      break;
  }
  return os.str();
}

Interaction::Node& Interaction::node(const std::string& id) {
  auto it = nodes_.find(std::stoull(id));
  if (it == nodes_.end()) throw std::runtime_error("no node " + id);
  return it->second;
}

bool Interaction::connected(uint64_t a, uint64_t b) const {
  if (partition_.empty()) return true;
  for (const auto& group : partition_) {
    if (group.contains(a) && group.contains(b)) return true;
  }
  return false;
}

std::string Interaction::add_nodes(const Command& cmd) {
  const uint64_t count = std::stoull(cmd.args.at(0));
  const uint64_t first = nodes_.empty() ? 1 : nodes_.rbegin()->first + 1;
  raft::ConfState conf;
  if (cmd.flags.contains("voters")) {
    for (uint64_t id : parse_ids(cmd.flags.at("voters"))) conf.voters.push_back(NodeId(id));
  }
  if (cmd.flags.contains("learners")) {
    for (uint64_t id : parse_ids(cmd.flags.at("learners"))) conf.learners.push_back(NodeId(id));
  }
  std::ostringstream out;
  for (uint64_t id = first; id < first + count; ++id) {
    Node& n = nodes_[id];
    raft::EngineConfig& c = n.config;
    if (cmd.flags.contains("engine")) {
      auto kind = replica::parse_engine(cmd.flags.at("engine"));
      if (!kind) throw std::runtime_error("unknown engine " + cmd.flags.at("engine"));
      n.kind = *kind;
    }
    c.id = NodeId(id);
    c.seed = id;
    c.initial_conf = conf;
    c.election_ticks = static_cast<uint32_t>(number(cmd, "election", 10));
    c.heartbeat_ticks = static_cast<uint32_t>(number(cmd, "heartbeat", 1));
    c.pre_vote = flag(cmd, "prevote", true);
    c.check_quorum = flag(cmd, "checkquorum", true);
    c.read_mode = flag(cmd, "lease", false) ? raft::ReadMode::kLease : raft::ReadMode::kReadIndex;
    c.max_inflight_msgs = static_cast<uint32_t>(number(cmd, "window", 64));
    c.max_msg_bytes = number(cmd, "msgbytes", 64 << 10);
    c.snapshot_chunk_bytes = number(cmd, "chunk", 64 << 10);
    n.bugs.raft.commit_previous_term_by_count = flag(cmd, "bug-commit-previous-term", false);
    n.bugs.paxos.answer_before_persist = flag(cmd, "bug-answer-before-persist", false);
    n.bugs.paxos.ignore_promised_values = flag(cmd, "bug-ignore-promised-values", false);
    n.bugs.pbft.drop_prepared_in_view_change = flag(cmd, "bug-drop-prepared", false);
    n.pbft.faults = static_cast<uint32_t>(number(cmd, "faults", 0));
    n.pbft.checkpoint_interval = number(cmd, "checkpoint", 4);
    n.pbft.log_window = number(cmd, "window-seqs", 8);
    n.pbft.max_batch = static_cast<uint32_t>(number(cmd, "batch", 256));
    n.pbft.status_ticks = static_cast<uint32_t>(number(cmd, "status", 10));
    n.engine = make(n, c);
    out << "n" << id << " " << raft::to_string(conf) << "\n";
  }
  return out.str();
}

// PBFT replicas hold keys drawn from their IDs: every replica of the script knows the others'.
std::unique_ptr<Engine> Interaction::make(Node& n, const raft::EngineConfig& config) {
  if (n.kind == replica::EngineKind::kPbft) {
    std::map<uint64_t, pbft::PublicKeys> replicas;
    for (NodeId v : config.initial_conf.voters) {
      replicas[v.value] = pbft::make_keys_from_seed(1, v.value).pub;
    }
    n.pbft.keys = std::make_shared<pbft::Keyring>(pbft::make_keys_from_seed(1, config.id.value),
                                                  std::move(replicas));
  }
  return replica::make_engine(n.kind, config, n.durable, n.bugs, n.pbft);
}

void Interaction::process_ready(uint64_t id, std::ostream& out) {
  Node& n = nodes_.at(id);
  if (!n.up || !n.engine->has_ready()) return;
  raft::Ready rd = n.engine->ready();
  out << "> n" << id << " handling Ready\n";
  if (rd.snapshot) {
    out << "  Snapshot " << rd.snapshot->meta.term << "/" << rd.snapshot->meta.index << " "
        << raft::to_string(rd.snapshot->meta.conf) << " data=" << quote(rd.snapshot->data) << "\n";
    n.applied = rd.snapshot->meta.index;
  }
  if (rd.hard_state) {
    out << "  HardState term=" << rd.hard_state->term << " vote=" << rd.hard_state->vote
        << " commit=" << rd.hard_state->commit << "\n";
  }
  if (!rd.entries.empty()) {
    out << "  Entries:\n";
    for (const Entry& e : rd.entries) out << "    " << describe(e) << "\n";
  }
  // As the driver decides it (replica::must_sync); a snapshot is always written durably.
  if (rd.snapshot || replica::must_sync(rd, n.durable.hard_state)) {
    if (n.unsynced && !rd.hard_state) n.durable.hard_state = *n.unsynced;
    n.unsynced.reset();
    replica::write_ready(n.durable, rd);
  } else if (rd.hard_state) {
    n.unsynced = rd.hard_state;
  }
  if (!rd.committed.empty()) {
    out << "  Committed:\n";
    for (const Entry& e : rd.committed) out << "    " << describe(e) << "\n";
    n.applied = rd.committed.back().index;
  }
  for (const raft::ReadState& rs : rd.read_states) {
    out << "  ReadState ctx=" << rs.context << " index=" << rs.index << "\n";
  }
  // A partition, or a crashed recipient, drops messages as they are sent.
  auto post = [&](const Message& m) {
    auto to = nodes_.find(m.to.value);
    if (!connected(m.from.value, m.to.value) || to == nodes_.end() || !to->second.up) {
      return std::string("  DROPPED");
    }
    mailbox_[m.to.value].push_back(m);
    return std::string();
  };
  for (const Message& m : rd.immediate_messages) {
    out << "  Immediate: " << describe(m) << post(m) << "\n";
  }
  if (!rd.messages.empty()) {
    out << "  Messages:\n";
    for (const Message& m : rd.messages) out << "    " << describe(m) << post(m) << "\n";
  }
  n.engine->advance();
}

void Interaction::deliver(uint64_t id, std::ostream& out, const std::set<MessageType>& drop) {
  auto msgs = std::move(mailbox_[id]);
  mailbox_[id].clear();
  if (msgs.empty()) return;
  auto it = nodes_.find(id);
  out << "> n" << id << " receiving messages\n";
  for (const Message& m : msgs) {
    const bool dropped = it == nodes_.end() || !it->second.up ||
                         !connected(m.from.value, m.to.value) || drop.contains(m.type);
    out << "  " << describe(m) << (dropped ? "  DROPPED" : "") << "\n";
    if (!dropped) it->second.engine->step(m);
  }
}

std::string Interaction::stabilize(const std::set<uint64_t>& only) {
  std::ostringstream out;
  for (int round = 0; round < 100; ++round) {
    bool busy = false;
    for (auto& [id, n] : nodes_) {
      if (!only.empty() && !only.contains(id)) continue;
      if (n.up && n.engine->has_ready()) {
        process_ready(id, out);
        busy = true;
      }
    }
    for (auto& [id, msgs] : mailbox_) {
      if (!only.empty() && !only.contains(id)) continue;
      if (!msgs.empty()) {
        deliver(id, out, {});
        busy = true;
      }
    }
    if (!busy) return out.str();
  }
  out << "stabilize: still busy after 100 rounds\n";
  return out.str();
}

std::string Interaction::status(uint64_t id) {
  const Node& n = nodes_.at(id);
  if (const auto* p = dynamic_cast<const paxos::MultiPaxos*>(n.engine.get())) {
    return paxos_status(id, *p);
  }
  if (const auto* p = dynamic_cast<const pbft::Pbft*>(n.engine.get())) return pbft_status(id, *p);
  const raft::Raft& r = static_cast<const raft::Raft&>(*n.engine);
  std::ostringstream out;
  out << "n" << id << ": " << raft::to_string(r.role()) << " term=" << r.term()
      << " leader=" << r.leader() << " commit=" << r.log().committed() << " applied=" << n.applied
      << " last=" << r.log().last_term() << "/" << r.log().last_index() << " "
      << raft::to_string(r.conf()) << (n.up ? "" : " DOWN") << "\n";
  if (r.role() == raft::Role::kLeader) {
    for (const auto& [peer, _] : nodes_) {
      const raft::Progress* p = r.progress(NodeId(peer));
      if (p == nullptr) continue;
      out << "  n" << peer << ": " << raft::to_string(p->state) << " match=" << p->match
          << " next=" << p->next << (p->learner ? " learner" : "")
          << (p->inflight.empty() ? "" : " inflight=" + std::to_string(p->inflight.size())) << "\n";
    }
  }
  return out.str();
}

std::string Interaction::paxos_status(uint64_t id, const paxos::MultiPaxos& p) {
  const Node& n = nodes_.at(id);
  std::ostringstream out;
  const char* role = p.role() == raft::Role::kLeader         ? "leader"
                     : p.role() == raft::Role::kCandidate    ? "phase1"
                     : p.role() == raft::Role::kPreCandidate ? "pre-prepare"
                                                             : "acceptor";
  out << "n" << id << ": " << role << " round=" << p.term() << " promised-to=" << p.vote()
      << " leader=" << p.leader() << " chosen=" << p.committed_index() << " applied=" << n.applied
      << " last=" << p.last_index() << " round-match=" << p.round_match() << " "
      << raft::to_string(p.conf()) << (n.up ? "" : " DOWN") << "\n";
  if (p.role() == raft::Role::kLeader) {
    for (const auto& [peer, _] : nodes_) {
      const raft::Progress* pr = p.progress(NodeId(peer));
      if (pr == nullptr) continue;
      out << "  n" << peer << ": " << raft::to_string(pr->state) << " match=" << pr->match
          << " next=" << pr->next << (pr->learner ? " learner" : "")
          << (pr->inflight.empty() ? "" : " inflight=" + std::to_string(pr->inflight.size()))
          << "\n";
    }
  }
  return out.str();
}

std::string Interaction::pbft_status(uint64_t id, const pbft::Pbft& p) {
  const Node& n = nodes_.at(id);
  std::ostringstream out;
  out << "n" << id << ": " << (p.role() == raft::Role::kLeader ? "primary" : "backup")
      << " view=" << p.view() << (p.changing_view() ? " changing" : "")
      << " executed=" << p.committed_index() << " applied=" << n.applied
      << " last=" << p.last_index() << " stable=" << p.stable_checkpoint()
      << " history=" << pbft::short_hex(p.executed_digest(), 6)
      << (p.dropped_messages() ? " dropped=" + std::to_string(p.dropped_messages()) : "")
      << (n.up ? "" : " DOWN") << "\n";
  return out.str();
}

std::string Interaction::log(uint64_t id) {
  const Engine& engine = *nodes_.at(id).engine;
  const auto* paxos = dynamic_cast<const paxos::MultiPaxos*>(&engine);
  const auto* pbft = dynamic_cast<const pbft::Pbft*>(&engine);
  const raft::Log& l = paxos != nullptr  ? paxos->log()
                       : pbft != nullptr ? pbft->log()
                                         : static_cast<const raft::Raft&>(engine).log();
  std::ostringstream out;
  if (l.snapshot().index > Index(0)) {
    out << "snapshot " << l.snapshot().term << "/" << l.snapshot().index << "\n";
  }
  for (const Entry& e : l.entries()) out << describe(e) << "\n";
  if (l.entries().empty()) out << "(empty)\n";
  return out.str();
}

std::string Interaction::run(const Command& c) {
  const auto& a = c.args;
  if (c.name == "add-nodes") return add_nodes(c);
  if (c.name == "tick") {
    Node& n = node(a.at(0));
    const uint64_t times = number(c, "n", 1);
    for (uint64_t i = 0; i < times; ++i) n.engine->tick();
    return "ok\n";
  }
  if (c.name == "campaign") {
    // Ticks the node until its election timeout fires (bounded).
    Node& n = node(a.at(0));
    for (int i = 0; i < 100 && n.engine->role() == raft::Role::kFollower; ++i) n.engine->tick();
    return status(std::stoull(a.at(0)));
  }
  if (c.name == "stabilize") {
    std::set<uint64_t> only;
    for (const auto& id : a) only.insert(std::stoull(id));
    return stabilize(only);
  }
  if (c.name == "process-ready") {
    std::ostringstream out;
    for (const auto& id : a) process_ready(std::stoull(id), out);
    return out.str();
  }
  if (c.name == "deliver-msgs") {
    std::set<MessageType> drop;
    if (c.flags.contains("drop")) {
      std::stringstream ss(c.flags.at("drop"));
      std::string name;
      while (std::getline(ss, name, ',')) {
        for (int t = 0; t <= static_cast<int>(raft::kLastMessageType); ++t) {
          if (name == raft::to_string(static_cast<MessageType>(t))) {
            drop.insert(static_cast<MessageType>(t));
          }
        }
      }
    }
    std::ostringstream out;
    for (const auto& id : a) deliver(std::stoull(id), out, drop);
    return out.str();
  }
  if (c.name == "propose") {
    auto r = node(a.at(0)).engine->propose(a.at(1));
    return std::string(raft::to_string(r.status)) +
           (r.status == raft::Status::kOk ? " index=" + std::to_string(r.index.value) : "") + "\n";
  }
  if (c.name == "propose-conf-change") {
    raft::ConfChange cc;
    if (a.at(1) == "add-voter") cc.type = raft::ConfChangeType::kAddVoter;
    if (a.at(1) == "add-learner") cc.type = raft::ConfChangeType::kAddLearner;
    if (a.at(1) == "remove") cc.type = raft::ConfChangeType::kRemoveNode;
    cc.node = NodeId(std::stoull(a.at(2)));
    auto r = node(a.at(0)).engine->propose_conf_change(cc);
    return std::string(raft::to_string(r.status)) + "\n";
  }
  if (c.name == "read-index") {
    return std::string(raft::to_string(node(a.at(0)).engine->read_index(std::stoull(a.at(1))))) +
           "\n";
  }
  if (c.name == "transfer-leadership") {
    auto st = node(a.at(0)).engine->transfer_leadership(NodeId(std::stoull(a.at(1))));
    return std::string(raft::to_string(st)) + "\n";
  }
  if (c.name == "compact") {
    Node& n = node(a.at(0));
    auto meta = n.engine->compact(Index(std::stoull(a.at(1))), a.size() > 2 ? a.at(2) : "image");
    if (!meta) return "nothing to compact\n";
    n.durable.snapshot = raft::Snapshot{*meta, a.size() > 2 ? a.at(2) : "image"};
    std::erase_if(n.durable.entries, [&](const Entry& e) { return e.index <= meta->index; });
    return "snapshot " + std::to_string(meta->term.value) + "/" +
           std::to_string(meta->index.value) + "\n";
  }
  if (c.name == "partition") {
    partition_.clear();
    for (const auto& group : a) {
      auto ids = parse_ids(group);
      partition_.emplace_back(ids.begin(), ids.end());
    }
    return "ok\n";
  }
  if (c.name == "heal") {
    partition_.clear();
    return "ok\n";
  }
  if (c.name == "crash") {
    Node& n = node(a.at(0));
    n.up = false;
    mailbox_[std::stoull(a.at(0))].clear();
    return "ok\n";
  }
  if (c.name == "crash-before-persist") {
    // Takes the node's Ready and crashes before any of it is durable or sent: only what
    // leaves before the fsync (Immediate) is out.
    const uint64_t id = std::stoull(a.at(0));
    Node& n = node(a.at(0));
    std::ostringstream out;
    if (n.up && n.engine->has_ready()) {
      raft::Ready rd = n.engine->ready();
      out << "> n" << id << " lost its Ready:";
      if (rd.hard_state)
        out << " HardState term=" << rd.hard_state->term << " vote=" << rd.hard_state->vote;
      if (!rd.entries.empty()) out << " entries=" << rd.entries.size();
      out << " messages=" << rd.messages.size() << "\n";
      for (const Message& m : rd.immediate_messages) {
        out << "  Immediate: " << describe(m) << "\n";
        mailbox_[m.to.value].push_back(m);
      }
    }
    n.up = false;
    mailbox_[id].clear();
    out << "n" << id << " DOWN\n";
    return out.str();
  }
  if (c.name == "restart") {
    Node& n = node(a.at(0));
    raft::EngineConfig cfg = n.config;
    cfg.applied = n.durable.snapshot ? n.durable.snapshot->meta.index : Index(0);
    n.applied = cfg.applied;
    n.unsynced.reset();  // lost with the process
    n.engine = make(n, cfg);
    n.up = true;
    return status(std::stoull(a.at(0)));
  }
  if (c.name == "status") {
    std::string out;
    for (const auto& id : a) out += status(std::stoull(id));
    return out;
  }
  if (c.name == "raft-log") return log(std::stoull(a.at(0)));
  throw std::runtime_error("unknown command " + c.name);
}

}  // namespace synod::golden
