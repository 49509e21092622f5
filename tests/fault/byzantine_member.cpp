// The adversary a Byzantine member runs on what it sends (docs/fault.md, "A Byzantine member"):
//   equivocate  as primary, a different batch for the same sequence numbers to some backups
//               (reordered, or another request of the ones it saw in place of the first)
//   lie         votes (prepare, commit) and checkpoints for digests nobody proposed, besides
//               the true ones
//   alter       a byte of one message in ten flipped (its MAC no longer checks)
//   replay      one message in twenty is followed by an older one sent again
//   silent      as primary, no pre-prepare leaves (the others must change view)
//   bad-state   a state it serves a peer for a snapshot has one row added that no client
//               wrote (and, with lie, its state claims come with made-up digests besides)
// Everything it sends is MAC'd with its own keys: it lies as itself, as a faulty replica can.
#include "byzantine_member.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include "core/pbft/messages.h"
#include "kv/image.h"
#include "kv/mem_backend.h"
#include "server/server.h"

namespace synod::fault {

namespace {

std::atomic<uint64_t> bad_states{0};  // states served with a made-up row

struct Adversary {
  uint64_t self = 0;
  std::shared_ptr<const pbft::Keyring> keys;
  std::set<std::string> modes;
  std::mutex mu;  // the filter runs on the raft thread; this keeps it safe anyway
  std::mt19937_64 rng{std::random_device{}()};
  std::deque<raft::Message> sent;
  std::deque<pbft::AuthenticatedRequest> seen;
  std::map<std::string, uint64_t> done;  // what it did, by behaviour
  std::chrono::steady_clock::time_point last_report = std::chrono::steady_clock::now();

  // One line every few seconds: the campaign reads the last one to see that it lied.
  void report() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report < std::chrono::seconds(2)) return;
    last_report = now;
    std::string line;
    if (const uint64_t n = bad_states.load()) done["bad-state"] = n;
    for (const auto& [what, n] : done) line += " " + what + "=" + std::to_string(n);
    spdlog::warn("byzantine member:{}", line);
  }

  bool has(const char* mode) const { return modes.contains(mode); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

  raft::Message reseal(const raft::Message& m, const pbft::Msg& msg) const {
    raft::Message out = m;
    out.payload = pbft::seal(msg, *keys, m.to);
    return out;
  }

  pbft::Digest random_digest() {
    pbft::Digest d{};
    for (auto& b : d) b = static_cast<uint8_t>(rng());
    return d;
  }

  void filter(std::vector<raft::Message>& messages) {
    std::lock_guard lock(mu);
    std::vector<raft::Message> out;
    for (raft::Message& m : messages) {
      if (m.type != raft::MessageType::kPbft) {
        out.push_back(std::move(m));
        continue;
      }
      std::string why;
      std::optional<pbft::Msg> msg = pbft::open(m.payload, *keys, m.from, &why, false);
      if (!msg) {
        out.push_back(std::move(m));
        continue;
      }
      if (msg->kind == pbft::Kind::kPrePrepare) {
        for (const auto& r : msg->requests) {
          if (!r.request.is_null()) seen.push_back(r);
          if (seen.size() > 256) seen.pop_front();
        }
        if (has("silent")) {
          ++done["silent"];
          continue;
        }
        if (has("equivocate") && m.to.value % 2 == 0) {
          pbft::Msg other = *msg;
          if (other.requests.size() > 1) {
            std::reverse(other.requests.begin(), other.requests.end());
          } else if (!seen.empty()) {
            other.requests.front() = seen[rng() % seen.size()];
          }
          out.push_back(reseal(m, other));
          ++done["equivocate"];
          continue;
        }
      }
      if (has("lie") && (msg->kind == pbft::Kind::kPrepare || msg->kind == pbft::Kind::kCommit ||
                         msg->kind == pbft::Kind::kCheckpoint || msg->kind == pbft::Kind::kState)) {
        pbft::Msg lie = *msg;
        lie.digest = random_digest();
        out.push_back(reseal(m, lie));
        ++done["lie"];
      }
      if (has("replay") && !sent.empty() && chance(0.05)) {
        out.push_back(sent[rng() % sent.size()]);
        ++done["replay"];
      }
      sent.push_back(m);
      if (sent.size() > 512) sent.pop_front();
      if (has("alter") && chance(0.1) && !m.payload.empty()) {
        m.payload[rng() % m.payload.size()] ^= static_cast<char>(1 + rng() % 255);
        ++done["alter"];
      }
      out.push_back(std::move(m));
    }
    messages = std::move(out);
    report();
  }
};

}  // namespace

std::string install_byzantine_member(const std::string& modes) {
  static const std::set<std::string> kModes = {"equivocate", "lie",    "alter",
                                               "replay",     "silent", "bad-state"};
  auto chosen = std::make_shared<std::set<std::string>>();
  std::stringstream in(modes);
  std::string mode;
  while (std::getline(in, mode, ',')) {
    if (mode == "all") {
      chosen->insert(kModes.begin(), kModes.end());
      chosen->erase("silent");  // silent and equivocate exclude each other; all equivocates
    } else if (kModes.contains(mode)) {
      chosen->insert(mode);
    } else {
      return "--byzantine-test: unknown mode '" + mode +
             "' (equivocate, lie, alter, replay, silent, bad-state, all)";
    }
  }
  if (chosen->contains("bad-state")) {
    server::set_served_state_filter([](std::string& image) {
      std::optional<kv::ImageEntries> entries = kv::decode_image(image);
      if (!entries) return;
      kv::MemBackend made_up;
      kv::WriteBatch batch;
      for (const auto& [key, value] : *entries) batch.put(key, value);
      batch.put("byzantine", "a row no client wrote");
      made_up.write(std::move(batch));
      image = kv::encode_image(made_up);
      ++bad_states;
    });
  }
  server::set_outbound_filter_factory(
      [chosen](uint64_t member_id,
               std::shared_ptr<const pbft::Keyring> keys) -> server::OutboundFilter {
        if (!keys) return {};  // not a PBFT member: nothing to lie about
        auto adversary = std::make_shared<Adversary>();
        adversary->self = member_id;
        adversary->keys = std::move(keys);
        adversary->modes = *chosen;
        return [adversary](std::vector<raft::Message>& messages) { adversary->filter(messages); };
      });
  return "";
}

}  // namespace synod::fault
