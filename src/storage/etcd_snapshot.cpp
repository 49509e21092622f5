#include "storage/etcd_snapshot.h"

#include <cassert>

#include "mvccpb/kv.pb.h"

namespace synod::storage {
namespace {

std::string be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

BoltEntries key_bucket(const kv::Store& store) {
  BoltEntries entries;
  store.for_each_revision([&](const kv::Store::RevisionEntry& e) {
    std::string key = etcd_revision_key(e.rev.main, e.rev.sub, e.tombstone);
    // Revision order is key order: etcd's revision keys sort as (main, sub).
    assert(entries.empty() || entries.back().first < key);
    if (!e.tombstone) {
      entries.emplace_back(std::move(key), e.kv.SerializeAsString());
      return;
    }
    mvccpb::KeyValue tombstone;  // etcd's delete writes a KeyValue with only the key
    tombstone.set_key(e.kv.key());
    entries.emplace_back(std::move(key), tombstone.SerializeAsString());
  });
  return entries;
}

BoltEntries meta_bucket(const kv::Store& store) {
  BoltEntries entries;
  entries.emplace_back("consistent_index", be64(store.applied_index()));
  if (store.compact_revision() > 0) {
    // Both set and equal: compaction finished, so a restoring etcd does not resume one.
    std::string rev = etcd_revision_key(store.compact_revision(), 0, false);
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

BoltBuckets etcd_backend_buckets(const kv::Store& store) {
  BoltBuckets buckets;
  buckets["key"] = key_bucket(store);
  buckets["meta"] = meta_bucket(store);
  buckets["cluster"] = {{"clusterVersion", "3.4.0"}};
  for (const char* empty :
       {"alarm", "auth", "authRoles", "authUsers", "lease", "members", "members_removed"}) {
    buckets[empty];
  }
  return buckets;
}

std::string etcd_snapshot_image(const kv::Store& store) {
  return bolt_image(etcd_backend_buckets(store));
}

}  // namespace synod::storage
