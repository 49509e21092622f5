// Synod's state as an etcd 3.4 backend snapshot: the bbolt file `etcdctl snapshot save` gets
// from etcd, in etcd's bucket layout, so that `etcdctl snapshot status` and `etcdctl snapshot
// restore` (and an etcd started on the restored data dir) read it.
//
// Layout (etcd 3.4 mvcc/kvstore.go, mvcc/revision.go, etcdserver/api/membership):
//   key       <main be64> '_' <sub be64> ['t' for a tombstone] -> marshaled mvccpb.KeyValue
//             (a tombstone's KeyValue holds only the key), for every version the store holds
//   meta      consistent_index -> applied index (be64); finishedCompactRev and
//             scheduledCompactRev -> the compact revision as a revision key, if compacted
//   cluster   clusterVersion -> "3.4.0"
//   members, members_removed, lease, alarm, auth, authUsers, authRoles: empty (Synod's members
//             are not etcd's; restore replaces them anyway; Synod has no leases, alarms or auth)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kv/store.h"
#include "storage/bbolt_writer.h"

namespace synod::storage {

// etcd's revision key: 8-byte big-endian main, '_', 8-byte big-endian sub, and a 't' after a
// tombstone's.
std::string etcd_revision_key(int64_t main, int64_t sub, bool tombstone);

// The buckets of the etcd backend holding `store`'s state.
BoltBuckets etcd_backend_buckets(const kv::Store& store);
// The buckets of one etcd backend holding the state of several disjoint stores (the data
// groups of a sharded cluster's consistent cut): their histories merged in revision order, the
// versions two stores wrote at one revision at consecutive sub-revisions; the highest applied
// index and compaction revision.
BoltBuckets etcd_backend_buckets(const std::vector<const kv::Store*>& stores);

// The bbolt file of etcd_backend_buckets(store); a multiple of kBoltPageSize bytes (so the
// server's padding of the Snapshot stream to 512 bytes adds nothing before the SHA-256).
// Thread-safety: as for a kv::Store read (the caller keeps writers out).
std::string etcd_snapshot_image(const kv::Store& store);
std::string etcd_snapshot_image(const std::vector<const kv::Store*>& stores);

}  // namespace synod::storage
