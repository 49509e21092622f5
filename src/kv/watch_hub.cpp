#include "kv/watch_hub.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "kv/keys.h"

namespace synod::kv {
namespace {

// etcd's texts (mvcc/watcher.go, etcdserver/api/v3rpc/rpctypes).
constexpr const char* kDuplicateId = "mvcc: duplicate watch ID provided on the WatchStream";
constexpr const char* kCompacted = "etcdserver: mvcc: required revision has been compacted";
// Work bound of one catch_up() call, in revisions scanned over all watchers, so catching up
// never holds the caller (the raft thread) for long.
constexpr int64_t kCatchUpBudgetRevisions = 20000;

absl::string_view view(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

bool is_create_event(const mvccpb::Event& e) {
  return e.type() == mvccpb::Event::PUT && e.kv().create_revision() == e.kv().mod_revision();
}

}  // namespace

WatchHub::WatchHub(int64_t max_revisions_per_response)
    : max_revisions_per_response_(max_revisions_per_response) {
  assert(max_revisions_per_response > 0);
}

WatchOutput WatchHub::response_for(const Watcher& w, int64_t header_revision) {
  WatchOutput o;
  o.stream = w.stream;
  o.fragment = w.fragment;
  o.response.mutable_header()->set_revision(header_revision);
  o.response.set_watch_id(w.id);
  return o;
}

void WatchHub::refuse(uint64_t stream, const std::string& reason, const Store& store,
                      std::vector<WatchOutput>* out) const {
  WatchOutput o;
  o.stream = stream;
  o.response.mutable_header()->set_revision(store.resolved_revision());
  o.response.set_watch_id(kInvalidWatchId);
  o.response.set_created(true);
  o.response.set_canceled(true);
  o.response.set_cancel_reason(reason);
  out->push_back(std::move(o));
}

void WatchHub::create(uint64_t stream, const etcdserverpb::WatchCreateRequest& req,
                      const Store& store, std::vector<WatchOutput>* out) {
  auto refuse = [&](const char* reason) { this->refuse(stream, reason, store, out); };
  if (req.start_revision() < 0) return refuse(kCompacted);
  int64_t id = req.watch_id();
  if (id != 0) {  // 0 is etcd's AutoWatchID
    if (watchers_.count({stream, id}) > 0) return refuse(kDuplicateId);
  } else {
    int64_t& next = next_auto_id_[stream];
    while (watchers_.count({stream, next}) > 0) ++next;
    id = next++;
  }
  Watcher w;
  w.stream = stream;
  w.id = id;
  w.key = req.key().empty() ? std::string(1, '\0') : req.key();
  w.range_end = req.range_end();
  w.next_revision = req.start_revision() == 0 ? store.revision() + 1 : req.start_revision();
  w.prev_kv = req.prev_kv();
  w.progress_notify = req.progress_notify();
  w.fragment = req.fragment();
  for (int f : req.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) w.no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) w.no_delete = true;
  }
  WatchOutput created = response_for(w, store.revision());
  created.response.set_created(true);
  created.start_revision = w.next_revision;
  if (marks_ && w.next_revision > store.revision()) {
    created.synced_through = store.resolved_revision();
  }
  out->push_back(std::move(created));
  const WatcherKey key{stream, id};
  Watcher& stored = watchers_.emplace(key, std::move(w)).first->second;
  set_synced(key, stored, stored.next_revision > store.revision());
}

void WatchHub::cancel(uint64_t stream, int64_t watch_id, const Store& store,
                      std::vector<WatchOutput>* out) {
  auto it = watchers_.find({stream, watch_id});
  if (it == watchers_.end()) return;
  WatchOutput o = response_for(it->second, store.revision());
  o.response.set_canceled(true);
  out->push_back(std::move(o));
  remove(it);
}

void WatchHub::progress(uint64_t stream, const Store& store, std::vector<WatchOutput>* out) {
  WatchOutput o;
  o.stream = stream;
  o.response.mutable_header()->set_revision(store.resolved_revision());
  o.response.set_watch_id(kInvalidWatchId);
  out->push_back(std::move(o));
}

void WatchHub::notify_progress(const Store& store, std::vector<WatchOutput>* out) {
  for (auto& [key, w] : watchers_) {
    if (!w.progress_notify) continue;
    if (w.synced && !w.sent_since_progress) out->push_back(response_for(w, store.revision()));
    w.sent_since_progress = false;
  }
}

void WatchHub::close_stream(uint64_t stream) {
  auto it = watchers_.lower_bound({stream, std::numeric_limits<int64_t>::min()});
  while (it != watchers_.end() && it->first.first == stream) {
    auto next = std::next(it);
    remove(it);
    it = next;
  }
  next_auto_id_.erase(stream);
}

void WatchHub::remove(Watchers::iterator it) {
  set_synced(it->first, it->second, false);
  unsynced_.erase(it->first);
  watchers_.erase(it);
}

void WatchHub::set_synced(const WatcherKey& key, Watcher& w, bool synced) {
  if (w.synced) {
    if (w.range_end.empty()) {
      auto k = synced_keys_.find(view(w.key));
      if (k != synced_keys_.end()) {
        k->second.erase(key);
        if (k->second.empty()) synced_keys_.erase(k);
      }
    } else {
      synced_ranges_.erase(key);
    }
  } else {
    unsynced_.erase(key);
  }
  w.synced = synced;
  if (synced) {
    if (w.range_end.empty()) {
      synced_keys_[w.key].insert(key);
    } else {
      synced_ranges_.insert(key);
    }
  } else {
    unsynced_.insert(key);
  }
}

bool WatchHub::wants(const Watcher& w, const mvccpb::Event& e) {
  if (e.kv().mod_revision() < w.next_revision) return false;
  if (e.type() == mvccpb::Event::PUT ? w.no_put : w.no_delete) return false;
  if (w.range_end.empty()) return e.kv().key() == w.key;
  return keys::in_range(e.kv().key(), w.key, w.range_end);
}

void WatchHub::deliver(const Watcher& w, std::vector<mvccpb::Event> events, int64_t header_revision,
                       const Store& store, std::vector<WatchOutput>* out) const {
  WatchOutput o = response_for(w, header_revision);
  for (mvccpb::Event& e : events) {
    if (w.prev_kv && !is_create_event(e)) {
      // etcd: the key as of the revision before the event's, unless that is compacted.
      etcdserverpb::RangeRequest before;
      before.set_key(e.kv().key());
      before.set_revision(e.kv().mod_revision() - 1);
      auto r = store.range(before);
      if (r && r->kvs_size() > 0) *e.mutable_prev_kv() = r->kvs(0);
    }
    *o.response.add_events() = std::move(e);
  }
  out->push_back(std::move(o));
}

void WatchHub::on_write(int64_t revision, const std::vector<mvccpb::Event>& events,
                        const Store& store, std::vector<WatchOutput>* out) {
  // A cross-shard transaction's part may write below the store's revision, which then stays.
  assert(revision >= last_revision_);
  last_revision_ = revision;
  if (events.empty()) return;
  std::map<WatcherKey, std::vector<mvccpb::Event>> owed;
  auto offer = [&](const WatcherKey& key, const mvccpb::Event& e) {
    const Watcher& w = watchers_.at(key);
    if (wants(w, e)) owed[key].push_back(e);
  };
  for (const mvccpb::Event& e : events) {
    auto k = synced_keys_.find(view(e.kv().key()));
    if (k != synced_keys_.end()) {
      for (const WatcherKey& key : k->second) offer(key, e);
    }
    for (const WatcherKey& key : synced_ranges_) offer(key, e);
  }
  for (auto& [key, evs] : owed) {
    Watcher& w = watchers_.at(key);
    w.sent_since_progress = true;
    deliver(w, std::move(evs), revision, store, out);
  }
}

void WatchHub::mark_through(const Store& store, std::vector<WatchOutput>* out) {
  if (!marks_ || watchers_.empty() || store.resolved_revision() == marked_through_) return;
  marked_through_ = store.resolved_revision();
  WatchOutput mark;
  mark.mark_only = true;
  mark.all_synced_through = marked_through_;
  out->push_back(std::move(mark));
}

void WatchHub::on_restore(std::vector<WatchOutput>* out) {
  if (marks_ && !watchers_.empty()) {
    WatchOutput mark;
    mark.mark_only = true;
    mark.all_unsynced = true;
    out->push_back(std::move(mark));
  }
  std::vector<WatcherKey> synced;
  for (auto& [key, w] : watchers_) {
    if (w.synced) synced.push_back(key);
  }
  // With marks, from past the last mark: a cross-shard transaction's part can have come below
  // later writes, so the new store may hold events below last_revision_ these watchers lack
  // (the merging member drops what it already had past the mark).
  const int64_t seen_through = marks_ ? marked_through_ : last_revision_;
  for (const WatcherKey& key : synced) {
    Watcher& w = watchers_.at(key);
    w.next_revision = std::max(w.next_revision, seen_through + 1);
    set_synced(key, w, false);
  }
}

bool WatchHub::catch_up_ready(const Store& store) const {
  const int64_t compacted = store.compact_revision();
  for (const WatcherKey& key : unsynced_) {
    auto it = watchers_.find(key);
    if (it == watchers_.end()) continue;
    const int64_t next = it->second.next_revision;
    if (next <= store.resolved_revision() || next > store.revision() ||
        (compacted > 0 && next <= compacted)) {
      return true;
    }
  }
  return false;
}

void WatchHub::catch_up(const Store& store, std::vector<WatchOutput>* out) {
  const int64_t current = store.revision();
  const int64_t final_through = store.resolved_revision();  // no event can still come below
  const int64_t compacted = store.compact_revision();
  last_revision_ = std::max(last_revision_, current);
  int64_t budget = kCatchUpBudgetRevisions;
  const std::vector<WatcherKey> pending(unsynced_.begin(), unsynced_.end());
  for (const WatcherKey& key : pending) {
    if (budget <= 0) break;
    auto it = watchers_.find(key);
    if (it == watchers_.end()) continue;
    Watcher& w = it->second;
    if (compacted > 0 && w.next_revision <= compacted) {
      // etcd 3.4 builds this response from the watcher's compaction notice, which carries no
      // revision: the header's revision stays 0 (cluster, member and term are filled in).
      WatchOutput o = response_for(w, 0);
      o.response.set_compact_revision(compacted);
      o.response.set_canceled(true);
      out->push_back(std::move(o));
      remove(it);
      continue;
    }
    if (w.next_revision <= final_through) {
      const int64_t to = std::min(final_through, w.next_revision + max_revisions_per_response_ - 1);
      std::vector<mvccpb::Event> events;
      store.for_each_event(w.next_revision, to, [&](const mvccpb::Event& e) {
        if (wants(w, e)) events.push_back(e);
        return true;
      });
      budget -= to - w.next_revision + 1;
      if (!events.empty()) {
        w.sent_since_progress = true;
        deliver(w, std::move(events), current, store, out);
      }
      w.next_revision = to + 1;
    }
    if (w.next_revision > current) {
      set_synced(key, w, true);
      if (marks_) {
        WatchOutput mark = response_for(w, current);
        mark.mark_only = true;
        mark.synced_through = final_through;
        out->push_back(std::move(mark));
      }
    }
  }
}

}  // namespace synod::kv
