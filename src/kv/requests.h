// Applying one KV request inside a write transaction, with etcd 3.4's semantics
// (etcdserver/apply.go: Put, DeleteRange, Txn, applyCompare).
#pragma once

#include <cstdint>
#include <optional>

#include "etcdserverpb/rpc.pb.h"
#include "kv/errors.h"
#include "kv/expected.h"
#include "kv/write_txn.h"

namespace synod::kv {

// Apply-time checks of a put against the store (etcd's checkRequestPut): ignore_value and
// ignore_lease need an existing key; a lease given must exist.
std::optional<Error> check_put(const WriteTxn& txn, const etcdserverpb::PutRequest& req);

// Preconditions: validate(req) and check_put passed.
etcdserverpb::PutResponse apply_put(WriteTxn& txn, const etcdserverpb::PutRequest& req);
etcdserverpb::DeleteRangeResponse apply_delete_range(WriteTxn& txn,
                                                     const etcdserverpb::DeleteRangeRequest& req);

// Whether every top-level compare of `req` holds in `view` (nested txns are not looked at).
bool compares_hold(const BatchView& view, const etcdserverpb::TxnRequest& req);

// Evaluates every compare (nested ones too) against the state before the txn, checks the ops
// of the branches taken, then runs them. On error nothing was written to txn.
// Precondition: validate(req) passed.
Expected<etcdserverpb::TxnResponse, Error> apply_txn(WriteTxn& txn,
                                                     const etcdserverpb::TxnRequest& req,
                                                     int64_t compact_revision);

}  // namespace synod::kv
