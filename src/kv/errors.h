// The one catalogue of the errors Synod answers: the state machine's and the cluster's, with the
// gRPC status codes and message texts that etcd 3.4 clients expect
// (etcdserver/api/v3rpc/rpctypes/error.go). Services refer to these; none writes a code or a
// message of its own.
#pragma once

#include <iterator>
#include <string>

namespace synod::kv {

// gRPC status codes, by number (grpc/status.h), so kv/ needs no gRPC headers.
enum GrpcCode : int {
  kGrpcOk = 0,
  kGrpcUnknown = 2,
  kGrpcInvalidArgument = 3,
  kGrpcDeadlineExceeded = 4,
  kGrpcNotFound = 5,
  kGrpcPermissionDenied = 7,
  kGrpcResourceExhausted = 8,
  kGrpcFailedPrecondition = 9,
  kGrpcOutOfRange = 11,
  kGrpcInternal = 13,
  kGrpcUnavailable = 14,
  kGrpcUnauthenticated = 16,
};

// A status code's name as Go's codes.Code.String() writes it ("PermissionDenied"); nullptr for
// a code gRPC does not define.
inline const char* grpc_code_name(int code) {
  static constexpr const char* kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  return code >= 0 && code < static_cast<int>(std::size(kNames)) ? kNames[code] : nullptr;
}

struct Error {
  int grpc_code = kGrpcOk;
  std::string message;

  bool operator==(const Error&) const = default;
};

namespace errors {
// A key a cross-shard transaction holds between its prepare and its outcome (Synod's own).
inline Error locked_by_transaction() {
  return {kGrpcUnavailable, "synod: a key is held by a cross-shard transaction in progress"};
}
inline Error bad_transaction_part() {
  return {kGrpcInvalidArgument,
          "synod: a cross-shard transaction's part takes one or more keys or ranges, no nested "
          "txn, no compare over a range, no read at a past revision and no put that ignores its "
          "value or lease"};
}
// A sharded cluster's cross-shard transaction (or one whose keys span shards) whose shape a
// part cannot take: ranges, leases or nested txns across shards.
inline Error cross_shard_txn_shape() {
  return {
      kGrpcInvalidArgument,
      "synod: a transaction across shards takes no nested txn, no compare over a range, no read "
      "at a past revision and no put that ignores its value or lease"};
}
// A cross-shard transaction that could not prepare everywhere (a key held by another one, a
// participant without a leader) and was aborted: nothing changed; the client may retry.
inline Error transaction_aborted() {
  return {kGrpcUnavailable, "synod: cross-shard transaction aborted (a key was held); retry"};
}
// A range over several shards whose keys kept changing while it was read (no two reads of every
// shard in a row agreed): refused rather than answered with a view of no single moment.
inline Error range_busy() {
  return {kGrpcUnavailable, "synod: the range kept changing across shards while read; retry"};
}
// A request that needs a shard this member does not replicate and cannot reach.
inline Error shard_unreachable() {
  return {kGrpcUnavailable, "synod: a shard this request needs is not replicated by this member"};
}
// A consistent cut of a sharded cluster that could not be completed (a group unreachable, its
// recorded state lost to a restart, a newer cut begun meanwhile): nothing was saved; retry.
inline Error cut_failed(const std::string& why) {
  return {kGrpcUnavailable, "synod: the cluster snapshot could not be taken (" + why + "); retry"};
}
inline Error empty_key() {
  return {kGrpcInvalidArgument, "etcdserver: key is not provided"};
}
inline Error key_not_found() {
  return {kGrpcInvalidArgument, "etcdserver: key not found"};
}
inline Error value_provided() {
  return {kGrpcInvalidArgument, "etcdserver: value is provided"};
}
inline Error lease_provided() {
  return {kGrpcInvalidArgument, "etcdserver: lease is provided"};
}
inline Error too_many_ops() {
  return {kGrpcInvalidArgument, "etcdserver: too many operations in txn request"};
}
inline Error duplicate_key() {
  return {kGrpcInvalidArgument, "etcdserver: duplicate key given in txn request"};
}
inline Error compacted() {
  return {kGrpcOutOfRange, "etcdserver: mvcc: required revision has been compacted"};
}
inline Error future_revision() {
  return {kGrpcOutOfRange, "etcdserver: mvcc: required revision is a future revision"};
}
inline Error lock_name_missing() {
  return {kGrpcInvalidArgument, "synod: lock name is not provided"};
}
inline Error lock_not_held(const std::string& lock) {
  return {kGrpcFailedPrecondition, "synod: lock " + lock + " is not held"};
}
inline Error stale_token(int64_t token, int64_t holder) {
  return {kGrpcFailedPrecondition, "synod: fencing token " + std::to_string(token) +
                                       (token < holder ? " is older than" : " is not") +
                                       " the lock holder's (" + std::to_string(holder) + ")"};
}
inline Error lease_exists() {
  return {kGrpcFailedPrecondition, "etcdserver: lease already exists"};
}
inline Error lease_ttl_too_large() {
  return {kGrpcOutOfRange, "etcdserver: too large lease TTL"};
}
inline Error lease_not_found() {
  return {kGrpcNotFound, "etcdserver: requested lease not found"};
}
inline Error member_not_found() {
  return {kGrpcNotFound, "etcdserver: member not found"};
}
// The cluster's answers (etcdserver/errors.go and api/v3rpc/rpctypes/error.go).
inline Error timed_out() {
  return {kGrpcUnavailable, "etcdserver: request timed out"};
}
inline Error no_leader() {
  return {kGrpcUnavailable, "etcdserver: no leader"};
}
inline Error not_leader() {
  return {kGrpcFailedPrecondition, "etcdserver: not leader"};
}
// Applying fell too far behind committing, or too many requests are waiting: etcd's answer
// when its apply lags its commit by more than 5,000 entries.
inline Error too_many_requests() {
  return {kGrpcResourceExhausted, "etcdserver: too many requests"};
}
inline Error bad_leader_transferee() {
  return {kGrpcFailedPrecondition, "etcdserver: bad leader transferee"};
}
inline Error leadership_transfer_failed() {
  return {kGrpcFailedPrecondition, "etcdserver: leadership transfer failed"};
}
inline Error leadership_transfer_timed_out() {
  return {kGrpcDeadlineExceeded, "etcdserver: leadership transfer timed out"};
}
inline Error learner_not_ready() {
  return {kGrpcFailedPrecondition,
          "etcdserver: can only promote a learner member which is in sync with leader"};
}
inline Error peer_urls_exist() {
  return {kGrpcFailedPrecondition, "etcdserver: Peer URLs already exists"};
}
inline Error not_a_learner() {
  return {kGrpcFailedPrecondition, "etcdserver: can only promote a learner member"};
}
inline Error request_too_large() {
  return {kGrpcInvalidArgument, "etcdserver: request is too large"};
}
inline Error invalid_membership_change() {
  return {kGrpcInvalidArgument, "etcdserver: invalid membership change"};
}
// Authentication and authorization (etcd's auth store).
inline Error root_user_missing() {
  return {kGrpcFailedPrecondition, "etcdserver: root user does not exist"};
}
inline Error root_role_missing() {
  return {kGrpcFailedPrecondition, "etcdserver: root user does not have root role"};
}
inline Error user_exists() {
  return {kGrpcFailedPrecondition, "etcdserver: user name already exists"};
}
inline Error user_empty() {
  return {kGrpcInvalidArgument, "etcdserver: user name is empty"};
}
inline Error user_not_found() {
  return {kGrpcFailedPrecondition, "etcdserver: user name not found"};
}
inline Error role_exists() {
  return {kGrpcFailedPrecondition, "etcdserver: role name already exists"};
}
inline Error role_not_found() {
  return {kGrpcFailedPrecondition, "etcdserver: role name not found"};
}
inline Error role_empty() {
  return {kGrpcInvalidArgument, "etcdserver: role name is empty"};
}
inline Error auth_failed() {
  return {kGrpcInvalidArgument, "etcdserver: authentication failed, invalid user ID or password"};
}
inline Error permission_denied() {
  return {kGrpcPermissionDenied, "etcdserver: permission denied"};
}
inline Error role_not_granted() {
  return {kGrpcFailedPrecondition, "etcdserver: role is not granted to the user"};
}
inline Error permission_not_granted() {
  return {kGrpcFailedPrecondition, "etcdserver: permission is not granted to the role"};
}
inline Error auth_not_enabled() {
  return {kGrpcFailedPrecondition, "etcdserver: authentication is not enabled"};
}
inline Error invalid_auth_token() {
  return {kGrpcUnauthenticated, "etcdserver: invalid auth token"};
}
inline Error invalid_auth_management() {
  return {kGrpcInvalidArgument, "etcdserver: invalid auth management"};
}
inline Error auth_old_revision() {
  return {kGrpcInvalidArgument, "etcdserver: revision of auth store is old"};
}
// Not an etcd error: a log entry whose Request carries no operation (etcd has no such entry).
inline Error empty_request() {
  return {kGrpcInvalidArgument, "synod: request has no operation"};
}
}  // namespace errors

}  // namespace synod::kv
