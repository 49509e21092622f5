// Small adapters between kv::Store's value types and the gRPC services.
#pragma once

#include <optional>
#include <vector>

#include "kv/store.h"

namespace synod::server {

inline kv::ApplyResult failed(kv::Error e) {
  kv::ApplyResult r;
  r.outcome = std::move(e);
  return r;
}

inline const kv::Error* result_error(const kv::ApplyResult& r) {
  return r.error();
}

template <typename T>
const T* result_as(const kv::ApplyResult& r) {
  return r.response<T>();
}

inline std::optional<kv::Error> range_into(const kv::Store& store,
                                           const etcdserverpb::RangeRequest& req,
                                           etcdserverpb::RangeResponse* resp) {
  auto r = store.range(req);
  if (!r) return r.error();
  *resp = std::move(*r);
  return std::nullopt;
}

inline std::vector<synodpb::Member> store_members(const kv::Store& store) {
  return store.members();
}

using HashKvResult = kv::HashKVResult;

inline HashKvResult store_hash_kv(const kv::Store& store, int64_t revision,
                                  std::optional<kv::Error>* error = nullptr) {
  auto r = store.hash_kv(revision);
  if (!r) {
    if (error != nullptr) *error = r.error();
    return HashKvResult{0, store.compact_revision(), store.revision()};
  }
  return *r;
}

}  // namespace synod::server
