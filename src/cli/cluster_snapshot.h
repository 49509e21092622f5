// `synod ctl snapshot save --cluster DIR`, `snapshot status DIR` and `snapshot restore DIR`: a
// sharded cluster's consistent cut (server/cluster_cut.h, kv/cluster_cut.h) kept as a directory
// of the groups' recorded states and a manifest with the channel state, and brought up again in
// a fresh cluster. docs/sharding.md, "Consistent cuts".
#pragma once

#include <string>
#include <vector>

#include "kv/cluster_cut.h"

namespace synod::cli {

struct SnapshotFlags {
  std::vector<std::string> endpoints;  // "host:port", in the order to try them
  int timeout_s = 60;
  std::string dir;
  kv::ClusterCutBugs bugs;  // restore's planted bug (tests only)
};

// Each returns the process exit code, having printed what it did or the error.
int save_cluster_snapshot(const SnapshotFlags& f);
int cluster_snapshot_status(const SnapshotFlags& f);
int restore_cluster_snapshot(const SnapshotFlags& f);

}  // namespace synod::cli
