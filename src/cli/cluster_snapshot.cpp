#include "cli/cluster_snapshot.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "synodpb/shards.grpc.pb.h"

namespace synod::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kManifest = "manifest.json";

std::string group_file(uint32_t group) {
  return "group-" + std::to_string(group) + ".img";
}

bool write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  return static_cast<bool>(out);
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json message_json(const kv::ChannelMessage& m) {
  return json{{"from", m.from},
              {"to", m.to},
              {"txn", m.txn},
              {"commit", m.commit},
              {"succeeded", m.succeeded}};
}

// The snapshot in `dir`: its manifest and the groups' states, loaded as a cut.
struct Loaded {
  json manifest;
  std::optional<kv::ClusterCut> cut;
};

std::optional<Loaded> load_dir(const std::string& dir) {
  std::optional<std::string> text = read_file(fs::path(dir) / kManifest);
  if (!text) {
    std::cerr << "Error: " << dir << " holds no " << kManifest
              << " (not a directory `synod ctl snapshot save --cluster` wrote)\n";
    return std::nullopt;
  }
  Loaded out;
  out.manifest = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (out.manifest.is_discarded() || !out.manifest.contains("groups")) {
    std::cerr << "Error: " << dir << "/" << kManifest << " is not a snapshot manifest\n";
    return std::nullopt;
  }
  std::map<uint32_t, std::string> images;
  for (const json& g : out.manifest["groups"]) {
    const uint32_t group = g.value("group", 0u);
    std::optional<std::string> image = read_file(fs::path(dir) / g.value("file", ""));
    if (!image || image->size() != g.value("bytes", uint64_t{0})) {
      std::cerr << "Error: group " << group << "'s state in " << dir
                << " is missing or not the size the manifest gives\n";
      return std::nullopt;
    }
    images[group] = std::move(*image);
  }
  kv::Expected<kv::ClusterCut, std::string> cut = kv::ClusterCut::load(images);
  if (!cut) {
    std::cerr << "Error: " << cut.error() << "\n";
    return std::nullopt;
  }
  out.cut.emplace(std::move(cut.value()));
  return out;
}

}  // namespace

int save_cluster_snapshot(const SnapshotFlags& f) {
  if (fs::exists(f.dir) && !fs::is_empty(f.dir)) {
    std::cerr << "Error: " << f.dir << " exists and is not empty\n";
    return 1;
  }
  grpc::Status last(grpc::StatusCode::UNAVAILABLE, "no endpoint given");
  for (const std::string& ep : f.endpoints) {
    auto channel = grpc::CreateChannel(ep, grpc::InsecureChannelCredentials());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(f.timeout_s));
    auto reader =
        synodpb::Shards::NewStub(channel)->Snapshot(&ctx, synodpb::ClusterSnapshotRequest());
    synodpb::ClusterSnapshotChunk chunk;
    std::map<uint32_t, std::string> images;
    std::map<uint32_t, std::pair<int64_t, uint64_t>> headers;  // revision, size
    uint64_t epoch = 0;
    uint32_t shards = 0;
    while (reader->Read(&chunk)) {
      if (chunk.epoch() != 0) {
        epoch = chunk.epoch();
        headers[chunk.group()] = {chunk.revision(), chunk.size()};
        if (chunk.group() == 0) shards = chunk.shards();
        images[chunk.group()];
      } else {
        images[chunk.group()] += chunk.data();
      }
    }
    last = reader->Finish();
    if (!last.ok()) {
      if (last.error_code() == grpc::StatusCode::UNAVAILABLE &&
          last.error_message().find("could not be taken") == std::string::npos) {
        continue;  // this endpoint is down: the next one
      }
      break;
    }
    kv::Expected<kv::ClusterCut, std::string> cut = kv::ClusterCut::load(images);
    if (!cut) {
      std::cerr << "Error: " << cut.error() << "\n";
      return 1;
    }
    std::error_code ec;
    fs::create_directories(f.dir, ec);
    json manifest{{"format", "synod cluster snapshot 1"},
                  {"epoch", epoch},
                  {"shards", shards},
                  {"taken_from", ep}};
    json groups = json::array();
    uint64_t bytes = 0;
    for (const auto& [group, image] : images) {
      if (image.size() != headers[group].second) {
        std::cerr << "Error: group " << group << "'s state came short\n";
        return 1;
      }
      if (!write_file(fs::path(f.dir) / group_file(group), image)) {
        std::cerr << "Error: cannot write " << (fs::path(f.dir) / group_file(group)) << "\n";
        return 1;
      }
      bytes += image.size();
      groups.push_back(json{{"group", group},
                            {"revision", headers[group].first},
                            {"bytes", image.size()},
                            {"file", group_file(group)}});
    }
    manifest["groups"] = groups;
    json channels = json::array();
    for (const kv::ChannelMessage& m : cut.value().channel_state())
      channels.push_back(message_json(m));
    manifest["channel_state"] = channels;
    manifest["undecided"] = cut.value().undecided();
    if (!write_file(fs::path(f.dir) / kManifest, manifest.dump(2) + "\n")) {
      std::cerr << "Error: cannot write the manifest in " << f.dir << "\n";
      return 1;
    }
    cut.value().settle();
    std::cout << "Snapshot " << epoch << " saved to " << f.dir << ": " << images.size()
              << " groups (" << shards << " shards and the metadata group), " << bytes << " bytes, "
              << cut.value().data_keys().size() << " keys, " << channels.size()
              << " messages in flight, " << cut.value().undecided() << " transactions undecided\n";
    return 0;
  }
  std::cerr << "Error: " << last.error_message() << "\n";
  return last.error_code() == grpc::StatusCode::UNAVAILABLE ? 3 : 1;
}

int cluster_snapshot_status(const SnapshotFlags& f) {
  std::optional<Loaded> l = load_dir(f.dir);
  if (!l) return 1;
  const size_t in_flight = l->cut->channel_state().size();
  const size_t undecided = l->cut->undecided();
  l->cut->settle(f.bugs);
  std::cout << "epoch " << l->manifest.value("epoch", uint64_t{0}) << ", "
            << l->manifest.value("shards", 0u) << " shards, " << l->manifest["groups"].size()
            << " groups, " << l->cut->data_keys().size() << " keys after delivering " << in_flight
            << " messages in flight and settling " << undecided << " undecided transactions\n";
  return 0;
}

int restore_cluster_snapshot(const SnapshotFlags& f) {
  std::optional<Loaded> l = load_dir(f.dir);
  if (!l) return 1;
  l->cut->settle(f.bugs);
  const std::vector<mvccpb::KeyValue> keys = l->cut->data_keys();
  const std::vector<std::string>& eps = f.endpoints;
  if (eps.empty()) {
    std::cerr << "Error: no endpoint given\n";
    return 1;
  }
  auto channel = grpc::CreateChannel(eps.front(), grpc::InsecureChannelCredentials());
  auto kv = etcdserverpb::KV::NewStub(channel);
  auto lease = etcdserverpb::Lease::NewStub(channel);
  auto deadline = [&](grpc::ClientContext& c) {
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(f.timeout_s));
  };
  // The target must be empty: no keys, and no leases (the cut's are granted again with their
  // IDs). Each count is asked for under its own deadline; 3 when the call fails, 1 when not empty.
  auto refuse_unless_empty = [&](const char* what, auto ask) -> int {
    grpc::ClientContext c;
    deadline(c);
    int64_t held = 0;
    grpc::Status s = ask(c, held);
    if (!s.ok()) {
      std::cerr << "Error: " << s.error_message() << "\n";
      return 3;
    }
    if (held == 0) return 0;
    std::cerr << "Error: the cluster at " << eps.front() << " holds " << held << " " << what
              << "; a snapshot is restored into an empty cluster\n";
    return 1;
  };
  int refused = refuse_unless_empty("keys", [&](grpc::ClientContext& c, int64_t& held) {
    etcdserverpb::RangeRequest all;
    all.set_key(std::string(1, '\0'));
    all.set_range_end(std::string(1, '\0'));
    all.set_count_only(true);
    etcdserverpb::RangeResponse r;
    grpc::Status s = kv->Range(&c, all, &r);
    held = r.count();
    return s;
  });
  if (refused == 0) {
    refused = refuse_unless_empty("leases", [&](grpc::ClientContext& c, int64_t& held) {
      etcdserverpb::LeaseLeasesResponse r;
      grpc::Status s = lease->LeaseLeases(&c, etcdserverpb::LeaseLeasesRequest(), &r);
      held = r.leases_size();
      return s;
    });
  }
  if (refused != 0) return refused;
  // The leases the keys are attached to, granted again with their IDs and TTLs (the metadata
  // group holds every lease of a sharded cluster).
  std::set<int64_t> granted;
  const auto& stores = l->cut->stores();
  if (auto meta = stores.find(0); meta != stores.end()) {
    for (int64_t id : meta->second->lease_ids()) {
      std::optional<kv::LeaseInfo> info = meta->second->lease(id);
      if (!info) continue;
      grpc::ClientContext c;
      deadline(c);
      etcdserverpb::LeaseGrantRequest req;
      req.set_id(id);
      req.set_ttl(info->ttl);
      etcdserverpb::LeaseGrantResponse resp;
      grpc::Status s = lease->LeaseGrant(&c, req, &resp);
      if (!s.ok()) {
        std::cerr << "Error: granting lease " << id << ": " << s.error_message() << "\n";
        return 1;
      }
      granted.insert(id);
    }
  }
  // Puts from several clients at once (a put per key), each taking every kWorkers-th key.
  constexpr size_t kWorkers = 8;
  std::atomic<size_t> done{0}, revoked{0};
  std::mutex error_mu;
  std::string error;
  std::vector<std::thread> workers;
  for (size_t w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (size_t i = w; i < keys.size(); i += kWorkers) {
        {
          std::lock_guard lock(error_mu);
          if (!error.empty()) return;
        }
        const mvccpb::KeyValue& k = keys[i];
        if (k.lease() != 0 && !granted.contains(k.lease())) {
          // The metadata group holds no such lease at the cut: revoked there (the deletes were
          // on their way to this shard), or granted there after its cut (docs/sharding.md).
          ++revoked;
          continue;
        }
        grpc::ClientContext c;
        deadline(c);
        etcdserverpb::PutRequest put;
        put.set_key(k.key());
        put.set_value(k.value());
        if (k.lease() != 0) put.set_lease(k.lease());
        etcdserverpb::PutResponse resp;
        grpc::Status s = kv->Put(&c, put, &resp);
        if (!s.ok()) {
          std::lock_guard lock(error_mu);
          if (error.empty()) error = "restoring key " + k.key() + ": " + s.error_message();
          return;
        }
        if (const size_t n = ++done; n % 10000 == 0) {
          std::cerr << n << " of " << keys.size() << " keys restored\n";
        }
      }
    });
  }
  for (std::thread& t : workers) t.join();
  if (!error.empty()) {
    std::cerr << "Error: " << error << " (" << done << " keys restored before)\n";
    return 1;
  }
  std::cout << "Restored snapshot " << l->manifest.value("epoch", uint64_t{0}) << ": " << done
            << " keys, " << granted.size() << " leases (" << revoked
            << " keys left out: their leases are not in the cut)\n";
  return 0;
}

}  // namespace synod::cli
