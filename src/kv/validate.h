// Request checks done before a request is proposed (etcd 3.4's etcdserver/api/v3rpc/key.go).
// Pure functions of the request: they need no store state. Store::apply runs them again, so a
// bad entry that reached the log is refused rather than applied.
#pragma once

#include <optional>

#include "etcdserverpb/rpc.pb.h"
#include "kv/errors.h"

namespace synod::kv {

inline constexpr int kDefaultMaxTxnOps = 128;  // etcd's --max-txn-ops default

std::optional<Error> validate(const etcdserverpb::RangeRequest& req);
std::optional<Error> validate(const etcdserverpb::PutRequest& req);
std::optional<Error> validate(const etcdserverpb::DeleteRangeRequest& req);
// Op counts (max of compares, success, failure; nested txns share the budget), empty keys, and
// overlapping writes within a branch (etcd's checkIntervals).
std::optional<Error> validate(const etcdserverpb::TxnRequest& req,
                              int max_txn_ops = kDefaultMaxTxnOps);

}  // namespace synod::kv
