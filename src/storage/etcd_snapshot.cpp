#include "storage/etcd_snapshot.h"

#include <algorithm>
#include <cassert>
#include <tuple>

#include "mvccpb/kv.pb.h"

namespace synod::storage {
namespace {

std::string be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

// etcd's form of one version: a tombstone's KeyValue holds only the key (etcd's delete).
std::string version_bytes(const kv::Store::RevisionEntry& e) {
  if (!e.tombstone) return e.kv.SerializeAsString();
  mvccpb::KeyValue tombstone;
  tombstone.set_key(e.kv.key());
  return tombstone.SerializeAsString();
}

// Every version of every store in revision order. The stores are disjoint (the shards of a
// cluster); versions that two of them wrote at one main revision take consecutive sub-revisions,
// store by store, so every version keeps its own key.
BoltEntries key_bucket(const std::vector<const kv::Store*>& stores) {
  struct Version {
    int64_t main;
    size_t store;
    int64_t sub;
    bool tombstone;
    std::string bytes;
  };
  std::vector<Version> versions;
  for (size_t i = 0; i < stores.size(); ++i) {
    stores[i]->for_each_revision([&](const kv::Store::RevisionEntry& e) {
      versions.push_back({e.rev.main, i, e.rev.sub, e.tombstone, version_bytes(e)});
    });
  }
  if (stores.size() > 1) {
    std::stable_sort(versions.begin(), versions.end(), [](const Version& a, const Version& b) {
      return std::tie(a.main, a.store, a.sub) < std::tie(b.main, b.store, b.sub);
    });
  }
  BoltEntries entries;
  entries.reserve(versions.size());
  int64_t main = -1;
  int64_t sub = 0;
  for (Version& v : versions) {
    sub = v.main == main ? sub + 1 : 0;
    main = v.main;
    // A single store's sub-revisions are kept as they are.
    std::string key = etcd_revision_key(v.main, stores.size() > 1 ? sub : v.sub, v.tombstone);
    // Revision order is key order: etcd's revision keys sort as (main, sub).
    assert(entries.empty() || entries.back().first < key);
    entries.emplace_back(std::move(key), std::move(v.bytes));
  }
  return entries;
}

BoltEntries meta_bucket(const std::vector<const kv::Store*>& stores) {
  uint64_t applied = 0;
  int64_t compacted = 0;
  for (const kv::Store* s : stores) {
    applied = std::max(applied, s->applied_index());
    compacted = std::max(compacted, s->compact_revision());
  }
  BoltEntries entries;
  entries.emplace_back("consistent_index", be64(applied));
  if (compacted > 0) {
    // Both set and equal: compaction finished, so a restoring etcd does not resume one.
    std::string rev = etcd_revision_key(compacted, 0, false);
    entries.emplace_back("finishedCompactRev", rev);
    entries.emplace_back("scheduledCompactRev", rev);
  }
  return entries;  // names above are in byte order: 'c' < 'f' < 's'
}

}  // namespace

std::string etcd_revision_key(int64_t main, int64_t sub, bool tombstone) {
  assert(main >= 0 && sub >= 0);
  std::string key = be64(static_cast<uint64_t>(main));
  key.push_back('_');
  key += be64(static_cast<uint64_t>(sub));
  if (tombstone) key.push_back('t');
  return key;
}

BoltBuckets etcd_backend_buckets(const std::vector<const kv::Store*>& stores) {
  BoltBuckets buckets;
  buckets["key"] = key_bucket(stores);
  buckets["meta"] = meta_bucket(stores);
  buckets["cluster"] = {{"clusterVersion", "3.4.0"}};
  for (const char* empty :
       {"alarm", "auth", "authRoles", "authUsers", "lease", "members", "members_removed"}) {
    buckets[empty];
  }
  return buckets;
}

BoltBuckets etcd_backend_buckets(const kv::Store& store) {
  return etcd_backend_buckets({&store});
}

std::string etcd_snapshot_image(const kv::Store& store) {
  return bolt_image(etcd_backend_buckets(store));
}

std::string etcd_snapshot_image(const std::vector<const kv::Store*>& stores) {
  return bolt_image(etcd_backend_buckets(stores));
}

}  // namespace synod::storage
