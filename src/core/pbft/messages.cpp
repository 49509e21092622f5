#include "core/pbft/messages.h"

#include "base/assert.h"
#include "base/bytes.h"

namespace synod::pbft {

namespace {

using base::ByteReader;
using base::ByteWriter;

constexpr uint8_t kClientRequestMagic = 0xFF;
constexpr uint8_t kRecordVersion = 2;
constexpr uint32_t kMaxEarlierBodies = 16;

void put_request(ByteWriter& w, const Request& r) {
  w.array(r.client);
  w.u64(r.timestamp);
  w.str(r.op);
}

Request get_request(ByteReader& in) {
  Request r;
  r.client = in.array<32>();
  r.timestamp = in.u64();
  r.op = std::string(in.str(kMaxOpBytes));
  return r;
}

void put_authenticated(ByteWriter& w, const AuthenticatedRequest& a) {
  put_request(w, a.request);
  w.u32(static_cast<uint32_t>(a.macs.size()));
  for (const auto& [replica, tag] : a.macs) {
    w.u64(replica);
    w.array(tag);
  }
}

AuthenticatedRequest get_authenticated(ByteReader& in) {
  AuthenticatedRequest a;
  a.request = get_request(in);
  const uint32_t n = in.count(kMaxReplicas, 8 + sizeof(Mac));
  a.macs.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t replica = in.u64();
    a.macs.emplace_back(replica, in.array<sizeof(Mac)>());
  }
  return a;
}

void put_claims(ByteWriter& w, const std::vector<Claim>& claims) {
  w.u32(static_cast<uint32_t>(claims.size()));
  for (const Claim& c : claims) {
    w.u64(c.seq.value);
    w.array(c.digest);
    w.u64(c.view.value);
  }
}

std::vector<Claim> get_claims(ByteReader& in) {
  const uint32_t n = in.count(kMaxClaims, 48);
  std::vector<Claim> claims;
  claims.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    Claim c;
    c.seq = Index(in.u64());
    c.digest = in.array<32>();
    c.view = View(in.u64());
    claims.push_back(c);
  }
  return claims;
}

void put_seq_digests(ByteWriter& w, const std::vector<std::pair<Index, Digest>>& v) {
  w.u32(static_cast<uint32_t>(v.size()));
  for (const auto& [seq, d] : v) {
    w.u64(seq.value);
    w.array(d);
  }
}

std::vector<std::pair<Index, Digest>> get_seq_digests(ByteReader& in) {
  const uint32_t n = in.count(kMaxClaims, 40);
  std::vector<std::pair<Index, Digest>> v;
  v.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const Index seq(in.u64());
    v.emplace_back(seq, in.array<32>());
  }
  return v;
}

void put_view_change_body(ByteWriter& w, const ViewChange& vc) {
  w.u64(vc.view.value);
  w.u64(vc.replica.value);
  w.u64(vc.stable.value);
  put_seq_digests(w, vc.checkpoints);
  put_claims(w, vc.prepared);
  put_claims(w, vc.preprepared);
}

void put_view_change(ByteWriter& w, const ViewChange& vc) {
  put_view_change_body(w, vc);
  w.array(vc.signature);
}

ViewChange get_view_change(ByteReader& in) {
  ViewChange vc;
  vc.view = View(in.u64());
  vc.replica = NodeId(in.u64());
  vc.stable = Index(in.u64());
  vc.checkpoints = get_seq_digests(in);
  vc.prepared = get_claims(in);
  vc.preprepared = get_claims(in);
  vc.signature = in.array<sizeof(Signature)>();
  return vc;
}

void put_new_view_body(ByteWriter& w, const NewView& nv) {
  w.u64(nv.view.value);
  w.u64(nv.primary.value);
  w.u32(static_cast<uint32_t>(nv.proofs.size()));
  for (const ViewChange& vc : nv.proofs) put_view_change(w, vc);
  w.u64(nv.decision.checkpoint.value);
  w.array(nv.decision.checkpoint_digest);
  put_seq_digests(w, nv.decision.chosen);
  w.u32(static_cast<uint32_t>(nv.bodies.size()));
  for (const AuthenticatedRequest& b : nv.bodies) put_authenticated(w, b);
}

NewView get_new_view(ByteReader& in) {
  NewView nv;
  nv.view = View(in.u64());
  nv.primary = NodeId(in.u64());
  const uint32_t proofs = in.count(kMaxReplicas, 100);
  for (uint32_t i = 0; i < proofs && !in.failed(); ++i) nv.proofs.push_back(get_view_change(in));
  nv.decision.checkpoint = Index(in.u64());
  nv.decision.checkpoint_digest = in.array<32>();
  nv.decision.chosen = get_seq_digests(in);
  const uint32_t bodies = in.count(kMaxClaims, 44);
  for (uint32_t i = 0; i < bodies && !in.failed(); ++i) {
    nv.bodies.push_back(get_authenticated(in));
  }
  nv.signature = in.array<sizeof(Signature)>();
  return nv;
}

void put_body(ByteWriter& w, const Msg& m) {
  w.u8(static_cast<uint8_t>(m.kind));
  w.u64(m.view.value);
  w.u64(m.sender.value);
  switch (m.kind) {
    case Kind::kRequest:
    case Kind::kPrePrepare:
      w.u64(m.seq.value);
      w.u32(static_cast<uint32_t>(m.requests.size()));
      for (const AuthenticatedRequest& r : m.requests) put_authenticated(w, r);
      break;
    case Kind::kPrepare:
    case Kind::kCommit:
      w.u64(m.seq.value);
      w.u32(m.count);
      w.array(m.digest);
      break;
    case Kind::kCheckpoint:
    case Kind::kState:
      w.u64(m.seq.value);
      w.array(m.digest);
      break;
    case Kind::kSnapshot:
      w.u64(m.seq.value);
      w.array(m.digest);
      w.str(m.data);
      break;
    case Kind::kViewChange:
      SYNOD_ASSERT(m.view_change.has_value());
      put_view_change(w, *m.view_change);
      break;
    case Kind::kNewView:
      SYNOD_ASSERT(m.new_view.has_value());
      put_new_view_body(w, *m.new_view);
      w.array(m.new_view->signature);
      break;
    case Kind::kStatus:
      w.u64(m.seq.value);
      w.u32(m.count);
      w.u64(m.stable.value);
      w.u8(m.changing ? 1 : 0);
      break;
    case Kind::kFetch:
      w.u32(static_cast<uint32_t>(m.wanted.size()));
      for (Index seq : m.wanted) w.u64(seq.value);
      break;
    case Kind::kBodies:
      w.u32(static_cast<uint32_t>(m.bodies.size()));
      for (const Body& b : m.bodies) {
        w.u64(b.seq.value);
        w.u64(b.view.value);
        put_authenticated(w, b.request);
      }
      break;
  }
}

bool get_body(ByteReader& in, Msg& m) {
  const uint8_t kind = in.u8();
  if (kind < static_cast<uint8_t>(Kind::kRequest) || kind > static_cast<uint8_t>(kLastKind)) {
    return false;
  }
  m.kind = static_cast<Kind>(kind);
  m.view = View(in.u64());
  m.sender = NodeId(in.u64());
  switch (m.kind) {
    case Kind::kRequest:
    case Kind::kPrePrepare: {
      m.seq = Index(in.u64());
      const uint32_t n = in.count(kMaxBatch, 44);
      for (uint32_t i = 0; i < n && !in.failed(); ++i) m.requests.push_back(get_authenticated(in));
      if (m.kind == Kind::kRequest && n != 1) return false;
      if (m.kind == Kind::kPrePrepare && n == 0) return false;
      break;
    }
    case Kind::kPrepare:
    case Kind::kCommit:
      m.seq = Index(in.u64());
      m.count = in.u32();
      m.digest = in.array<32>();
      if (m.count == 0 || m.count > kMaxClaims) return false;
      break;
    case Kind::kCheckpoint:
    case Kind::kState:
      m.seq = Index(in.u64());
      m.digest = in.array<32>();
      break;
    case Kind::kSnapshot:
      m.seq = Index(in.u64());
      m.digest = in.array<32>();
      m.data = std::string(in.str(kMaxOpBytes));
      break;
    case Kind::kViewChange:
      m.view_change = get_view_change(in);
      break;
    case Kind::kNewView:
      m.new_view = get_new_view(in);
      break;
    case Kind::kStatus:
      m.seq = Index(in.u64());
      m.count = in.u32();
      m.stable = Index(in.u64());
      m.changing = in.u8() != 0;
      break;
    case Kind::kFetch: {
      const uint32_t n = in.count(kMaxClaims, 8);
      for (uint32_t i = 0; i < n; ++i) m.wanted.emplace_back(in.u64());
      break;
    }
    case Kind::kBodies: {
      const uint32_t n = in.count(kMaxBatch, 60);
      for (uint32_t i = 0; i < n && !in.failed(); ++i) {
        Body b;
        b.seq = Index(in.u64());
        b.view = View(in.u64());
        b.request = get_authenticated(in);
        m.bodies.push_back(std::move(b));
      }
      break;
    }
  }
  return !in.failed();
}

}  // namespace

bool Request::is_null() const {
  return timestamp == 0 && op.empty() && client == PublicKey{};
}

std::string request_auth_bytes(const Request& r) {
  std::string out = "pbft-request";
  ByteWriter w(out);
  put_request(w, r);
  return out;
}

Digest digest(const Request& r) {
  return hash(request_auth_bytes(r));
}

const Digest& null_digest() {
  static const Digest d = digest(Request{});
  return d;
}

const Mac* AuthenticatedRequest::mac_for(uint64_t replica) const {
  for (const auto& [id, tag] : macs) {
    if (id == replica) return &tag;
  }
  return nullptr;
}

std::string encode_client_request(const AuthenticatedRequest& r) {
  std::string out(1, static_cast<char>(kClientRequestMagic));
  ByteWriter w(out);
  put_authenticated(w, r);
  return out;
}

bool is_client_request(std::string_view bytes) {
  return !bytes.empty() && static_cast<uint8_t>(bytes[0]) == kClientRequestMagic;
}

std::optional<AuthenticatedRequest> decode_client_request(std::string_view bytes) {
  if (!is_client_request(bytes)) return std::nullopt;
  ByteReader in(bytes.substr(1));
  AuthenticatedRequest r = get_authenticated(in);
  if (!in.done()) return std::nullopt;
  return r;
}

const char* to_string(Kind k) {
  switch (k) {
    case Kind::kRequest:
      return "Request";
    case Kind::kPrePrepare:
      return "PrePrepare";
    case Kind::kPrepare:
      return "Prepare";
    case Kind::kCommit:
      return "Commit";
    case Kind::kCheckpoint:
      return "Checkpoint";
    case Kind::kViewChange:
      return "ViewChange";
    case Kind::kNewView:
      return "NewView";
    case Kind::kStatus:
      return "Status";
    case Kind::kFetch:
      return "Fetch";
    case Kind::kBodies:
      return "Bodies";
    case Kind::kSnapshot:
      return "Snapshot";
    case Kind::kState:
      return "State";
  }
  return "?";
}

Digest run_digest(Index first, const std::vector<Digest>& digests) {
  std::string bytes = "pbft-run";
  ByteWriter w(bytes);
  w.u64(first.value);
  w.u32(static_cast<uint32_t>(digests.size()));
  for (const Digest& d : digests) w.array(d);
  return hash(bytes);
}

Digest chain(const Digest& previous, Index seq, const Digest& d) {
  std::string bytes = "pbft-chain";
  ByteWriter w(bytes);
  w.array(previous);
  w.u64(seq.value);
  w.array(d);
  return hash(bytes);
}

std::string view_change_bytes(const ViewChange& vc) {
  std::string out = "pbft-view-change";
  ByteWriter w(out);
  put_view_change_body(w, vc);
  return out;
}

std::string new_view_bytes(const NewView& nv) {
  std::string out = "pbft-new-view";
  ByteWriter w(out);
  put_new_view_body(w, nv);
  return out;
}

std::string seal(const Msg& m, const Keyring& keys, NodeId to) {
  std::string out;
  ByteWriter w(out);
  put_body(w, m);
  const Mac tag = keys.mac_for(to.value, out);
  w.array(tag);
  return out;
}

std::optional<Msg> open(std::string_view payload, const Keyring& keys, NodeId from,
                        std::string* why, bool check_macs) {
  if (payload.size() < sizeof(Mac)) {
    *why = "too short";
    return std::nullopt;
  }
  const std::string_view body = payload.substr(0, payload.size() - sizeof(Mac));
  ByteReader tail(payload.substr(body.size()));
  const Mac tag = tail.array<sizeof(Mac)>();
  if (check_macs && !keys.check_mac_from(from.value, body, tag)) {
    *why = "bad MAC";
    return std::nullopt;
  }
  Msg m;
  ByteReader in(body);
  if (!get_body(in, m) || !in.done()) {
    *why = "malformed";
    return std::nullopt;
  }
  if (m.sender != from) {
    *why = "sender does not match the link";
    return std::nullopt;
  }
  return m;
}

std::string reply_auth_bytes(uint64_t replica, uint64_t timestamp, std::string_view result) {
  std::string out = "synod-pbft-reply";
  ByteWriter w(out);
  w.u64(replica);
  w.u64(timestamp);
  w.str(result);
  return out;
}

std::string encode_record(const SlotRecord& r) {
  std::string out;
  ByteWriter w(out);
  w.u8(kRecordVersion);
  put_authenticated(w, r.request);
  w.u8(r.prepared ? 1 : 0);
  w.u8(r.earlier_prepared ? 1 : 0);
  if (r.earlier_prepared) put_claims(w, {*r.earlier_prepared});
  put_claims(w, r.earlier_preprepared);
  w.u8(r.installed_through ? 1 : 0);
  if (r.installed_through) {
    w.u64(r.installed_through->value);
    w.array(r.installed_digest);
  }
  w.u32(static_cast<uint32_t>(r.earlier_bodies.size()));
  for (const AuthenticatedRequest& b : r.earlier_bodies) put_authenticated(w, b);
  return out;
}

std::optional<SlotRecord> decode_record(std::string_view bytes) {
  ByteReader in(bytes);
  if (in.u8() != kRecordVersion) return std::nullopt;
  SlotRecord r;
  r.request = get_authenticated(in);
  r.prepared = in.u8() != 0;
  if (in.u8() != 0) {
    std::vector<Claim> one = get_claims(in);
    if (one.size() != 1) return std::nullopt;
    r.earlier_prepared = one.front();
  }
  r.earlier_preprepared = get_claims(in);
  if (in.u8() != 0) {
    r.installed_through = Index(in.u64());
    r.installed_digest = in.array<32>();
  }
  const uint32_t bodies = in.count(kMaxEarlierBodies, 8);
  for (uint32_t i = 0; i < bodies && !in.failed(); ++i) {
    r.earlier_bodies.push_back(get_authenticated(in));
  }
  if (!in.done()) return std::nullopt;
  return r;
}

}  // namespace synod::pbft
