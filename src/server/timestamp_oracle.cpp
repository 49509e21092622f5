#include "server/timestamp_oracle.h"

#include <spdlog/spdlog.h>

#include <limits>

#include "base/assert.h"
#include "server/apply_result.h"

namespace synod::server {

namespace {

// The durable limit as the metadata group's store holds it (0: none yet).
int64_t durable_limit(const kv::Store& store) {
  etcdserverpb::RangeRequest req;
  req.set_key(TimestampOracle::kLimitKey);
  auto r = store.range(req);
  if (!r || r->kvs_size() == 0) return 0;
  try {
    return std::stoll(r->kvs(0).value());
  } catch (...) {
    return 0;  // not written by the oracle: start above it from the next window
  }
}

}  // namespace

TimestampOracle::TimestampOracle(Node& metadata, uint64_t self,
                                 std::function<std::optional<std::string>(uint64_t)> peer_address,
                                 std::shared_ptr<grpc::ChannelCredentials> credentials)
    : node_(metadata),
      self_(self),
      peer_address_(std::move(peer_address)),
      credentials_(std::move(credentials)) {}

TimestampOracle::~TimestampOracle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return calls_ == 0 && !in_round_; });
}

void TimestampOracle::allocate(uint32_t count, NodeOptions::TimestampDone done) {
  SYNOD_ASSERT(count > 0);
  const NodeStatus s = node_.status();
  if (s.leader == raft::kNoNode) {
    done(std::nullopt);
    return;
  }
  if (s.leader.value == self_) {
    allocate_here(count, std::move(done));
    return;
  }
  ask_leader(s.leader.value, count, std::move(done));
}

void TimestampOracle::allocate_here(uint32_t count, NodeOptions::TimestampDone done) {
  std::lock_guard lock(mu_);
  if (count == 0 || waiting_.size() >= kMaxWaiting || node_.status().role != raft::Role::kLeader) {
    done(std::nullopt);
    return;
  }
  waiting_.push_back({count, std::move(done)});
  if (!in_round_) start_round();
}

void TimestampOracle::start_round() {
  in_round_ = true;
  node_.read_barrier([this](std::optional<Error> e) { confirmed(std::move(e)); });
}

// After the barrier: this member led the metadata group after every waiting request arrived,
// and its store has applied everything committed before (a predecessor's limit included).
void TimestampOracle::confirmed(std::optional<Error> barrier) {
  std::vector<Waiter> batch;
  int64_t first = 0;
  int64_t total = 0;
  {
    std::lock_guard lock(mu_);
    batch.swap(waiting_);
    const NodeStatus s = node_.status();
    if (barrier || s.role != raft::Role::kLeader) {
      term_ = 0;
      next_ = 0;
    } else {
      if (s.term.value != term_) {
        term_ = s.term.value;
        next_ = 0;
      }
      if (next_ == 0) {
        limit_ = node_.read_store(durable_limit);
        // Above 1, the revision every store starts at: a stamp at or below a store's revision
        // would be taken as its revision + 1, which another shard may also write at.
        next_ = std::max<int64_t>(limit_, 2);
      }
      for (const Waiter& w : batch) total += w.count;
      first = next_;
    }
  }
  if (first == 0) {
    fail(std::move(batch));
    return;
  }
  if (first + total <= limit_) {
    hand_out(std::move(batch));
    return;
  }
  // Past the durable limit: raise it first (a Put in the metadata group), then hand out.
  const int64_t new_limit = first + total + kWindow;
  synodpb::Request r;
  r.set_internal(true);  // written under authentication too
  r.mutable_put()->set_key(kLimitKey);
  r.mutable_put()->set_value(std::to_string(new_limit));
  auto shared = std::make_shared<std::vector<Waiter>>(std::move(batch));
  node_.propose(std::move(r), [this, shared, new_limit, term = term_](const kv::ApplyResult& res) {
    bool ok = res.ok();
    {
      std::lock_guard lock(mu_);
      ok = ok && term_ == term;
      if (ok) limit_ = std::max(limit_, new_limit);
    }
    if (ok) {
      hand_out(std::move(*shared));
    } else {
      fail(std::move(*shared));
    }
  });
}

void TimestampOracle::hand_out(std::vector<Waiter> batch) {
  std::vector<std::pair<int64_t, NodeOptions::TimestampDone>> answers;
  {
    std::lock_guard lock(mu_);
    int64_t total = 0;
    for (const Waiter& w : batch) total += w.count;
    int64_t at = next_;
    if (at + total > limit_ || next_ == 0) {
      at = 0;  // the leadership changed meanwhile
    } else {
      next_ += total;
    }
    if (at != 0) {
      for (Waiter& w : batch) {
        answers.emplace_back(at, std::move(w.done));
        at += w.count;
      }
    } else {
      for (Waiter& w : batch) answers.emplace_back(0, std::move(w.done));
    }
  }
  for (auto& [first, done] : answers)
    done(first != 0 ? std::optional<int64_t>(first) : std::nullopt);
  std::lock_guard lock(mu_);
  in_round_ = false;
  if (!waiting_.empty()) start_round();
  idle_.notify_all();
}

void TimestampOracle::fail(std::vector<Waiter> batch) {
  for (Waiter& w : batch) w.done(std::nullopt);
  std::lock_guard lock(mu_);
  in_round_ = false;
  if (!waiting_.empty()) start_round();
  idle_.notify_all();
}

void TimestampOracle::ask_leader(uint64_t leader, uint32_t count, NodeOptions::TimestampDone done) {
  // One call in flight per member: the groups' requests that arrive meanwhile go together in
  // the next one (each still gets timestamps above every one handed out before it arrived:
  // the next call leaves after it).
  {
    std::lock_guard lock(mu_);
    asking_.push_back({count, std::move(done)});
    if (asking_in_flight_) return;
    asking_in_flight_ = true;
  }
  send_asks(leader);
}

void TimestampOracle::send_asks(uint64_t leader) {
  struct Call {
    grpc::ClientContext context;
    synodpb::TimestampsRequest request;
    synodpb::TimestampsResponse response;
    std::vector<Waiter> batch;
  };
  auto call = std::make_shared<Call>();
  std::optional<std::string> address = peer_address_(leader);
  synodpb::Peer::Stub* stub = nullptr;
  {
    std::lock_guard lock(mu_);
    // A call carries at most 2^32 - 1 timestamps; the rest wait for the next.
    uint64_t total = 0;
    size_t taken = 0;
    while (taken < asking_.size() &&
           total + asking_[taken].count <= std::numeric_limits<uint32_t>::max()) {
      total += asking_[taken].count;
      ++taken;
    }
    call->batch.assign(std::make_move_iterator(asking_.begin()),
                       std::make_move_iterator(asking_.begin() + static_cast<ptrdiff_t>(taken)));
    asking_.erase(asking_.begin(), asking_.begin() + static_cast<ptrdiff_t>(taken));
    call->request.set_count(static_cast<uint32_t>(total));
    if (address) {
      auto& slot = stubs_[*address];
      if (!slot) slot = synodpb::Peer::NewStub(grpc::CreateChannel(*address, credentials_));
      stub = slot.get();
      ++calls_;
    }
  }
  if (stub == nullptr) {
    asked(std::move(call->batch), 0);
    return;
  }
  call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  stub->async()->Timestamps(
      &call->context, &call->request, &call->response, [this, call](grpc::Status status) {
        const int64_t first = status.ok() ? std::max<int64_t>(call->response.first(), 0) : 0;
        asked(std::move(call->batch), first);
        std::lock_guard lock(mu_);
        --calls_;
        idle_.notify_all();
      });
}

void TimestampOracle::asked(std::vector<Waiter> batch, int64_t first) {
  for (Waiter& w : batch) {
    w.done(first > 0 ? std::optional<int64_t>(first) : std::nullopt);
    if (first > 0) first += w.count;
  }
  {
    std::lock_guard lock(mu_);
    if (asking_.empty()) {
      asking_in_flight_ = false;
      return;
    }
  }
  // Requests arrived meanwhile: to the leader as known now.
  const NodeStatus s = node_.status();
  if (s.leader == raft::kNoNode || s.leader.value == self_) {
    std::vector<Waiter> rest;
    {
      std::lock_guard lock(mu_);
      rest.swap(asking_);
      asking_in_flight_ = false;
    }
    for (Waiter& w : rest) allocate(w.count, std::move(w.done));
    return;
  }
  send_asks(s.leader.value);
}

}  // namespace synod::server
