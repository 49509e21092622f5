#include "sim/node.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace synod::sim {

using raft::Index;

namespace {

// A Ready that writes nothing needs no fsync: a real driver skips it, and so do we, so that
// heartbeat answers are not held behind the disk.
bool writes_to_disk(const raft::Ready& rd) {
  return rd.snapshot || !rd.entries.empty() || rd.hard_state;
}

// Each input yields at most a handful of Readies (each advance() can only commit or release
// what the previous one made durable); far more means a feedback loop in the driver.
constexpr int kMaxReadiesPerInput = 1'000;

}  // namespace

Node::Node(raft::NodeId id, check::RaftInvariants& invariants)
    : id_(id), invariants_(invariants) {}

void Node::start(raft::Config config, uint64_t compact_every) {
  assert(!up());
  assert(config.id == id_);
  ++incarnation_;
  paused_ = false;
  compact_every_ = compact_every;
  kv_ = KvMachine();
  applied_ = Index(0);
  const raft::Persisted& durable = storage_.durable();
  if (durable.snapshot) {
    const bool restored = kv_.restore(durable.snapshot->data);
    assert(restored);
    (void)restored;
    applied_ = durable.snapshot->meta.index;
  }
  config.applied = applied_;
  raft_ = std::make_unique<raft::Raft>(config, durable);
}

void Node::crash() {
  assert(up());
  raft_.reset();
  storage_.crash();
  paused_ = false;
  inflight_.reset();
  reads_.clear();
  ready_.clear();
  writes_.clear();
}

void Node::tick(NodeOutput& out) {
  assert(up() && !paused_);
  raft_->tick();
  after_input(out);
}

void Node::receive(const raft::Message& m, NodeOutput& out) {
  assert(up() && !paused_);
  raft_->step(m);
  after_input(out);
}

void Node::client_request(const KvCommand& request, NodeOutput& out) {
  assert(up() && !paused_);
  if (request.op == KvOp::kGet) {
    // Contexts never repeat across restarts, so a read answer addressed to a previous
    // incarnation cannot be taken for a new read.
    const uint64_t context = (incarnation_ << 32) | ++next_read_context_;
    const raft::Status st = raft_->read_index(context);
    if (st == raft::Status::kOk || st == raft::Status::kForwarded) {
      reads_.emplace(context, request);
    } else {
      reply(request, ReplyStatus::kRejected, {}, out);
    }
  } else {
    const raft::ProposeResult r = raft_->propose(request.encode());
    if (r.status == raft::Status::kOk || r.status == raft::Status::kForwarded) {
      writes_.emplace(std::make_pair(request.client, request.seq), request);
    } else {
      reply(request, ReplyStatus::kRejected, {}, out);
    }
  }
  after_input(out);
}

void Node::after_input(NodeOutput& out) {
  invariants_.on_step(*raft_);
  take_ready(out);
}

void Node::take_ready(NodeOutput& out) {
  for (int i = 0; i < kMaxReadiesPerInput; ++i) {
    if (inflight_ || !raft_->has_ready()) return;
    raft::Ready rd = raft_->ready();
    invariants_.on_ready(*raft_, rd);
    out.messages.insert(out.messages.end(), rd.immediate_messages.begin(),
                        rd.immediate_messages.end());
    if (writes_to_disk(rd)) {
      storage_.stage(rd);
      inflight_ = std::move(rd);
      out.fsync_started = true;
      return;
    }
    apply(rd, out);
  }
  assert(false && "driver loop did not settle");
}

void Node::fsync_done(NodeOutput& out) {
  assert(up() && !paused_ && inflight_);
  storage_.sync();  // no-op if disk_synced() already ran
  raft::Ready rd = std::move(*inflight_);
  inflight_.reset();
  apply(rd, out);
  take_ready(out);
}

// Steps 2-4 of the Ready contract, once step 1 (persist) is done.
void Node::apply(const raft::Ready& rd, NodeOutput& out) {
  out.messages.insert(out.messages.end(), rd.messages.begin(), rd.messages.end());
  if (rd.snapshot) {
    const bool restored = kv_.restore(rd.snapshot->data);
    assert(restored);
    (void)restored;
    applied_ = rd.snapshot->meta.index;
    invariants_.on_snapshot_install(id_, rd.snapshot->meta);
  }
  for (const raft::Entry& e : rd.committed) {
    if (e.index <= applied_) continue;  // already in the restored image
    assert(e.index == applied_ + 1);
    invariants_.on_apply(id_, e);
    applied_ = e.index;
    apply_entry(e, out);
  }
  for (const raft::ReadState& rs : rd.read_states) {
    auto it = reads_.find(rs.context);
    if (it == reads_.end()) continue;  // a duplicate answer, or one for a crashed incarnation
    ready_.emplace_back(rs.index, it->second);
    reads_.erase(it);
  }
  serve_reads(out);
  raft_->advance();
  maybe_compact();
  invariants_.on_step(*raft_);
}

void Node::apply_entry(const raft::Entry& e, NodeOutput& out) {
  // Configuration changes and the leaders' no-ops change nothing in the key-value map.
  if (e.type != raft::EntryType::kNormal || e.data.empty()) return;
  const std::optional<KvCommand> cmd = KvCommand::decode(e.data);
  assert(cmd.has_value());
  if (!cmd) return;
  const std::optional<KvResult> result = kv_.apply(*cmd);
  auto it = writes_.find({cmd->client, cmd->seq});
  if (it == writes_.end()) return;
  // A duplicate (nullopt) means an earlier copy took effect while this node was not
  // waiting for it; the client learns nothing here and times out (indeterminate).
  if (result) reply(it->second, ReplyStatus::kOk, *result, out);
  writes_.erase(it);
}

void Node::serve_reads(NodeOutput& out) {
  // thesis 6.4 step 4: answer once the state machine has caught up with the read index.
  auto served = std::remove_if(ready_.begin(), ready_.end(), [&](const auto& read) {
    if (read.first > applied_) return false;
    reply(read.second, ReplyStatus::kOk, kv_.read(read.second.key), out);
    return true;
  });
  ready_.erase(served, ready_.end());
}

void Node::maybe_compact() {
  assert(!inflight_);
  if (compact_every_ == 0 || applied_ - raft_->log().snapshot().index < compact_every_) return;
  std::string image = kv_.serialize();
  std::optional<raft::SnapshotMeta> meta = raft_->compact(applied_, image);
  if (!meta) return;
  storage_.save_snapshot(raft::Snapshot{*meta, std::move(image)});
}

void Node::reply(const KvCommand& request, ReplyStatus status, KvResult result,
                 NodeOutput& out) {
  out.replies.push_back(
      ClientReply{request.client, request.seq, status, std::move(result), raft_->leader()});
}

}  // namespace synod::sim
