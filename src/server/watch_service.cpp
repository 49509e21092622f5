// etcdserverpb.Watch: bidirectional streams between watch clients and the node's watch hub.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <thread>

#include "server/bidi_stream.h"
#include "server/group_access.h"
#include "server/services.h"

namespace synod::server {

class WatchStream final
    : public BidiStream<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchStream(WatchService& service, uint64_t id, const grpc::CallbackServerContext& call)
      : service_(service), id_(id), call_(call) {}

 private:
  void on_request(etcdserverpb::WatchRequest& request) override {
    Node::WatchCaller caller;
    if (request.has_create_request()) caller = caller_of(service_.ctx_, call_);
    if (service_.ctx_.shards != nullptr) {
      service_.sharded_request(id_, request, caller);
      return;
    }
    service_.ctx_.node->watch(id_, request, std::move(caller));
  }
  void on_done() override {
    service_.forget(id_);
    service_.ctx_.node->watch_closed(id_);
    if (service_.ctx_.shards != nullptr) service_.closed_in_groups(id_);
  }
  const char* name() const override { return "watch"; }

  WatchService& service_;
  const uint64_t id_;
  const grpc::CallbackServerContext& call_;  // lives until the stream's OnDone
};

namespace {

// Hub streams serving other members' client streams (relays) are numbered from here, far above
// this member's own streams.
constexpr uint64_t kRelayStreamBase = uint64_t{1} << 62;

synodpb::GroupWatchOutput to_peer(const kv::WatchOutput& o, uint64_t stream) {
  synodpb::GroupWatchOutput out;
  out.set_stream(stream);
  out.set_fragment(o.fragment);
  *out.mutable_response() = o.response;
  out.set_mark_only(o.mark_only);
  out.set_synced_through(o.synced_through);
  out.set_all_synced_through(o.all_synced_through);
  out.set_all_unsynced(o.all_unsynced);
  out.set_start_revision(o.start_revision);
  return out;
}

kv::WatchOutput from_peer(synodpb::GroupWatchOutput&& o) {
  kv::WatchOutput out;
  out.stream = o.stream();
  out.fragment = o.fragment();
  out.response = std::move(*o.mutable_response());
  out.mark_only = o.mark_only();
  out.synced_through = o.synced_through();
  out.all_synced_through = o.all_synced_through();
  out.all_unsynced = o.all_unsynced();
  out.start_revision = o.start_revision();
  return out;
}

}  // namespace

// A data group this member does not replicate, watched through a member that does: one peer
// stream (GroupWatch) carrying every client stream's requests for the group, a thread writing
// them (send() only queues: it is called from gRPC reactions, which must not wait on the
// network) and a thread reading the group's outputs back into deliver_from_group. Broken (the
// member went away, the group moved): the client streams that used it end, and their clients
// watch again.
class WatchService::RemoteGroup {
 public:
  RemoteGroup(WatchService& service, uint32_t group, uint64_t member)
      : service_(service), group_(group), member_(member) {}
  ~RemoteGroup() { stop(); }

  bool connect(synodpb::Peer::Stub* stub) {
    rw_ = stub->GroupWatch(&call_);
    if (!rw_) return false;
    writer_ = std::thread([this] { write_loop(); });
    reader_ = std::thread([this] { read_loop(); });
    return true;
  }
  bool send(synodpb::GroupWatchRequest request) {
    std::lock_guard lock(mu_);
    if (broken_) return false;
    request.set_group(group_);
    if (request.stream() != 0 && !request.close()) streams_.insert(request.stream());
    outbox_.push_back(std::move(request));
    cv_.notify_all();
    return true;
  }
  bool broken() {
    std::lock_guard lock(mu_);
    return broken_;
  }
  // Ends the peer stream (a write or read waiting on it returns) and joins both threads.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    call_.TryCancel();
    if (writer_.joinable()) writer_.join();
    if (reader_.joinable()) reader_.join();
  }

 private:
  void write_loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || broken_ || !outbox_.empty(); });
      if (stopping_ || broken_) break;
      synodpb::GroupWatchRequest next = std::move(outbox_.front());
      outbox_.pop_front();
      lock.unlock();
      const bool written = rw_->Write(next);
      lock.lock();
      if (!written) {
        broken_ = true;
        outbox_.clear();
        call_.TryCancel();  // the reader ends the streams
        break;
      }
    }
    writer_done_ = true;
    cv_.notify_all();
  }
  void read_loop() {
    synodpb::GroupWatchOutput out;
    while (rw_->Read(&out)) {
      std::vector<kv::WatchOutput> one;
      one.push_back(from_peer(std::move(out)));
      service_.deliver_from_group(group_, std::move(one));
    }
    std::set<uint64_t> streams;
    {
      std::unique_lock lock(mu_);
      broken_ = true;
      outbox_.clear();
      streams.swap(streams_);
      cv_.notify_all();
      // The call is over, so a write in flight returns; Finish only once none is.
      cv_.wait(lock, [&] { return writer_done_; });
    }
    // A member that could not be reached, or went away, is avoided for a while by the next
    // connect (a stream this member ended reads as cancelled).
    const grpc::Status status = rw_->Finish();
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
        service_.ctx_.remote_groups != nullptr) {
      service_.ctx_.remote_groups->unreachable(member_);
    }
    service_.end_streams(streams,
                         "synod: the member serving a shard of this watch went away; "
                         "watch again");
  }

  WatchService& service_;
  const uint32_t group_;
  const uint64_t member_;  // the member serving the group
  grpc::ClientContext call_;
  std::unique_ptr<grpc::ClientReaderWriter<synodpb::GroupWatchRequest, synodpb::GroupWatchOutput>>
      rw_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<synodpb::GroupWatchRequest> outbox_;  // written in order by writer_
  bool broken_ = false;
  bool stopping_ = false;
  bool writer_done_ = false;
  std::set<uint64_t> streams_;  // client streams that sent requests through it
  std::thread writer_;          // last two: they start once the rest is set
  std::thread reader_;
};

WatchService::WatchService(ServerContext& ctx) : ctx_(ctx) {}

WatchService::~WatchService() {
  std::map<uint32_t, std::shared_ptr<RemoteGroup>> remote;
  {
    std::lock_guard lock(remote_mu_);
    remote.swap(remote_);
  }
  for (auto& [group, r] : remote) r->stop();
}

std::shared_ptr<WatchService::RemoteGroup> WatchService::remote_group(uint32_t group) {
  std::shared_ptr<RemoteGroup> stale;
  std::lock_guard lock(remote_mu_);
  auto it = remote_.find(group);
  if (it != remote_.end() && !it->second->broken()) return it->second;
  if (it != remote_.end()) {
    stale = std::move(it->second);  // its reader has finished or is finishing
    remote_.erase(it);
  }
  if (ctx_.remote_groups == nullptr) return nullptr;
  for (uint64_t member : replicas_elsewhere(ctx_, group)) {
    synodpb::Peer::Stub* stub = ctx_.remote_groups->stub(member);
    if (stub == nullptr) continue;
    auto r = std::make_shared<RemoteGroup>(*this, group, member);
    if (!r->connect(stub)) continue;
    remote_[group] = r;
    return r;
  }
  return nullptr;
}

void WatchService::to_group(uint32_t group, uint64_t stream,
                            const etcdserverpb::WatchRequest& request) {
  if (Node* node = ctx_.shards->node(group)) {
    node->watch(stream, request);
    return;
  }
  synodpb::GroupWatchRequest r;
  r.set_stream(stream);
  *r.mutable_request() = request;
  std::shared_ptr<RemoteGroup> remote = remote_group(group);
  if (remote == nullptr || !remote->send(std::move(r))) {
    end_streams({stream}, kv::errors::shard_unreachable().message);
  }
}

void WatchService::closed_in_groups(uint64_t stream) {
  for (auto& [group, node] : ctx_.shards->hosted()) node->watch_closed(stream);
  std::map<uint32_t, std::shared_ptr<RemoteGroup>> remote;
  {
    std::lock_guard lock(remote_mu_);
    remote = remote_;
  }
  synodpb::GroupWatchRequest close;
  close.set_stream(stream);
  close.set_close(true);
  for (auto& [group, r] : remote) r->send(close);
}

void WatchService::advance_group(uint32_t group) {
  if (Node* node = ctx_.shards->node(group)) {
    node->advance_revision();
    return;
  }
  std::shared_ptr<RemoteGroup> remote;
  {
    std::lock_guard lock(remote_mu_);
    auto it = remote_.find(group);
    if (it == remote_.end()) return;
    remote = it->second;
  }
  synodpb::GroupWatchRequest advance;
  advance.set_advance(true);
  remote->send(std::move(advance));
}

void WatchService::end_streams(const std::set<uint64_t>& ids, const std::string& why) {
  std::vector<std::shared_ptr<WatchStream>> ending;
  {
    std::lock_guard lock(mu_);
    for (uint64_t id : ids) {
      auto it = streams_.find(id);
      if (it != streams_.end()) ending.push_back(it->second);
    }
  }
  for (auto& s : ending) s->end(grpc::Status(grpc::StatusCode::UNAVAILABLE, why));
}

void WatchService::group_dropped(uint32_t group) {
  std::set<uint64_t> streams;
  {
    std::lock_guard lock(sharded_mu_);
    for (const auto& [key, w] : sharded_) streams.insert(key.first);
  }
  end_streams(streams, "synod: a shard of this watch moved off this member; watch again");
  std::vector<std::function<void()>> cancels;
  {
    std::lock_guard lock(relay_mu_);
    for (auto& [id, relay] : relays_) {
      if (relay.group == group) cancels.push_back(relay.cancel);
    }
  }
  for (auto& cancel : cancels) cancel();
}

uint64_t WatchService::open_relay(uint32_t group, RelaySink sink, std::function<void()> cancel) {
  std::lock_guard lock(relay_mu_);
  const uint64_t id = next_relay_++;
  relays_[id] = Relay{group, std::move(sink), std::move(cancel), {}};
  return id;
}

void WatchService::relay_request(uint64_t relay_id, const synodpb::GroupWatchRequest& request) {
  Node* node = nullptr;
  uint64_t hub_stream = 0;
  bool closing = false;
  {
    std::lock_guard lock(relay_mu_);
    auto it = relays_.find(relay_id);
    if (it == relays_.end()) return;
    Relay& relay = it->second;
    node = ctx_.shards->node(relay.group);
    if (node == nullptr) return;
    if (request.advance()) {
      hub_stream = 0;
    } else if (auto s = relay.streams.find(request.stream()); s != relay.streams.end()) {
      hub_stream = s->second;
      if (request.close()) {
        closing = true;
        relayed_.erase(hub_stream);
        relay.streams.erase(s);
      }
    } else if (request.close()) {
      return;
    } else {
      static std::atomic<uint64_t> next{kRelayStreamBase};
      hub_stream = next++;
      relay.streams.emplace(request.stream(), hub_stream);
      relayed_[hub_stream] = {relay_id, request.stream()};
    }
  }
  if (request.advance()) {
    node->advance_revision();
  } else if (closing) {
    node->watch_closed(hub_stream);
  } else {
    node->watch(hub_stream, request.request());
  }
}

void WatchService::close_relay(uint64_t relay_id) {
  Relay relay;
  {
    std::lock_guard lock(relay_mu_);
    auto it = relays_.find(relay_id);
    if (it == relays_.end()) return;
    relay = std::move(it->second);
    relays_.erase(it);
    for (auto& [stream, hub_stream] : relay.streams) relayed_.erase(hub_stream);
  }
  Node* node = ctx_.shards->node(relay.group);
  if (node == nullptr) return;
  for (auto& [stream, hub_stream] : relay.streams) node->watch_closed(hub_stream);
}

void WatchService::route_relayed(uint32_t group, std::vector<kv::WatchOutput>& out) {
  std::lock_guard lock(relay_mu_);
  if (relays_.empty()) return;
  std::vector<kv::WatchOutput> mine;
  for (kv::WatchOutput& o : out) {
    if (o.stream >= kRelayStreamBase) {
      auto it = relayed_.find(o.stream);
      if (it == relayed_.end()) continue;  // its asker closed it
      auto relay = relays_.find(it->second.first);
      if (relay != relays_.end()) relay->second.sink(to_peer(o, it->second.second));
      continue;
    }
    if (o.stream == 0 && o.mark_only) {
      for (auto& [id, relay] : relays_) {
        if (relay.group == group) relay.sink(to_peer(o, 0));
      }
    }
    mine.push_back(std::move(o));
  }
  out.swap(mine);
}

grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>*
WatchService::Watch(grpc::CallbackServerContext* c) {
  std::shared_ptr<WatchStream> stream;
  {
    std::lock_guard lock(mu_);
    const uint64_t id = next_id_++;
    stream = std::make_shared<WatchStream>(*this, id, *c);
    streams_.emplace(id, stream);
    ctx_.node->metrics().watch_streams.fetch_add(1, std::memory_order_relaxed);
  }
  stream->start(stream);
  return stream.get();
}

void WatchService::forget(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    if (streams_.erase(id) > 0)
      ctx_.node->metrics().watch_streams.fetch_sub(1, std::memory_order_relaxed);
  }
  std::lock_guard lock(sharded_mu_);
  std::erase_if(sharded_, [id](const auto& entry) { return entry.first.first == id; });
}

// A sharded member: every request of a stream goes to every data group, in the stream's order,
// so that each group's hub assigns the same watch IDs; their answers are merged by
// deliver_from_group.
void WatchService::sharded_request(uint64_t stream, const etcdserverpb::WatchRequest& request,
                                   const Node::WatchCaller& caller) {
  if (request.has_create_request() && caller) {
    // Permissions live in the member's own group (and authentication stays off when sharded).
    const etcdserverpb::WatchCreateRequest& create = request.create_request();
    std::optional<Error> denied =
        !*caller
            ? std::optional<Error>(caller->error())
            : ctx_.node->read_store([&](const kv::Store& s) {
                const std::string key = create.key().empty() ? std::string(1, '\0') : create.key();
                return check_read(s.auth(), **caller, key, create.range_end());
              });
    if (denied) {
      std::vector<kv::WatchOutput> out(1);
      out[0].stream = stream;
      out[0].response.set_watch_id(kv::WatchHub::kInvalidWatchId);
      out[0].response.set_created(true);
      out[0].response.set_canceled(true);
      out[0].response.set_cancel_reason(grpc_error_text(*denied));
      deliver(std::move(out));
      return;
    }
  }
  for (uint32_t g = 1; g <= ctx_.shards->count(); ++g) to_group(g, stream, request);
}

int64_t WatchService::safe_revision(const ShardedWatch& w) const {
  int64_t safe = std::numeric_limits<int64_t>::max();
  for (size_t g = 0; g < w.through.size(); ++g) {
    const int64_t through = w.synced[g] ? std::max(w.through[g], group_through_[g]) : w.through[g];
    safe = std::min(safe, through);
  }
  return safe;
}

void WatchService::release(const ShardedKey& key, ShardedWatch& w,
                           std::vector<kv::WatchOutput>& pass, std::set<uint32_t>& bumps) {
  if (!w.open || w.canceled || w.pending.empty()) return;
  const int64_t safe = safe_revision(w);
  kv::WatchOutput o;
  o.stream = key.first;
  o.fragment = w.fragment;
  o.response.set_watch_id(key.second);
  o.response.mutable_header()->set_revision(safe);
  while (!w.pending.empty() && w.pending.begin()->first <= safe) {
    if (w.pending.begin()->first >= w.start) {
      *o.response.add_events() = std::move(w.pending.begin()->second.event);
    }
    w.pending.erase(w.pending.begin());
  }
  if (o.response.events_size() > 0) pass.push_back(std::move(o));
  if (w.pending.empty()) return;
  const int64_t first = w.pending.begin()->first;
  for (size_t g = 0; g < w.through.size(); ++g) {
    const int64_t through = w.synced[g] ? std::max(w.through[g], group_through_[g]) : w.through[g];
    if (through >= first || !w.synced[g] || bump_asked_[g]) continue;
    bump_asked_[g] = 1;
    bumps.insert(static_cast<uint32_t>(g + 1));
  }
}

void WatchService::deliver_from_group(uint32_t group, std::vector<kv::WatchOutput>&& out) {
  route_relayed(group, out);
  if (out.empty()) return;
  const size_t groups = ctx_.shards->count();
  const size_t gi = group - 1;
  std::vector<kv::WatchOutput> pass;
  std::vector<ShardedKey> cancel_elsewhere;
  std::set<ShardedKey> touched;
  std::set<uint32_t> bumps;
  // Held across the delivery, so that answers merged here reach each stream in this order
  // (not across the requests to groups after it: those may wait on the network).
  std::unique_lock lock(sharded_mu_);
  if (group_through_.size() != groups) {
    group_through_.assign(groups, -1);
    bump_asked_.assign(groups, 0);
  }
  for (kv::WatchOutput& o : out) {
    etcdserverpb::WatchResponse& r = o.response;
    if (o.mark_only && o.stream == 0) {  // for every watch of the group
      for (auto& [key, w] : sharded_) {
        if (o.all_unsynced && w.synced[gi]) {
          // The group's store was replaced: its synced watchers output again every event past
          // its last mark (a cross-shard part may have landed below later writes), so what it
          // sent past the mark is dropped here rather than passed on twice.
          const int64_t mark = group_through_[gi];
          std::erase_if(w.pending,
                        [&](const auto& p) { return p.second.group == gi && p.first > mark; });
          w.through[gi] = std::min(w.through[gi], mark);
          w.synced[gi] = 0;
        }
        if (!w.pending.empty()) touched.insert(key);
      }
      if (o.all_synced_through >= 0) {
        group_through_[gi] = std::max(group_through_[gi], o.all_synced_through);
        bump_asked_[gi] = 0;
      }
      continue;
    }
    if (r.watch_id() == kv::WatchHub::kInvalidWatchId) {
      // A refused create or a progress answer: every group gives the same; the first passes.
      if (group == 1 && !o.mark_only) {
        if (!r.created()) {
          // Progress: no further than every watch of the stream has passed events on.
          int64_t through = r.header().revision();
          for (auto it = sharded_.lower_bound({o.stream, std::numeric_limits<int64_t>::min()});
               it != sharded_.end() && it->first.first == o.stream; ++it) {
            if (it->second.open && !it->second.canceled) {
              through = std::min(through, std::max<int64_t>(0, safe_revision(it->second)));
            }
          }
          r.mutable_header()->set_revision(through);
        }
        pass.push_back(std::move(o));
      }
      continue;
    }
    const ShardedKey key{o.stream, r.watch_id()};
    auto found = sharded_.find(key);
    if (found == sharded_.end() && !r.created()) continue;  // its watch was forgotten
    if (found == sharded_.end()) {
      found = sharded_.emplace(key, ShardedWatch()).first;
      found->second.through.assign(groups, -1);
      found->second.synced.assign(groups, 0);
    }
    ShardedWatch& w = found->second;
    if (o.synced_through >= 0) {
      w.synced[gi] = 1;
      w.through[gi] = std::max(w.through[gi], o.synced_through);
      touched.insert(key);
    }
    if (o.mark_only) continue;
    if (r.created()) {
      w.fragment = o.fragment;
      w.revision = std::max(w.revision, r.header().revision());
      w.start = std::max(w.start, o.start_revision);
      if (++w.created < groups) continue;
      w.open = true;
      r.mutable_header()->set_revision(w.revision);
      pass.push_back(std::move(o));
      for (kv::WatchOutput& held : w.before_open) pass.push_back(std::move(held));
      w.before_open.clear();
      if (w.cancels >= groups) sharded_.erase(key);
      continue;
    }
    if (r.canceled()) {
      if (!w.canceled) {
        // A client's cancel, or a group's compaction: the first passes (after the created
        // answer), and the watch ends in the other groups too.
        w.canceled = true;
        w.pending.clear();
        if (w.open) {
          pass.push_back(std::move(o));
        } else {
          w.before_open.push_back(std::move(o));
        }
        cancel_elsewhere.push_back(key);
      }
      if (++w.cancels >= groups && w.open) sharded_.erase(key);
      continue;
    }
    if (w.canceled) continue;
    if (r.events_size() == 0) {
      // A progress notification: one per watch, from the first group, no further than the
      // events passed on.
      if (group == 1 && w.open) {
        r.mutable_header()->set_revision(safe_revision(w));
        pass.push_back(std::move(o));
      }
      continue;
    }
    for (mvccpb::Event& e : *r.mutable_events()) {
      const int64_t revision = e.kv().mod_revision();
      // A catching-up watcher's events come from final history, in order; a synced one's as
      // they apply, where a cross-shard transaction's part can come below later writes: only
      // the group's marks say how far it is.
      if (!w.synced[gi]) w.through[gi] = std::max(w.through[gi], revision);
      w.pending.emplace(revision, ShardedWatch::Pending{gi, std::move(e)});
    }
    touched.insert(key);
  }
  for (const ShardedKey& key : touched) {
    auto it = sharded_.find(key);
    if (it != sharded_.end()) release(key, it->second, pass, bumps);
  }
  if (!pass.empty()) deliver(std::move(pass));
  lock.unlock();
  for (uint32_t g : bumps) advance_group(g);
  for (const auto& [stream, id] : cancel_elsewhere) {
    etcdserverpb::WatchRequest cancel;
    cancel.mutable_cancel_request()->set_watch_id(id);
    for (uint32_t g = 1; g <= groups; ++g) {
      if (g != group) to_group(g, stream, cancel);
    }
  }
}

uint64_t WatchService::open_internal(InternalSink sink) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  internal_.emplace(id, std::make_shared<InternalSink>(std::move(sink)));
  return id;
}

void WatchService::close_internal(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    if (internal_.erase(id) == 0) return;
  }
  ctx_.node->watch_closed(id);
}

void WatchService::close_all() {
  std::map<uint64_t, std::shared_ptr<WatchStream>> streams;
  {
    std::lock_guard lock(mu_);
    streams = streams_;
  }
  for (auto& [id, s] : streams)
    s->end(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
  // The peer streams to other members go too: their members close the relays.
  std::map<uint32_t, std::shared_ptr<RemoteGroup>> remote;
  {
    std::lock_guard lock(remote_mu_);
    remote.swap(remote_);
  }
  for (auto& [group, r] : remote) r->stop();
}

namespace {

// etcd's sendFragments: a response over the request limit, with more than one event, is split
// into pieces that fit; every piece but the last has fragment set.
std::vector<etcdserverpb::WatchResponse> fragments(etcdserverpb::WatchResponse&& whole,
                                                   size_t limit) {
  std::vector<etcdserverpb::WatchResponse> out;
  if (whole.ByteSizeLong() < limit || whole.events_size() < 2) {
    out.push_back(std::move(whole));
    return out;
  }
  etcdserverpb::WatchResponse piece;
  auto start_piece = [&] {
    piece.Clear();
    *piece.mutable_header() = whole.header();
    piece.set_watch_id(whole.watch_id());
  };
  start_piece();
  for (mvccpb::Event& e : *whole.mutable_events()) {
    const size_t size = e.ByteSizeLong();
    if (piece.events_size() > 0 && piece.ByteSizeLong() + size >= limit) {
      piece.set_fragment(true);
      out.push_back(std::move(piece));
      start_piece();
    }
    *piece.add_events() = std::move(e);
  }
  out.push_back(std::move(piece));
  return out;
}

}  // namespace

void WatchService::deliver(std::vector<kv::WatchOutput>&& out) {
  // Group by stream, keeping each stream's order.
  std::map<uint64_t, std::vector<etcdserverpb::WatchResponse>> by_stream;
  const uint64_t term = ctx_.node->status().term.value;  // once per batch, not per event
  for (kv::WatchOutput& o : out) {
    ctx_.fill_header(o.response.mutable_header(), o.response.header().revision(), term);
    auto& dst = by_stream[o.stream];
    if (o.fragment) {
      for (auto& piece : fragments(std::move(o.response), ctx_.config.raw.max_request_bytes))
        dst.push_back(std::move(piece));
    } else {
      dst.push_back(std::move(o.response));
    }
  }
  for (auto& [id, responses] : by_stream) {
    std::shared_ptr<WatchStream> stream;
    std::shared_ptr<InternalSink> sink;
    {
      std::lock_guard lock(mu_);
      if (auto it = streams_.find(id); it != streams_.end()) {
        stream = it->second;
      } else if (auto in = internal_.find(id); in != internal_.end()) {
        sink = in->second;
      }
    }
    if (stream) stream->send(std::move(responses));
    if (sink) {
      for (auto& r : responses) (*sink)(std::move(r));
    }
  }
}

}  // namespace synod::server
