// A member's durable state: recovery from the WAL and the store at start, and the store's
// images and maintenance (snapshots for clients, defragmentation).
#include <spdlog/spdlog.h>

#include <random>

#include "replica/state_ref.h"
#include "server/node.h"

#include <limits>
#include "storage/etcd_snapshot.h"
#include "storage/rocks_backend.h"
#include "storage/wal.h"

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
  replica::recover_commit(options_.engine, persisted, store_->applied_index());

  raft::EngineConfig cfg;
  cfg.id = options_.id;
  cfg.seed = std::random_device{}();
  cfg.initial_conf = options_.initial_conf;
  cfg.applied = raft::Index(store_->applied_index());
  cfg.election_ticks = options_.election_ticks;
  cfg.heartbeat_ticks = 1;
  raft_ = replica::make_engine(options_.engine, cfg, persisted, {}, options_.pbft);
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
}

std::string Node::state_image(uint64_t* applied_index) const {
  std::shared_lock lock(store_mu_);
  *applied_index = store_->applied_index();
  return store_->image();
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
