#include "server/shards.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>

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
                                     const std::vector<uint64_t>& founders,
                                     std::shared_ptr<grpc::ChannelCredentials> peer_credentials,
                                     std::string* error) {
  SYNOD_ASSERT(options.shards > 0 && options.shards <= ShardOptions::kMaxShards);
  std::unique_ptr<Shards> shards(new Shards());
  shards->options_ = options;
  shards->base_ = base;
  shards->transport_ = std::make_unique<net::Transport>(
      base.id, base.cluster_id, replica::to_string(base.engine), std::move(peer_credentials));
  GroupLoop::Options loop_options;
  loop_options.tick = std::chrono::milliseconds(base.tick_ms);
  loop_options.begin_round = [t = shards->transport_.get()] { t->cork(); };
  loop_options.end_round = [t = shards->transport_.get()] { t->uncork(); };
  loop_options.sync_dir = base.data_dir;
  if (const char* e = std::getenv("SYNOD_GROUP_SYNC"); e && std::string_view(e) == "fdatasync") {
    loop_options.sync_dir.clear();  // benchmarks: every group's WAL synced on its own
  }
  shards->loop_ = std::make_unique<GroupLoop>(std::move(loop_options));
  shards->base_.loop = shards->loop_.get();
  shards->groups_.resize(options.shards);
  if (!founders.empty()) {
    ring::Ring ring(ring::RingOptions{.replication = options.replication});
    for (uint64_t m : founders) ring.add(m);
    shards->initial_ = ring.placement(options.shards);
    for (uint32_t g = 1; g <= options.shards; ++g) {
      shards->groups_[g - 1].replicas = shards->initial_[g - 1];
    }
  }
  const std::string groups_dir = base.data_dir + "/groups";
  const bool ran_before = fs::exists(groups_dir);
  std::map<uint32_t, uint32_t> found;  // group -> its newest incarnation on disk
  if (ran_before) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(groups_dir, ec)) {
      const std::string name = entry.path().filename().string();
      uint32_t g = 0, incarnation = 0;
      char dot = 0;
      std::istringstream in(name);
      if (!(in >> g) || g == 0 || g > options.shards) continue;
      if (in >> dot && (dot != '.' || !(in >> incarnation))) continue;
      auto [it, fresh] = found.emplace(g, incarnation);
      if (!fresh && it->second < incarnation) {
        fs::remove_all(shards->group_dir(g, it->second), ec);  // left by an interrupted drop
        it->second = incarnation;
      } else if (!fresh) {
        fs::remove_all(entry.path(), ec);
      }
    }
  }
  std::unique_lock lock(shards->mu_);
  for (uint32_t g = 1; g <= options.shards; ++g) {
    const std::vector<uint64_t>& replicas = shards->groups_[g - 1].replicas;
    const bool here = std::find(replicas.begin(), replicas.end(), base.id.value) != replicas.end();
    if (ran_before) {
      // A member that ran before hosts what it held when it stopped; the shard map corrects
      // the rest once it is read.
      auto it = found.find(g);
      if (it == found.end()) continue;
      shards->groups_[g - 1].incarnation = it->second;
      // The group's founding configuration is not in its log: an engine restarting without a
      // snapshot starts from it, as group 0 starts from the identity's. It is the ring's first
      // placement (on a member that joined later, the group's log and snapshots carry the
      // configurations that matter to it).
      const std::vector<uint64_t> founding =
          shards->initial_.empty() ? std::vector<uint64_t>() : shards->initial_[g - 1];
      if (!shards->open_group(g, founding, error)) return nullptr;
    } else if (here) {
      if (!shards->open_group(g, replicas, error)) return nullptr;
    }
  }
  if (!ran_before) {
    std::error_code ec;
    fs::create_directories(groups_dir, ec);
    if (ec) {
      *error = "cannot create " + groups_dir + ": " + ec.message();
      return nullptr;
    }
  }
  lock.unlock();
  return shards;
}

std::string Shards::group_dir(uint32_t g, uint32_t incarnation) const {
  std::string dir = base_.data_dir + "/groups/" + std::to_string(g);
  if (incarnation > 0) dir += "." + std::to_string(incarnation);
  return dir;
}

bool Shards::open_group(uint32_t g, const std::vector<uint64_t>& voters, std::string* error) {
  Group& group = groups_[g - 1];
  NodeOptions o = base_;
  o.data_dir = group_dir(g, group.incarnation);
  o.initial_conf = {};
  for (uint64_t r : voters) o.initial_conf.voters.emplace_back(r);
  std::error_code ec;
  fs::create_directories(o.data_dir, ec);
  if (ec) {
    *error = "cannot create " + o.data_dir + ": " + ec.message();
    return false;
  }
  o.group = g;
  group.node = Node::open(o, *transport_, error);
  if (!group.node) {
    *error = "group " + std::to_string(g) + ": " + *error;
    return false;
  }
  if (setup_) setup_(g, *group.node);
  if (started_) group.node->start();
  return true;
}

void Shards::set_on_drop(std::function<void(uint32_t group)> on_drop) {
  std::unique_lock lock(mu_);
  on_drop_ = std::move(on_drop);
}

void Shards::set_node_setup(NodeSetup setup) {
  std::unique_lock lock(mu_);
  setup_ = std::move(setup);
  for (uint32_t g = 1; g <= groups_.size(); ++g) {
    if (groups_[g - 1].node) setup_(g, *groups_[g - 1].node);
  }
}

bool Shards::set_replicas(uint32_t g, std::vector<uint64_t> replicas, std::string* error) {
  SYNOD_ASSERT(g >= 1 && g <= groups_.size());
  const bool named = std::find(replicas.begin(), replicas.end(), base_.id.value) != replicas.end();
  std::unique_lock lock(mu_);
  Group& group = groups_[g - 1];
  group.replicas = std::move(replicas);
  if (named && !group.node) {
    spdlog::info("shards: group {} now has a replica here; joining it", g);
    return open_group(g, {}, error);
  }
  if (!named && group.node) {
    spdlog::info("shards: group {} no longer has a replica here; dropping it", g);
    Group gone;
    gone.node = std::move(group.node);
    const std::string dir = group_dir(g, group.incarnation);
    // A later replica of the group here opens a directory of its own: this one's store stays
    // open (its files removed) as long as the retired node does.
    ++group.incarnation;
    lock.unlock();
    gone.node->stop();
    std::error_code ec;
    fs::remove_all(dir, ec);
    lock.lock();
    retired_.push_back(std::move(gone));
    if (on_drop_) {
      auto on_drop = on_drop_;
      lock.unlock();
      on_drop(g);
    }
  }
  return true;
}

Shards::~Shards() {
  stop();
}

uint32_t Shards::group_of(std::string_view key) const {
  return 1 + ring::shard_of_key(key, count());
}

Node* Shards::node(uint32_t group) const {
  if (group == 0 || group > groups_.size()) return nullptr;
  std::shared_lock lock(mu_);
  return groups_[group - 1].node.get();
}

std::vector<uint64_t> Shards::replicas(uint32_t group) const {
  SYNOD_ASSERT(group >= 1 && group <= groups_.size());
  std::shared_lock lock(mu_);
  return groups_[group - 1].replicas;
}

std::vector<std::pair<uint32_t, Node*>> Shards::hosted() const {
  std::vector<std::pair<uint32_t, Node*>> out;
  std::shared_lock lock(mu_);
  for (uint32_t g = 1; g <= groups_.size(); ++g) {
    if (Node* n = groups_[g - 1].node.get()) out.emplace_back(g, n);
  }
  return out;
}

void Shards::start() {
  std::unique_lock lock(mu_);
  started_ = true;
  for (Group& group : groups_) {
    if (group.node) group.node->start();
  }
}

void Shards::stop() {
  // Stopped outside the lock: a node's last callbacks may still look groups up.
  std::vector<Node*> nodes;
  {
    std::unique_lock lock(mu_);
    started_ = false;
    for (Group& group : groups_) {
      if (group.node) nodes.push_back(group.node.get());
    }
  }
  for (Node* n : nodes) n->stop();
  if (loop_) loop_->stop();
  if (transport_) transport_->stop();
}

void Shards::set_peer_address(uint64_t member, const std::string& address) {
  std::unique_lock lock(mu_);
  transport_->set_peer(raft::NodeId(member), address);
}

void Shards::decision_done(uint32_t group, std::string txn, uint64_t epoch) {
  // Bounded: a member whose resolver cannot reach a group keeps at most this many waiting
  // (the rest stay recorded; a decision kept is only space).
  constexpr size_t kMaxWaiting = 100000;
  std::lock_guard lock(done_mu_);
  Forgettable& f = done_decisions_[group];
  if (f.txns.size() >= kMaxWaiting) return;
  f.txns.push_back(std::move(txn));
  f.epoch = std::max(f.epoch, epoch);
}

std::map<uint32_t, Shards::Forgettable> Shards::take_done_decisions() {
  std::lock_guard lock(done_mu_);
  return std::exchange(done_decisions_, {});
}

}  // namespace synod::server
