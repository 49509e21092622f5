#include "kv/recipe.h"

#include <algorithm>
#include <cassert>
#include <cstdio>

namespace synod::kv::recipe {

std::string prefix_end(std::string prefix) {
  assert(!prefix.empty());
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

std::string contender_key(const std::string& name, int64_t lease) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease));
  return name + "/" + hex;
}

etcdserverpb::RangeRequest first_created(const std::string& prefix) {
  etcdserverpb::RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(prefix_end(prefix));
  r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  r.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  r.set_limit(1);
  return r;
}

namespace {

// A compare "key was never created (or is deleted)".
void add_absent(etcdserverpb::TxnRequest& txn, const std::string& key) {
  etcdserverpb::Compare* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(0);
}

}  // namespace

etcdserverpb::TxnRequest permits_txn(const std::string& name, int64_t permits) {
  assert(permits > 0);
  etcdserverpb::TxnRequest txn;
  add_absent(txn, name);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(name);
  put->set_value(std::to_string(permits));
  txn.add_failure()->mutable_request_range()->set_key(name);
  return txn;
}

std::optional<std::string> check_permits(const etcdserverpb::TxnResponse& response,
                                         const std::string& name, int64_t permits) {
  if (response.succeeded()) return std::nullopt;
  if (response.responses_size() != 1) return "semaphore: bad result";
  const auto& kvs = response.responses(0).response_range().kvs();
  const std::string have = kvs.empty() ? "" : kvs[0].value();
  if (have == std::to_string(permits)) return std::nullopt;
  return "synod: semaphore " + name + " has " + have + " permits, not " + std::to_string(permits);
}

etcdserverpb::TxnRequest contend_txn(const std::string& name, int64_t lease,
                                     const std::string& value) {
  const std::string key = contender_key(name, lease);
  const std::string prefix = name + "/";
  etcdserverpb::TxnRequest txn;
  add_absent(txn, key);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
  *txn.add_success()->mutable_request_range() = first_created(prefix);
  txn.add_failure()->mutable_request_range()->set_key(key);
  *txn.add_failure()->mutable_request_range() = first_created(prefix);
  return txn;
}

Expected<Contended, std::string> read_contended(const etcdserverpb::TxnResponse& response,
                                                const std::string& value, int64_t permits) {
  if (response.responses_size() != 2) return Unexpected{std::string("lock: unexpected txn result")};
  Contended c;
  c.txn_revision = response.header().revision();
  const auto& mine = response.responses(0).response_range();
  if (response.succeeded()) {
    c.my_revision = c.txn_revision;
  } else if (mine.kvs_size() > 0) {
    c.my_revision = mine.kvs(0).create_revision();
    c.reproclaim = mine.kvs(0).value() != value;
  } else {
    return Unexpected{std::string("lock: contender key vanished")};
  }
  const auto& owner = response.responses(1).response_range();
  c.first =
      permits <= 1 && (owner.kvs_size() == 0 || owner.kvs(0).create_revision() == c.my_revision);
  return c;
}

etcdserverpb::RangeRequest predecessors(const std::string& name, int64_t my_revision,
                                        int64_t permits) {
  assert(my_revision > 0);
  const std::string prefix = name + "/";
  etcdserverpb::RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(prefix_end(prefix));
  r.set_max_create_revision(my_revision);
  r.set_keys_only(true);
  if (permits <= 1) {
    // Not for a semaphore: etcd's limit (like its count) applies before the revision filters.
    r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    r.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
    r.set_limit(2);
  }
  return r;
}

Wait read_predecessors(const etcdserverpb::RangeResponse& response, const std::string& name,
                       int64_t lease, int64_t permits) {
  Wait w;
  const std::string mine = contender_key(name, lease);
  const auto& kvs = response.kvs();
  if (permits <= 1) {
    // Newest first: this contender's key, then the one created just before it.
    if (kvs.empty() || kvs[0].key() != mine) {
      w.gone = true;
    } else if (kvs.size() < 2) {
      w.held = true;
    } else {
      w.watch_key = kvs[1].key();
    }
    return w;
  }
  const bool present =
      std::any_of(kvs.begin(), kvs.end(), [&](const auto& kv) { return kv.key() == mine; });
  if (!present) {
    w.gone = true;
  } else if (kvs.size() - 1 < permits) {
    w.held = true;
  } else {
    // Any earlier contender leaving may free a permit: watch the whole prefix.
    w.watch_key = name + "/";
    w.watch_end = prefix_end(w.watch_key);
  }
  return w;
}

}  // namespace synod::kv::recipe
