// Reading keys as of a revision, and executing a RangeRequest with etcd 3.4's semantics
// (etcdserver/apply.go Range and mvcc/kvstore_txn.go rangeKeys).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "kv/batch_view.h"
#include "kv/errors.h"
#include "kv/expected.h"

namespace synod::kv {

struct KeyScan {
  std::vector<mvccpb::KeyValue> kvs;  // in key order; at most fetch_limit of them
  int64_t count = 0;                  // every live key in the interval at that revision
};

// Reads the live keys of [key, range_end) (etcd's range_end rules). past_revision nullopt reads
// the current table; otherwise the history as of that revision. fetch_limit 0 means all;
// fetch_limit < 0 fetches none (count only).
KeyScan read_keys(const BatchView& view, std::string_view key, std::string_view range_end,
                  std::optional<int64_t> past_revision, int64_t fetch_limit);

// The revisions a read runs against: the view's current state is at current_revision.
struct ReadRevisions {
  int64_t current = 1;
  int64_t compact = -1;
};

// Executes a RangeRequest; errors for a future or compacted revision. The header revision is
// the current revision (etcd reports it even for past reads); other header fields are unset.
Expected<etcdserverpb::RangeResponse, Error> execute_range(const BatchView& view,
                                                           const etcdserverpb::RangeRequest& req,
                                                           ReadRevisions revs);

// One RangeResponse from the answers of several disjoint stores (the shards of a sharded
// cluster) to the same request: their keys in the request's order (key order by default), cut to
// its limit; count summed; more if any part had more or the cut dropped keys; the header's
// revision the highest. Each part must be ordered as the request asks (execute_range's output).
etcdserverpb::RangeResponse merge_ranges(const etcdserverpb::RangeRequest& req,
                                         std::vector<etcdserverpb::RangeResponse>&& parts);

// Checks a range's revision against the store without reading (etcd's checkRequestRange).
std::optional<Error> check_range_revision(int64_t revision, ReadRevisions revs);

}  // namespace synod::kv
