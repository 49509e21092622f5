// A member's durable state: recovery from the WAL and the store at start, and the store's
// images and maintenance (snapshots for clients, defragmentation).
#include <spdlog/spdlog.h>

#include <random>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <limits>

#include "base/assert.h"
#include "core/pbft/crypto.h"
#include "kv/image.h"
#include "replica/state_ref.h"
#include "server/node.h"
#include "storage/etcd_snapshot.h"
#include "storage/rocks_backend.h"
#include "storage/wal.h"
#include "storage/wal_fs.h"

namespace synod::server {

bool Node::recover(std::string* error) {
  storage::Wal::Options wal_options;
  wal_options.dir = options_.data_dir + "/member";
  auto opened = storage::Wal::open(wal_options);
  if (!opened.ok()) {
    *error = opened.error;
    return false;
  }
  wal_ = std::move(opened.wal);
  raft::Persisted persisted = std::move(opened.recovered);

  auto backend = storage::RocksBackend::open(options_.data_dir + "/member/db");
  if (!backend) {
    *error = backend.error();
    return false;
  }
  backend_ = std::move(*backend);
  load_retained_states();
  buffered_ = std::make_unique<kv::BufferedBackend>(*backend_);
  // --max-txn-ops is checked where a request arrives; applying must not depend on a flag that
  // may differ between members, so the store takes any number of operations.
  store_ = std::make_unique<kv::Store>(*buffered_, std::numeric_limits<int>::max());
  if (persisted.snapshot && store_->applied_index() < persisted.snapshot->meta.index.value) {
    if (replica::decode_state_ref(persisted.snapshot->data)) {
      // The store is flushed before the WAL records a reference to it, so this means the data
      // dir was changed behind Synod's back.
      *error = "the store (applied index " + std::to_string(store_->applied_index()) +
               ") is behind the Raft snapshot at index " +
               std::to_string(persisted.snapshot->meta.index.value) +
               "; the data dir is inconsistent (remove it and re-add the member)";
      return false;
    }
    // The backend lost writes the snapshot covers (they were not yet flushed at the crash).
    if (!store_->restore(persisted.snapshot->data)) {
      *error = "snapshot at index " + std::to_string(persisted.snapshot->meta.index.value) +
               " does not restore";
      return false;
    }
  }
  publish_auth();
  const uint64_t snapshot_index = persisted.snapshot ? persisted.snapshot->meta.index.value : 0;
  const uint64_t engine_applied =
      replica::recover(options_.engine, persisted, store_->applied_index());

  raft::EngineConfig cfg;
  cfg.id = options_.id;
  cfg.seed = std::random_device{}();
  cfg.initial_conf = options_.initial_conf;
  cfg.applied = raft::Index(engine_applied);
  cfg.election_ticks = options_.election_ticks;
  cfg.heartbeat_ticks = 1;
  replica::PbftOptions pbft = options_.pbft;
  if (options_.engine == replica::EngineKind::kPbft && pbft.keys) {
    // This member's requests number on from the clock, and from above the highest the store
    // applied from it, whatever the clock did across the restart.
    const pbft::PublicKey& me = pbft.keys->public_keys().kx;
    const uint64_t applied_from_me = store_->session_highest(
        std::string_view(reinterpret_cast<const char*>(me.data()), me.size()));
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    pbft.timestamp_base = std::max(static_cast<uint64_t>(now.count()), applied_from_me + 1);
  }
  raft_ = replica::make_engine(options_.engine, cfg, persisted, {}, pbft);
  replica::DriverOptions driver_options;
  driver_options.snapshot_entries = options_.snapshot_entries;
  driver_options.fetch_retry_ticks = std::max<uint32_t>(1, 500 / options_.tick_ms);
  driver_options.read_retry_ticks = std::max<uint32_t>(1, 2000 / options_.tick_ms);
  // A range of read contexts no earlier process of this member used: a random start below
  // 2^63, so that counting up never wraps to 0 (which means "no read" in a heartbeat).
  std::random_device random;
  driver_options.first_read_context = (((uint64_t{random()} << 32) | random()) >> 1) | 1;
  replica::Host& host = *this;  // a private base: converted here, where it is accessible
  driver_ = std::make_unique<replica::Driver>(*raft_, host, driver_options, snapshot_index);
  spdlog::info("raft: member {:x} recovered term {} commit {} applied {} last index {}",
               options_.id.value, persisted.hard_state.term.value,
               persisted.hard_state.commit.value, store_->applied_index(),
               raft_->last_index().value);
  publish_status();
  return true;
}

// After the raft thread stopped: the threads doing its slow work finish (a fetch was asked to
// give up by stop()).
void Node::wait_background() {
  if (store_flush_.joinable()) store_flush_.join();
  if (state_fetch_.joinable()) state_fetch_.join();
  if (state_retain_.joinable()) state_retain_.join();
}

std::string Node::state_image(uint64_t* applied_index) const {
  std::shared_lock lock(store_mu_);
  *applied_index = store_->applied_index();
  return store_->image();
}

// --- Retained states ---------------------------------------------------------------------------
// An engine whose members may lie (PBFT) has the state kept at fixed applied indexes, so that a
// member installing a snapshot fetches a state whose digest it can check against other
// members' claims. Each is a kv::Store image in member/states/, named by its applied index and
// digest (written to a .tmp, fsynced, renamed, the directory fsynced); the newest
// kRetainedStates are kept.

namespace {

std::optional<std::string> unhex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 2) {
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string retained_file_name(uint64_t index, const std::string& digest) {
  char number[21];
  std::snprintf(number, sizeof(number), "%020" PRIu64, index);
  return std::string(number) + "-" +
         pbft::to_hex(reinterpret_cast<const uint8_t*>(digest.data()), digest.size()) + ".state";
}

}  // namespace

void Node::load_retained_states() {
  states_dir_ = options_.data_dir + "/member/states";
  std::vector<std::string> names;
  if (!storage::list_dir(states_dir_, &names).ok()) return;  // none yet
  std::lock_guard lock(retained_mu_);
  for (const std::string& name : names) {
    const size_t dash = name.find('-');
    if (dash != 20 || !name.ends_with(".state")) {
      if (name.ends_with(".tmp")) (void)storage::remove_file(storage::join_path(states_dir_, name));
      continue;
    }
    const std::optional<std::string> digest =
        unhex(std::string_view(name).substr(21, name.size() - 21 - 6));
    if (!digest) continue;
    retained_[std::strtoull(name.substr(0, 20).c_str(), nullptr, 10)] = *digest;
  }
}

std::vector<std::pair<uint64_t, std::string>> Node::retained_states() const {
  std::lock_guard lock(retained_mu_);
  return {retained_.begin(), retained_.end()};
}

std::string Node::image_digest(const std::string& image) const {
  const pbft::Digest d = pbft::hash(image);
  return std::string(d.begin(), d.end());
}

// apply() leaves everything it applied in RocksDB: a RocksDB snapshot taken now is the state at
// `index`. The image is written and digested off the raft thread, one state at a time.
void Node::retain_state(uint64_t index) {
  std::shared_ptr<const kv::Backend> view;
  {
    std::shared_lock lock(store_mu_);
    SYNOD_ASSERT(!buffered_->buffered() && store_->applied_index() == index);
    view = backend_->pin();
  }
  if (state_retain_.joinable()) state_retain_.join();
  state_retain_ = std::thread([this, index, view = std::move(view)]() mutable {
    const std::string image = kv::encode_image(*view);
    view.reset();
    const std::string digest = image_digest(image);
    bool created = false;
    const std::string path = storage::join_path(states_dir_, retained_file_name(index, digest));
    const std::string tmp = path + ".tmp";
    storage::FileHandle h;
    storage::WalStatus s = storage::make_dir(states_dir_, &created);
    if (s.ok() && created) s = storage::sync_dir(options_.data_dir + "/member");
    if (s.ok()) s = storage::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, &h);
    if (s.ok()) s = storage::write_all(h.get(), image.data(), image.size(), tmp);
    if (s.ok()) s = storage::sync_data(h.get(), tmp);
    h = storage::FileHandle();
    if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
      s = storage::errno_status("rename", tmp);
    }
    if (s.ok()) s = storage::sync_dir(states_dir_);
    if (!s.ok()) {
      // Not kept: this member claims nothing there, and others serve the state.
      spdlog::warn("state: keeping the state at applied index {} failed: {}", index, s.message());
      return;
    }
    std::vector<std::string> dropped;
    {
      std::lock_guard lock(retained_mu_);
      retained_[index] = digest;
      while (retained_.size() > kRetainedStates) {
        dropped.push_back(retained_file_name(retained_.begin()->first, retained_.begin()->second));
        retained_.erase(retained_.begin());
      }
    }
    for (const std::string& name : dropped) {
      (void)storage::remove_file(storage::join_path(states_dir_, name));
    }
    post(StateRetained{index, digest});
  });
}

std::optional<std::string> Node::retained_image(uint64_t min_index, uint64_t* applied_index) const {
  std::string name;
  {
    std::lock_guard lock(retained_mu_);
    auto it = retained_.lower_bound(min_index);
    if (it == retained_.end()) return std::nullopt;
    *applied_index = it->first;
    name = retained_file_name(it->first, it->second);
  }
  std::string image;
  // Removed meanwhile by a newer state: the asker tries again.
  if (!storage::read_whole_file(storage::join_path(states_dir_, name), &image).ok()) {
    return std::nullopt;
  }
  return image;
}

std::string Node::snapshot_image() {
  std::unique_lock lock(store_mu_);
  buffered_->sync();
  // A bbolt file in etcd's backend layout: etcdctl snapshot status/restore read it as etcd's.
  return storage::etcd_snapshot_image(*store_);
}

void Node::defragment() {
  std::unique_lock lock(store_mu_);
  buffered_->defragment();
}

uint64_t Node::backend_size_bytes() const {
  std::shared_lock lock(store_mu_);
  return backend_->approximate_size_bytes();
}

}  // namespace synod::server
