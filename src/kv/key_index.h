// kv::KeyIndex: the version metadata of every live key, in memory, so that a put learns its
// key's create revision and version without a backend read (on RocksDB that read was the
// largest single cost of a put once the store outgrew its memtables). Values stay in the
// backend: the index holds about 70 bytes per key (etcd keeps a comparable in-memory index).
//
// The store keeps it equal to its current table: rebuilt from the backend on load and
// restore, and updated with each applied write transaction's changes.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace synod::kv {

struct KeyMeta {
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
  bool operator==(const KeyMeta&) const = default;
};

class KeyIndex {
 public:
  const KeyMeta* find(std::string_view key) const {
    auto it = map_.find(view(key));
    return it == map_.end() ? nullptr : &it->second;
  }
  void set(std::string_view key, const KeyMeta& meta) {
    map_.insert_or_assign(std::string(key), meta);
  }
  void erase(std::string_view key) {
    auto it = map_.find(view(key));
    if (it != map_.end()) map_.erase(it);
  }
  void clear() { map_.clear(); }
  size_t size() const { return map_.size(); }

 private:
  // Debian's abseil has its own string_view type.
  static absl::string_view view(std::string_view s) {
    return absl::string_view(s.data(), s.size());
  }
  absl::flat_hash_map<std::string, KeyMeta> map_;
};

}  // namespace synod::kv
