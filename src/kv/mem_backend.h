// kv::MemBackend: a Backend on std::map, for tests and the simulator. Nothing is durable;
// sync() is a no-op. Not thread-safe.
#pragma once

#include <map>

#include "kv/backend.h"

namespace synod::kv {

class MemBackend final : public Backend {
 public:
  std::optional<std::string> get(std::string_view key) const override;
  void scan(std::string_view begin, std::string_view end, const Visitor& visitor) const override;
  void write(WriteBatch batch) override;
  void sync() override {}
  uint64_t approximate_size_bytes() const override { return bytes_; }
  void defragment() override {}

  size_t entry_count() const { return map_.size(); }

 private:
  void erase(std::map<std::string, std::string, std::less<>>::iterator it);

  std::map<std::string, std::string, std::less<>> map_;
  uint64_t bytes_ = 0;  // sum of key and value sizes
};

}  // namespace synod::kv
