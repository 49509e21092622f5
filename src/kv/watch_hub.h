// kv::WatchHub: the watchers of one member and what they are owed, with etcd 3.4's watch
// semantics (etcdserver/api/v3rpc/watch.go, mvcc/watchable_store.go).
//
// A watcher watches a key or a range ([key, range_end), etcd's rules: empty range_end = the key
// alone, "\0" = every key >= key, empty key = "\0") from a start revision on. It is owed every
// event of a matching key at every revision >= its start, exactly once, in revision order, all
// events of one revision in one response. A watcher is either
//   - synced: it has seen everything up to the store's revision, and gets each new write's
//     events as the write is applied (on_write); or
//   - unsynced: it starts in the past (or the store jumped ahead under it, on a snapshot
//     restore), and catch_up() reads its events from the store's history, at most
//     max_revisions_per_response revisions per response, until it is synced.
// A watcher whose next revision falls at or below the compaction point is cancelled with a
// response carrying compact_revision and, as etcd's, header revision 0 (etcd cancels only below
// it; at the point itself Synod's revision log no longer lists the surviving versions, so it
// cancels there too).
//
// Outputs are WatchResponses addressed to a stream; the header carries the revision only (the
// server adds cluster, member and term, and keeps the revision as given, 0 included). Determinism:
// no threads, clocks or randomness; the caller serializes every call and passes the store the
// events came from.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "kv/store.h"

namespace synod::kv {

struct WatchOutput {
  uint64_t stream = 0;
  bool fragment = false;  // the watcher accepts fragmented responses (split by the server)
  etcdserverpb::WatchResponse response;

  // Marks (WatchHub::set_marks), for a member that merges several hubs' outputs in revision
  // order (a sharded cluster's data groups). They say how far a hub has output a watcher's
  // events; a mark alone is no answer to a client.
  bool mark_only = false;
  // >= 0: the watcher (stream, response.watch_id) is synced: every event of it up to this
  // revision has been output, and each later one is output as it applies.
  int64_t synced_through = -1;
  // >= 0 (stream 0): every synced watcher of the hub has had every event up to here.
  int64_t all_synced_through = -1;
  // Every watcher of the hub is catching up again (the store was replaced).
  bool all_unsynced = false;
  // A created answer: the first revision the watcher outputs events of.
  int64_t start_revision = 0;
};

class WatchHub {
 public:
  static constexpr int64_t kInvalidWatchId = -1;  // etcd's clientv3.InvalidWatchID

  explicit WatchHub(int64_t max_revisions_per_response = 1000);

  // A WatchCreateRequest on `stream`: answers created (watch_id, header at the store's
  // revision), or created+canceled with watch_id -1 and a reason (duplicate id, negative start
  // revision). Past events follow from catch_up().
  void create(uint64_t stream, const etcdserverpb::WatchCreateRequest& req, const Store& store,
              std::vector<WatchOutput>* out);
  // Cancels a watcher of the stream (answers canceled); an unknown id gets no answer, as etcd.
  // Answers a create on `stream` with created+canceled, watch_id -1 and `reason`.
  void refuse(uint64_t stream, const std::string& reason, const Store& store,
              std::vector<WatchOutput>* out) const;
  void cancel(uint64_t stream, int64_t watch_id, const Store& store, std::vector<WatchOutput>* out);
  // A WatchProgressRequest: one response with watch_id -1 and the store's revision.
  void progress(uint64_t stream, const Store& store, std::vector<WatchOutput>* out);
  // Periodic progress notification: each synced watcher that asked for progress_notify and got
  // no events since the last call gets an empty response at the store's revision.
  void notify_progress(const Store& store, std::vector<WatchOutput>* out);
  // The stream went away: its watchers are dropped silently.
  void close_stream(uint64_t stream);

  // The events of one applied write at `revision` (the store is at that revision now).
  void on_write(int64_t revision, const std::vector<mvccpb::Event>& events, const Store& store,
                std::vector<WatchOutput>* out);
  // The store was replaced (snapshot restore): every synced watcher becomes unsynced from the
  // revision after the last one it saw.
  void on_restore(std::vector<WatchOutput>* out);
  // Marks on (see WatchOutput): off by default.
  void set_marks(bool on) { marks_ = on; }
  // With marks on: a mark for every synced watcher at the store's resolved revision (the
  // history below it is final: Store::resolved_revision), if it moved on since the last one.
  void mark_through(const Store& store, std::vector<WatchOutput>* out);
  // Serves unsynced watchers from the history, up to max_revisions_per_response revisions each,
  // as far as the store's resolved revision; a watcher becomes synced once it has every event
  // up to the store's revision.
  void catch_up(const Store& store, std::vector<WatchOutput>* out);

  bool has_unsynced() const { return !unsynced_.empty(); }
  // An unsynced watcher that catch_up can move on now (not one waiting for a prepared
  // cross-shard transaction's part to resolve).
  bool catch_up_ready(const Store& store) const;
  bool empty() const { return watchers_.empty(); }
  size_t size() const { return watchers_.size(); }

 private:
  struct Watcher {
    uint64_t stream = 0;
    int64_t id = 0;
    std::string key;            // normalized: never empty
    std::string range_end;      // etcd's rules
    int64_t next_revision = 0;  // the first revision not yet delivered (or skipped)
    bool prev_kv = false;
    bool no_put = false;
    bool no_delete = false;
    bool progress_notify = false;
    bool fragment = false;
    bool sent_since_progress = false;
    bool synced = false;
  };
  using WatcherKey = std::pair<uint64_t, int64_t>;  // (stream, watch id)

  using Watchers = std::map<WatcherKey, Watcher>;

  bool marks_ = false;
  int64_t marked_through_ = -1;

  static bool wants(const Watcher& w, const mvccpb::Event& e);
  void set_synced(const WatcherKey& key, Watcher& w, bool synced);
  void deliver(const Watcher& w, std::vector<mvccpb::Event> events, int64_t header_revision,
               const Store& store, std::vector<WatchOutput>* out) const;
  static WatchOutput response_for(const Watcher& w, int64_t header_revision);
  void remove(Watchers::iterator it);

  int64_t max_revisions_per_response_;
  Watchers watchers_;
  std::map<uint64_t, int64_t> next_auto_id_;  // per stream
  // Synced watchers by what they watch: exact keys in a hash map, ranges in a set. Sets of
  // (stream, id), so iteration order never depends on addresses.
  absl::flat_hash_map<std::string, std::set<WatcherKey>> synced_keys_;
  std::set<WatcherKey> synced_ranges_;
  std::set<WatcherKey> unsynced_;
  int64_t last_revision_ = 0;  // the revision of the last write seen by on_write or catch_up
};

}  // namespace synod::kv
