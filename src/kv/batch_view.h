// kv::BatchView: a Backend seen through the writes of one not-yet-committed batch, so a write
// transaction reads its own earlier writes (etcd: a range after a put in the same txn sees it).
// Writes collect in memory and reach the backend only through batch(), in one atomic write.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "kv/backend.h"

namespace synod::kv {

class BatchView {
 public:
  explicit BatchView(const Backend& backend) : backend_(backend) {}

  std::optional<std::string> get(std::string_view key) const;
  // Visits [begin, end) of the backend merged with the pending writes; empty end = unbounded.
  void scan(std::string_view begin, std::string_view end, const Backend::Visitor& visitor) const;

  void put(std::string key, std::string value) { pending_[std::move(key)] = std::move(value); }
  void del(std::string key) { pending_[std::move(key)] = std::nullopt; }

  bool empty() const { return pending_.empty(); }
  // The pending writes as one batch, in key order.
  WriteBatch batch() const;
  // The same, moved out; the view is empty afterwards.
  WriteBatch take_batch();

 private:
  using Pending = std::map<std::string, std::optional<std::string>, std::less<>>;

  const Backend& backend_;
  Pending pending_;  // key -> new value, or nullopt for a delete
};

}  // namespace synod::kv
