#include "server/shards.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "base/assert.h"
#include "core/ring/ring.h"
#include "net/transport.h"
#include "storage/wal_fs.h"

namespace synod::server {

namespace fs = std::filesystem;

namespace {

std::string layout_text(const ShardOptions& o) {
  return "shards " + std::to_string(o.shards) + " replication " + std::to_string(o.replication);
}

std::string describe(const ShardOptions& o) {
  if (o.shards == 0) return "no --shards";
  return "--shards " + std::to_string(o.shards) + " --replication " + std::to_string(o.replication);
}

// Writes `text` to `path` through a temporary file, fsynced, then renamed over it.
bool write_durably(const std::string& path, const std::string& text, std::string* error) {
  const std::string tmp = path + ".tmp";
  storage::FileHandle file;
  storage::WalStatus s = storage::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, &file);
  if (s.ok()) s = storage::write_all(file.get(), text.data(), text.size(), tmp);
  if (s.ok()) s = storage::sync_data(file.get(), tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = storage::errno_status("rename", tmp);
  if (s.ok()) s = storage::sync_dir(fs::path(path).parent_path().string());
  if (!s.ok()) *error = s.message();
  return s.ok();
}

}  // namespace

bool check_shard_layout(const std::string& data_dir, const ShardOptions& options,
                        std::string* error) {
  const std::string path = data_dir + "/member/shards";
  ShardOptions recorded;
  if (fs::exists(path)) {
    std::string text;
    storage::WalStatus s = storage::read_whole_file(path, &text);
    std::istringstream in(text);
    std::string shards_word, replication_word;
    if (!s.ok() ||
        !(in >> shards_word >> recorded.shards >> replication_word >> recorded.replication) ||
        shards_word != "shards" || replication_word != "replication") {
      *error = "data dir '" + data_dir + "': member/shards is unreadable";
      return false;
    }
  } else if (fs::exists(data_dir + "/member/db")) {
    recorded = ShardOptions{0, 0};  // laid out before this file existed: unsharded
  } else {
    if (!write_durably(path, layout_text(options) + "\n", error)) return false;
    recorded = options;
  }
  if (recorded.shards == 0 && options.shards == 0) return true;
  if (recorded.shards != options.shards || recorded.replication != options.replication) {
    *error = "data dir '" + data_dir + "' was created with " + describe(recorded) +
             "; start it with the same (the shard layout cannot change for a data dir)";
    return false;
  }
  return true;
}

std::unique_ptr<Shards> Shards::open(const ShardOptions& options, const NodeOptions& base,
                                     const std::vector<uint64_t>& members,
                                     std::shared_ptr<grpc::ChannelCredentials> peer_credentials,
                                     std::string* error) {
  SYNOD_ASSERT(options.shards > 0 && options.shards <= ShardOptions::kMaxShards);
  SYNOD_ASSERT(!members.empty());
  ring::Ring ring(ring::RingOptions{.replication = options.replication});
  for (uint64_t m : members) ring.add(m);
  const ring::Placement placement = ring.placement(options.shards);
  std::unique_ptr<Shards> shards(new Shards());
  shards->groups_.resize(options.shards);
  for (uint32_t g = 1; g <= options.shards; ++g) {
    Group& group = shards->groups_[g - 1];
    group.replicas = placement[g - 1];
    if (std::find(group.replicas.begin(), group.replicas.end(), base.id.value) ==
        group.replicas.end()) {
      continue;
    }
    NodeOptions o = base;
    o.data_dir = base.data_dir + "/groups/" + std::to_string(g);
    o.initial_conf = {};
    for (uint64_t r : group.replicas) o.initial_conf.voters.emplace_back(r);
    std::error_code ec;
    fs::create_directories(o.data_dir, ec);
    if (ec) {
      *error = "cannot create " + o.data_dir + ": " + ec.message();
      return nullptr;
    }
    group.transport = std::make_unique<net::Transport>(
        base.id, base.cluster_id, replica::to_string(base.engine), peer_credentials, g);
    group.node = Node::open(o, *group.transport, error);
    if (!group.node) {
      *error = "group " + std::to_string(g) + ": " + *error;
      return nullptr;
    }
  }
  return shards;
}

Shards::~Shards() {
  stop();
}

uint32_t Shards::group_of(std::string_view key) const {
  return 1 + ring::shard_of_key(key, count());
}

Node* Shards::node(uint32_t group) const {
  if (group == 0 || group > groups_.size()) return nullptr;
  return groups_[group - 1].node.get();
}

const std::vector<uint64_t>& Shards::replicas(uint32_t group) const {
  SYNOD_ASSERT(group >= 1 && group <= groups_.size());
  return groups_[group - 1].replicas;
}

std::vector<std::pair<uint32_t, Node*>> Shards::hosted() const {
  std::vector<std::pair<uint32_t, Node*>> out;
  for (uint32_t g = 1; g <= groups_.size(); ++g) {
    if (Node* n = node(g)) out.emplace_back(g, n);
  }
  return out;
}

void Shards::start() {
  for (auto& [g, node] : hosted()) node->start();
}

void Shards::stop() {
  for (auto& [g, node] : hosted()) node->stop();
  for (Group& group : groups_) {
    if (group.transport) group.transport->stop();
  }
}

void Shards::set_peer_address(uint64_t member, const std::string& address) {
  for (Group& group : groups_) {
    if (!group.transport) continue;
    if (std::find(group.replicas.begin(), group.replicas.end(), member) == group.replicas.end()) {
      continue;
    }
    group.transport->set_peer(raft::NodeId(member), address);
  }
}

}  // namespace synod::server
