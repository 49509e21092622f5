// Writes the seed inputs of the binary corpora (wal, snapshot, peer, auth_token) with the
// project's own writers, so fuzzing starts from inputs that decode all the way. Usage:
//   fuzz_make_seeds <tests/fuzz/corpus>
// Each seed is named seed_<what>; the text corpora (history, config, http) are plain files.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/pbft/crypto.h"
#include "kv/image.h"
#include "kv/mem_backend.h"
#include "kv/store.h"
#include "net/raft_codec.h"
#include "replica/engine_factory.h"
#include "storage/snapshot_file.h"
#include "storage/wal.h"
#include "storage/wal_record.h"
#include "storage/wal_segment.h"

namespace synod {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string u16(size_t n) {
  return std::string{static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff)};
}

std::vector<raft::Entry> entries(uint64_t first, uint64_t count, uint64_t term) {
  std::vector<raft::Entry> out;
  for (uint64_t i = 0; i < count; ++i) {
    out.push_back({raft::Term(term), raft::Index(first + i), raft::EntryType::kNormal,
                   "entry " + std::to_string(first + i)});
  }
  return out;
}

// The (type, u16 length, payload) chunks of a segment's records: the WAL harness's framed form.
std::string chunks_of(const std::string& segment) {
  std::string out;
  size_t offset = 0;
  storage::RawRecord record;
  std::string reason;
  while (storage::parse_record(segment, offset, &record, &reason)) {
    out.push_back(static_cast<char>(record.type));
    out += u16(record.payload.size());
    out += record.payload;
    offset += record.total_bytes;
  }
  return out;
}

void wal_seeds(const fs::path& corpus, const fs::path& work) {
  storage::Wal::Options options;
  options.dir = (work / "wal-seed").string();
  options.segment_bytes = 200;  // rotates: seeds with several segments
  options.zero_ahead_bytes = 0;
  fs::remove_all(options.dir);
  fs::create_directories(work);
  storage::Wal::Result opened = storage::Wal::open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "fuzz_make_seeds: %s\n", opened.error.c_str());
    std::exit(1);
  }
  storage::Wal& wal = *opened.wal;
  (void)wal.append(entries(1, 4, 1),
                   raft::HardState{raft::Term(1), raft::NodeId(1), raft::Index(2)});
  (void)wal.sync();
  (void)wal.append(entries(3, 3, 2),
                   raft::HardState{raft::Term(2), raft::NodeId(2), raft::Index(4)});
  (void)wal.sync();
  raft::Snapshot snapshot;
  snapshot.meta.index = raft::Index(4);
  snapshot.meta.term = raft::Term(2);
  snapshot.meta.conf.voters = {raft::NodeId(1), raft::NodeId(2), raft::NodeId(3)};
  snapshot.data = "image";
  (void)wal.save_snapshot(snapshot);
  (void)wal.append(entries(6, 2, 2), std::nullopt);
  (void)wal.sync();
  opened.wal.reset();

  std::vector<std::string> segments;
  for (uint64_t seq = 1;; ++seq) {
    bool found = false;
    for (const auto& e : fs::directory_iterator(fs::path(options.dir) / "wal")) {
      const auto name = storage::parse_segment_file_name(e.path().filename().string());
      if (name && name->seq == seq) {
        segments.push_back(read(e.path()));
        found = true;
      }
    }
    if (!found) break;
  }
  for (size_t i = 0; i < segments.size() && i < 3; ++i) {
    const std::string n = std::to_string(i + 1);
    write(corpus / "wal" / ("seed_segment" + n), std::string(1, '\0') + segments[i]);
    write(corpus / "wal" / ("seed_framed" + n), std::string(1, '\x04') + chunks_of(segments[i]));
  }
  if (segments.size() >= 2) {
    write(corpus / "wal" / "seed_two_segments_open",
          std::string(1, '\x09') + u16(segments[0].size()) + segments[0] + segments[1]);
    write(corpus / "wal" / "seed_two_framed", std::string(1, '\x05') +
                                                  u16(chunks_of(segments[0]).size()) +
                                                  chunks_of(segments[0]) + chunks_of(segments[1]));
  }
}

synodpb::Request put(const std::string& key, const std::string& value, int64_t lease = 0) {
  synodpb::Request r;
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  r.mutable_put()->set_lease(lease);
  return r;
}

// A store that holds something of every table: keys with history, a deletion, a compaction, a
// lease with a key, a member, and auth users and roles.
std::string store_image(kv::MemBackend& backend) {
  kv::Store store(backend);
  uint64_t index = 0;
  (void)store.apply(++index, put("a", "1"));
  (void)store.apply(++index, put("a", "2"));
  (void)store.apply(++index, put("b", "3"));
  synodpb::Request del;
  del.mutable_delete_range()->set_key("b");
  (void)store.apply(++index, del);
  synodpb::Request compact;
  compact.mutable_compaction()->set_revision(2);
  (void)store.apply(++index, compact);
  synodpb::Request grant;
  grant.mutable_lease_grant()->set_id(7);
  grant.mutable_lease_grant()->set_ttl(60);
  (void)store.apply(++index, grant);
  (void)store.apply(++index, put("leased", "x", 7));
  synodpb::Request member;
  member.mutable_member_put()->set_id(1);
  member.mutable_member_put()->set_name("one");
  member.mutable_member_put()->add_peer_urls("http://127.0.0.1:2380");
  (void)store.apply(++index, member);
  synodpb::Request auth;
  auth.mutable_auth()->mutable_user_add()->set_name("root");
  auth.mutable_auth()->mutable_user_add()->set_password_hash("hash");
  (void)store.apply(++index, auth);
  auth.mutable_auth()->mutable_user_add()->set_name("alice");
  (void)store.apply(++index, auth);
  auth.Clear();
  auth.mutable_auth()->set_role_add("root");
  (void)store.apply(++index, auth);
  auth.mutable_auth()->set_role_add("reader");
  (void)store.apply(++index, auth);
  auth.Clear();
  auto* grant_role = auth.mutable_auth()->mutable_user_grant_role();
  grant_role->set_user("root");
  grant_role->set_role("root");
  (void)store.apply(++index, auth);
  grant_role->set_user("alice");
  grant_role->set_role("reader");
  (void)store.apply(++index, auth);
  auth.Clear();
  auto* perm = auth.mutable_auth()->mutable_role_grant_permission();
  perm->set_name("reader");
  perm->mutable_perm()->set_permtype(authpb::Permission::READ);
  perm->mutable_perm()->set_key("a");
  perm->mutable_perm()->set_range_end("c");
  (void)store.apply(++index, auth);
  auth.Clear();
  auth.mutable_auth()->mutable_enable();
  (void)store.apply(++index, auth);
  return store.image();
}

std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

void snapshot_and_auth_seeds(const fs::path& corpus, const fs::path& work) {
  kv::MemBackend backend;
  const std::string image = store_image(backend);
  raft::Snapshot snapshot;
  snapshot.meta.index = raft::Index(15);
  snapshot.meta.term = raft::Term(3);
  snapshot.meta.conf.voters = {raft::NodeId(1), raft::NodeId(2), raft::NodeId(3)};
  snapshot.meta.conf.learners = {raft::NodeId(4)};
  snapshot.data = image;
  const fs::path dir = work / "snap-seed";
  fs::remove_all(dir);
  fs::create_directories(dir);
  storage::SnapshotFileSummary summary;
  (void)storage::write_snapshot_file(dir.string(), snapshot, &summary);
  const std::string file = read(dir / storage::snapshot_file_name(snapshot.meta));
  write(corpus / "snapshot" / "seed_file", std::string(1, '\0') + file);
  // The framed form: the metadata (after magic, version and its length) and the data.
  const uint32_t meta_bytes =
      static_cast<uint8_t>(file[12]) | (static_cast<uint8_t>(file[13]) << 8);
  write(corpus / "snapshot" / "seed_framed",
        std::string(1, '\x01') + u16(meta_bytes) + file.substr(16, meta_bytes) + image);
  write(corpus / "snapshot" / "seed_image", std::string(1, '\x02') + image);
  std::string pairs;
  std::string auth_pairs;
  backend.scan("", "", [&](std::string_view k, std::string_view v) {
    pairs += varint(k.size()) + std::string(k) + varint(v.size()) + std::string(v);
    if (k.starts_with("a")) {
      const std::string rest(k.substr(1));
      auth_pairs += static_cast<char>(rest.size()) + rest + u16(v.size()) + std::string(v);
    }
    return true;
  });
  write(corpus / "snapshot" / "seed_pairs", std::string(1, '\x03') + pairs);

  // Tokens: logins, lookups (known and not), a delete, a password change, a lookup again.
  std::string tokens;
  auto str = [](const std::string& s) { return static_cast<char>(s.size()) + s; };
  tokens += '\0' + str("root") + str("tokenRootAAAAAAA.1");
  tokens += '\0' + str("alice") + str("tokenAliceAAAAAA.2");
  tokens += '\x04' + str("tokenRootAAAAAAA.1");
  tokens += '\x04' + str("unknown.3");
  tokens += '\x01' + str("alice");
  tokens += '\x04' + str("tokenAliceAAAAAA.2");
  tokens += '\x02' + str("root");
  tokens += '\x03';
  tokens += '\x04' + str("tokenRootAAAAAAA.1");
  std::string checks = str("alice") + str("a") + str("b") + '\0' + str("a") + str("") + '\1' +
                       str("z") + str("") + '\0';
  write(corpus / "auth_token" / "seed_store",
        u16(tokens.size()) + tokens + auth_pairs + std::string(1, '\0') + checks);
}

// Frames of the messages a 4-member cluster of `kind` sends member 1 while it elects a leader
// and replicates proposals.
void peer_seeds(const fs::path& corpus, replica::EngineKind kind, uint8_t control) {
  std::map<uint64_t, pbft::PublicKeys> group;
  for (uint64_t id = 1; id <= 4; ++id) group[id] = pbft::make_keys_from_seed(7, id).pub;
  std::map<uint64_t, std::unique_ptr<Engine>> nodes;
  for (uint64_t id = 1; id <= 4; ++id) {
    raft::EngineConfig config;
    config.id = raft::NodeId(id);
    config.seed = id;
    for (uint64_t v = 1; v <= 4; ++v) config.initial_conf.voters.push_back(raft::NodeId(v));
    replica::PbftOptions pbft;
    pbft.keys = std::make_shared<const pbft::Keyring>(pbft::make_keys_from_seed(7, id), group);
    nodes[id] = replica::make_engine(kind, config, raft::Persisted{}, {}, pbft);
  }
  std::vector<raft::Message> to_one;
  std::vector<raft::Message> in_flight;
  for (int round = 0; round < 120; ++round) {
    for (auto& [id, node] : nodes) {
      if (round % 7 == 3) (void)node->propose("value " + std::to_string(round));
      node->tick();
      while (node->has_ready()) {
        raft::Ready ready = node->ready();
        for (auto* list : {&ready.messages, &ready.immediate_messages})
          for (raft::Message& m : *list) in_flight.push_back(std::move(m));
        node->advance();
      }
    }
    std::vector<raft::Message> delivering;
    delivering.swap(in_flight);
    for (raft::Message& m : delivering) {
      if (m.to.value == 1 && to_one.size() < 400) to_one.push_back(m);
      if (nodes.contains(m.to.value)) nodes[m.to.value]->step(m);
    }
  }
  const char* name = replica::to_string(kind);
  for (size_t i = 0, frame = 0; i < to_one.size() && frame < 12; i += 8, ++frame) {
    synodpb::RaftBatch batch;
    batch.set_cluster_id(1);
    batch.set_from(to_one[i].from.value);
    if (kind != replica::EngineKind::kRaft) batch.set_engine(name);
    for (size_t j = i; j < i + 8 && j < to_one.size(); ++j)
      net::encode(to_one[j], batch.add_messages());
    write(corpus / "peer" / ("seed_" + std::string(name) + "_" + std::to_string(frame)),
          std::string(1, static_cast<char>(control)) + batch.SerializeAsString());
  }
  std::printf("peer %s: %zu messages to member 1\n", name, to_one.size());
}

}  // namespace
}  // namespace synod

int main(int argc, char** argv) {
  using namespace synod;
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds <tests/fuzz/corpus>\n");
    return 2;
  }
  const std::filesystem::path corpus(argv[1]);
  const std::filesystem::path work =
      std::filesystem::temp_directory_path() / ("synod-seeds-" + std::to_string(::getpid()));
  wal_seeds(corpus, work);
  snapshot_and_auth_seeds(corpus, work);
  peer_seeds(corpus, replica::EngineKind::kRaft, 0x04);
  peer_seeds(corpus, replica::EngineKind::kMultiPaxos, 0x05);
  peer_seeds(corpus, replica::EngineKind::kPbft, 0x06);
  std::filesystem::remove_all(work);
  return 0;
}
