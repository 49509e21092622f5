// The errors the KV state machine reports, with the gRPC status codes and message texts that
// etcd 3.4 clients expect (etcdserver/api/v3rpc/rpctypes/error.go).
#pragma once

#include <string>

namespace synod::kv {

// gRPC status codes, by number (grpc/status.h), so kv/ needs no gRPC headers.
enum GrpcCode : int {
  kGrpcOk = 0,
  kGrpcInvalidArgument = 3,
  kGrpcNotFound = 5,
  kGrpcFailedPrecondition = 9,
  kGrpcOutOfRange = 11,
};

struct Error {
  int grpc_code = kGrpcOk;
  std::string message;

  bool operator==(const Error&) const = default;
};

namespace errors {
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
// Not an etcd error: a log entry whose Request carries no operation (etcd has no such entry).
inline Error empty_request() {
  return {kGrpcInvalidArgument, "synod: request has no operation"};
}
}  // namespace errors

}  // namespace synod::kv
