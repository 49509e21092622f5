// Peer messages: a frame off a peer stream is bytes from the network. The member parses it as a
// synodpb.RaftBatch, decodes each message (net::decode) and steps those addressed to it into its
// engine (server/peer_service.cpp); a malformed message must be dropped there, never crash the
// member. PBFT payloads are opened and their requests decoded as the engine and the BFT client
// service do.
//
// Input: a control byte, then the serialized RaftBatch. Control bits: 0-1 the engine (Raft,
// Multi-Paxos, PBFT) of member 1 of {1, 2, 3, 4}; 2-7 ticks between messages (every message is
// followed by (control >> 2) % 4 ticks, so elections and timeouts happen). Each PBFT payload that
// opens (MACs unchecked) is sealed again from its claimed sender with the real keys, so the
// engine's handling of well-authenticated but hostile messages is reached.
#include <cstdint>
#include <memory>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "core/pbft/crypto.h"
#include "core/pbft/messages.h"
#include "fuzz_support.h"
#include "net/raft_codec.h"
#include "replica/engine_factory.h"

namespace synod {
namespace {

constexpr int kMaxMessages = 64;
constexpr uint64_t kMembers = 4;
constexpr uint64_t kKeySeed = 7;

std::map<uint64_t, pbft::PublicKeys> group_keys() {
  std::map<uint64_t, pbft::PublicKeys> out;
  for (uint64_t id = 1; id <= kMembers; ++id) out[id] = pbft::make_keys_from_seed(kKeySeed, id).pub;
  return out;
}

// The keyrings of every member (key derivation is costly: made once).
const std::map<uint64_t, std::shared_ptr<const pbft::Keyring>>& keyrings() {
  static const auto rings = [] {
    std::map<uint64_t, std::shared_ptr<const pbft::Keyring>> out;
    for (uint64_t id = 1; id <= kMembers; ++id)
      out[id] = std::make_shared<const pbft::Keyring>(pbft::make_keys_from_seed(kKeySeed, id),
                                                      group_keys());
    return out;
  }();
  return rings;
}

// BftService::authentic's path: decode, then the MAC for this member.
void decode_client_request(std::string_view bytes) {
  const std::optional<pbft::AuthenticatedRequest> r = pbft::decode_client_request(bytes);
  if (!r || r->request.is_null()) return;
  const pbft::Mac* mac = r->mac_for(1);
  if (mac != nullptr) {
    (void)keyrings().at(1)->check_mac_from_client(r->request.client,
                                                  pbft::request_auth_bytes(r->request), *mac);
  }
}

// A PBFT payload: its decoders, and (if it opens) the same message sealed by its sender.
std::optional<std::string> reseal(const raft::Message& m) {
  decode_client_request(m.payload);
  (void)pbft::decode_record(m.payload);
  const auto& rings = keyrings();
  if (!rings.contains(m.from.value)) return std::nullopt;
  std::string why;
  const std::optional<pbft::Msg> msg =
      pbft::open(m.payload, *rings.at(1), m.from, &why, /*check_macs=*/false);
  if (!msg) return std::nullopt;
  return pbft::seal(*msg, *rings.at(m.from.value), raft::NodeId(1));
}

void drain(Engine& engine) {
  for (int n = 0; n < 16 && engine.has_ready(); ++n) {
    (void)engine.ready();
    engine.advance();
  }
}

}  // namespace
}  // namespace synod

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace synod;
  // Protobuf logs every string field that is not UTF-8; a member does too, the fuzzer need not.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  fuzz::ByteReader in(data, size);
  const uint8_t control = in.byte();
  const std::string_view frame_bytes = in.rest();
  synodpb::RaftBatch frame;
  if (!frame.ParseFromArray(frame_bytes.data(), static_cast<int>(frame_bytes.size()))) return 0;

  static constexpr replica::EngineKind kKinds[] = {
      replica::EngineKind::kRaft, replica::EngineKind::kMultiPaxos, replica::EngineKind::kPbft};
  const replica::EngineKind kind = kKinds[(control & 3) % 3];
  raft::EngineConfig config;
  config.id = raft::NodeId(1);
  config.seed = 1;
  for (uint64_t id = 1; id <= kMembers; ++id)
    config.initial_conf.voters.push_back(raft::NodeId(id));
  replica::PbftOptions pbft_options;
  pbft_options.keys = keyrings().at(1);
  const std::unique_ptr<Engine> engine =
      replica::make_engine(kind, config, raft::Persisted{}, {}, pbft_options);
  const int ticks = (control >> 2) % 4;

  int stepped = 0;
  for (const synodpb::RaftMessage& wire : frame.messages()) {
    if (stepped++ == kMaxMessages) break;
    std::string error;
    std::optional<raft::Message> m = net::decode(wire, &error);
    if (!m) {
      if (error.empty()) fuzz::property_failed("net::decode refused a message without a reason");
      continue;
    }
    // As the peer service does: only messages addressed to this member reach the engine.
    if (m->to.value != 1) continue;
    if (m->type == raft::MessageType::kPbft) {
      if (std::optional<std::string> sealed = reseal(*m)) m->payload = std::move(*sealed);
    }
    engine->step(*m);
    drain(*engine);
    for (int t = 0; t < ticks; ++t) engine->tick();
    drain(*engine);
  }
  return 0;
}
