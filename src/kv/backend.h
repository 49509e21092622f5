// kv::Backend: the ordered byte map the MVCC store keeps its tables in.
//
// Contract for every implementation:
//  - Keys order by unsigned lexicographic byte comparison (memcmp, then length).
//  - write() applies a whole WriteBatch atomically: after a crash either all of it or none of it
//    is visible. Operations in one batch apply in order.
//  - write() need not be durable on return; sync() makes every completed write durable.
//  - An I/O failure is fatal: implementations report it and abort, as etcd does on a backend
//    error, because the state machine cannot skip or half-apply a committed entry.
//  - Not thread-safe: callers serialize access (kv::Store is guarded by the server).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace synod::kv {

class WriteBatch {
 public:
  enum class Kind : uint8_t { kPut, kDelete, kDeleteRange };
  struct Op {
    Kind kind;
    std::string key;    // kDeleteRange: the first key deleted
    std::string value;  // kPut: the value; kDeleteRange: the end (exclusive, never empty)
  };

  void put(std::string key, std::string value) {
    ops_.push_back({Kind::kPut, std::move(key), std::move(value)});
  }
  void del(std::string key) { ops_.push_back({Kind::kDelete, std::move(key), {}}); }
  // Deletes [begin, end); end must be non-empty and greater than begin.
  void delete_range(std::string begin, std::string end) {
    ops_.push_back({Kind::kDeleteRange, std::move(begin), std::move(end)});
  }

  const std::vector<Op>& ops() const { return ops_; }
  std::vector<Op>& mutable_ops() { return ops_; }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }

 private:
  std::vector<Op> ops_;
};

class Backend {
 public:
  // Called for each entry in key order; the views are valid only during the call.
  // Return false to stop the scan.
  using Visitor = std::function<bool(std::string_view key, std::string_view value)>;

  virtual ~Backend() = default;

  virtual std::optional<std::string> get(std::string_view key) const = 0;
  // Visits [begin, end) in ascending key order; an empty end means no upper bound.
  virtual void scan(std::string_view begin, std::string_view end, const Visitor& visitor) const = 0;
  // By value: a caller done with its batch moves it in, and the rows are not copied again.
  virtual void write(WriteBatch batch) = 0;
  virtual void sync() = 0;
  // Bytes the data occupies in storage, roughly (etcd's dbSize).
  virtual uint64_t approximate_size_bytes() const = 0;
  // Reclaims space left by deletes (etcd's defragment). Contents do not change.
  virtual void defragment() = 0;
};

}  // namespace synod::kv
