#include "server/cluster_cut.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "server/awaited.h"
#include "server/context.h"
#include "server/group_access.h"
#include "server/node.h"
#include "server/shards.h"
#include "server/timestamp_oracle.h"

namespace synod::server {
namespace {

constexpr auto kStepWait = std::chrono::seconds(10);
constexpr int kTries = 3;
// A replica applies the marker a little after the group's leader answered for it.
constexpr auto kRecordWait = std::chrono::seconds(10);
constexpr auto kPoll = std::chrono::milliseconds(20);

kv::Unexpected<kv::Error> failed(const std::string& why) {
  return kv::Unexpected{kv::errors::cut_failed(why)};
}

// Proposes the marker of `epoch` to `group` and waits for it to apply.
std::optional<std::string> mark(ServerContext& ctx, uint32_t group, uint64_t epoch) {
  std::string last = "no answer";
  for (int attempt = 0; attempt < kTries; ++attempt) {
    synodpb::Request r;
    r.set_cut_marker(epoch);
    r.set_cut_epoch(epoch);
    auto answer = std::make_shared<Awaited<kv::ApplyResult>>();
    auto done = [answer](const kv::ApplyResult& result) { answer->set(result); };
    if (group == 0) {
      propose_hosted(*ctx.node, std::move(r), done);
    } else {
      propose_to_group(ctx, group, std::move(r), done);
    }
    std::optional<kv::ApplyResult> result =
        answer->wait(std::chrono::duration_cast<std::chrono::milliseconds>(kStepWait));
    if (!result) continue;
    if (const kv::Error* e = result->error()) {
      last = e->message;
      continue;
    }
    if (result->cut_epoch != epoch) return "a newer cut began meanwhile";
    return std::nullopt;
  }
  return "group " + std::to_string(group) + ": " + last;
}

// The recorded state of `group` at `epoch` from a replica: this member's, else another's.
std::optional<kv::CutRecord> gather(ServerContext& ctx, uint32_t group, uint64_t epoch) {
  const auto deadline = std::chrono::steady_clock::now() + kRecordWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Node* node = ctx.group_node(group)) {
      if (std::optional<kv::CutRecord> c = node->cut(epoch)) return c;
    }
    std::vector<uint64_t> replicas;
    if (group == 0) {
      for (raft::NodeId id : ctx.node->status().conf.voters) replicas.push_back(id.value);
    } else {
      replicas = ctx.shards->replicas(group);
    }
    for (uint64_t member : replicas) {
      if (member == ctx.self_id || ctx.remote_groups == nullptr) continue;
      synodpb::Peer::Stub* stub = ctx.remote_groups->stub(member);
      if (stub == nullptr) continue;
      grpc::ClientContext call;
      call.set_deadline(std::chrono::system_clock::now() + kStepWait);
      synodpb::GroupCutRequest req;
      req.set_group(group);
      req.set_epoch(epoch);
      std::unique_ptr<grpc::ClientReader<synodpb::GroupCutChunk>> reader =
          stub->GroupCut(&call, req);
      synodpb::GroupCutChunk chunk;
      kv::CutRecord record;
      record.epoch = epoch;
      bool first = true;
      while (reader->Read(&chunk)) {
        if (first) record.revision = chunk.revision();
        first = false;
        record.image += chunk.data();
      }
      if (reader->Finish().ok() && !first) return record;
    }
    std::this_thread::sleep_for(kPoll);
  }
  return std::nullopt;
}

}  // namespace

kv::Expected<ClusterCutTaken, kv::Error> take_cluster_cut(ServerContext& ctx) {
  if (ctx.shards == nullptr || ctx.oracle == nullptr) {
    return kv::Unexpected{kv::Error{kv::kGrpcFailedPrecondition,
                                    "synod: a cluster snapshot needs a sharded cluster; use "
                                    "etcdctl snapshot save on an unsharded one"}};
  }
  auto stamp = std::make_shared<Awaited<std::optional<int64_t>>>();
  ctx.oracle->allocate(1, [stamp](std::optional<int64_t> first) { stamp->set(first); });
  std::optional<std::optional<int64_t>> drawn =
      stamp->wait(std::chrono::duration_cast<std::chrono::milliseconds>(kStepWait));
  if (!drawn || !*drawn || **drawn <= 0) return failed("no timestamp from the oracle");
  ClusterCutTaken out;
  out.epoch = static_cast<uint64_t>(**drawn);
  const uint32_t groups = ctx.shards->count();
  // Every marker at once: the cut is consistent whatever order they apply in.
  std::vector<std::thread> markers;
  std::vector<std::optional<std::string>> errors(groups + 1);
  for (uint32_t g = 0; g <= groups; ++g) {
    markers.emplace_back(
        [&ctx, &errors, g, epoch = out.epoch] { errors[g] = mark(ctx, g, epoch); });
  }
  for (std::thread& t : markers) t.join();
  for (const std::optional<std::string>& e : errors) {
    if (e) return failed(*e);
  }
  for (uint32_t g = 0; g <= groups; ++g) {
    std::optional<kv::CutRecord> record = gather(ctx, g, out.epoch);
    if (!record) {
      return failed("no replica of group " + std::to_string(g) + " holds its recorded state");
    }
    out.groups.push_back(GroupCutImage{g, record->revision, std::move(record->image)});
  }
  spdlog::info("cluster snapshot: cut {} recorded in {} groups", out.epoch, out.groups.size());
  return out;
}

}  // namespace synod::server
