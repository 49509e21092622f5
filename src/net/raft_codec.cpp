#include "net/raft_codec.h"

namespace synod::net {

namespace {

constexpr uint32_t kLastMessageType = static_cast<uint32_t>(raft::kLastMessageType);
constexpr uint32_t kLastEntryType = static_cast<uint32_t>(raft::EntryType::kConfChange);

void encode_conf(const raft::ConfState& conf, synodpb::RaftConfState* out) {
  for (raft::NodeId id : conf.voters) out->add_voters(id.value);
  for (raft::NodeId id : conf.learners) out->add_learners(id.value);
}

raft::ConfState decode_conf(const synodpb::RaftConfState& in) {
  raft::ConfState conf;
  for (uint64_t id : in.voters()) conf.voters.emplace_back(id);
  for (uint64_t id : in.learners()) conf.learners.emplace_back(id);
  return conf;
}

}  // namespace

void encode(const raft::Message& m, synodpb::RaftMessage* out) {
  out->Clear();
  out->set_type(static_cast<uint32_t>(m.type));
  out->set_from(m.from.value);
  out->set_to(m.to.value);
  out->set_term(m.term.value);
  out->set_log_index(m.log_index.value);
  out->set_log_term(m.log_term.value);
  out->set_commit(m.commit.value);
  for (const raft::Entry& e : m.entries) {
    synodpb::RaftEntry* pe = out->add_entries();
    pe->set_term(e.term.value);
    pe->set_index(e.index.value);
    pe->set_type(static_cast<uint32_t>(e.type));
    pe->set_data(e.data);
  }
  out->set_reject(m.reject);
  out->set_reject_hint(m.reject_hint.value);
  out->set_reject_hint_term(m.reject_hint_term.value);
  out->set_transfer(m.transfer);
  out->set_context(m.context);
  out->set_sent_tick(m.sent_tick);
  if (!m.payload.empty()) out->set_payload(m.payload);
  if (m.type == raft::MessageType::kSnapshot || m.type == raft::MessageType::kSnapshotResp) {
    out->set_snapshot_index(m.snapshot_meta.index.value);
    out->set_snapshot_term(m.snapshot_meta.term.value);
    encode_conf(m.snapshot_meta.conf, out->mutable_snapshot_conf());
    out->set_snapshot_offset(m.snapshot_offset);
    out->set_snapshot_total(m.snapshot_total);
    out->set_snapshot_chunk(m.snapshot_chunk);
    out->set_snapshot_done(m.snapshot_done);
  }
}

std::optional<raft::Message> decode(const synodpb::RaftMessage& in, std::string* error) {
  if (in.type() > kLastMessageType) {
    *error = "unknown raft message type " + std::to_string(in.type());
    return std::nullopt;
  }
  if (in.from() == 0) {
    *error = "raft message without a sender";
    return std::nullopt;
  }
  // Nothing a leader sends can come from a term above its own: a snapshot or a log position
  // claiming one would leave this node's log ahead of any term it could lead in.
  if ((in.type() == static_cast<uint32_t>(raft::MessageType::kAppend) &&
       in.log_term() > in.term()) ||
      (in.type() == static_cast<uint32_t>(raft::MessageType::kSnapshot) &&
       in.snapshot_term() > in.term())) {
    *error = "raft message refers to a term above its own";
    return std::nullopt;
  }
  raft::Message m;
  m.type = static_cast<raft::MessageType>(in.type());
  m.from = raft::NodeId(in.from());
  m.to = raft::NodeId(in.to());
  m.term = raft::Term(in.term());
  m.log_index = raft::Index(in.log_index());
  m.log_term = raft::Term(in.log_term());
  m.commit = raft::Index(in.commit());
  m.entries.reserve(in.entries_size());
  for (const synodpb::RaftEntry& pe : in.entries()) {
    if (pe.type() > kLastEntryType) {
      *error = "unknown raft entry type " + std::to_string(pe.type());
      return std::nullopt;
    }
    // Forwarded proposals carry unnumbered entries; everything else must be contiguous.
    if (m.type != raft::MessageType::kForwardPropose) {
      uint64_t expected = in.log_index() + 1 + m.entries.size();
      if (pe.index() != expected) {
        *error = "raft entries are not contiguous";
        return std::nullopt;
      }
    }
    // A leader's entries never carry a term above its own, and terms never decrease along the
    // log (thesis 3.5); the core asserts both, so a frame breaking them is refused here.
    if (m.type == raft::MessageType::kAppend &&
        (pe.term() > in.term() || (m.entries.empty() ? pe.term() < in.log_term()
                                                     : pe.term() < m.entries.back().term.value))) {
      *error = "raft entry terms out of order";
      return std::nullopt;
    }
    // Multi-Paxos: a proposer's values past its chosen index are at its own round (chosen ones
    // at the rounds they were accepted); a promise reports values accepted below its round.
    if ((m.type == raft::MessageType::kAccept &&
         (pe.term() > in.term() || (pe.index() > in.commit() && pe.term() != in.term()))) ||
        (m.type == raft::MessageType::kPromise && pe.term() > in.term())) {
      *error = "paxos entry round does not match its message";
      return std::nullopt;
    }
    m.entries.push_back(raft::Entry{raft::Term(pe.term()), raft::Index(pe.index()),
                                    static_cast<raft::EntryType>(pe.type()), pe.data()});
  }
  m.reject = in.reject();
  m.reject_hint = raft::Index(in.reject_hint());
  m.reject_hint_term = raft::Term(in.reject_hint_term());
  m.transfer = in.transfer();
  m.context = in.context();
  m.sent_tick = in.sent_tick();
  m.snapshot_meta.index = raft::Index(in.snapshot_index());
  m.snapshot_meta.term = raft::Term(in.snapshot_term());
  m.snapshot_meta.conf = decode_conf(in.snapshot_conf());
  m.snapshot_offset = in.snapshot_offset();
  m.snapshot_total = in.snapshot_total();
  m.snapshot_chunk = in.snapshot_chunk();
  m.snapshot_done = in.snapshot_done();
  m.payload = in.payload();
  return m;
}

}  // namespace synod::net
