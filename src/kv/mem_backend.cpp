#include "kv/mem_backend.h"

#include <cassert>

namespace synod::kv {

std::optional<std::string> MemBackend::get(std::string_view key) const {
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

void MemBackend::scan(std::string_view begin, std::string_view end, const Visitor& visitor) const {
  for (auto it = map_.lower_bound(begin); it != map_.end(); ++it) {
    if (!end.empty() && std::string_view(it->first) >= end) break;
    if (!visitor(it->first, it->second)) break;
  }
}

void MemBackend::erase(std::map<std::string, std::string, std::less<>>::iterator it) {
  assert(bytes_ >= it->first.size() + it->second.size());
  bytes_ -= it->first.size() + it->second.size();
  map_.erase(it);
}

void MemBackend::write(WriteBatch batch) {
  for (const WriteBatch::Op& op : batch.ops()) {
    switch (op.kind) {
      case WriteBatch::Kind::kPut: {
        auto [it, inserted] = map_.try_emplace(op.key);
        if (!inserted) bytes_ -= it->first.size() + it->second.size();
        it->second = op.value;
        bytes_ += it->first.size() + it->second.size();
        break;
      }
      case WriteBatch::Kind::kDelete: {
        auto it = map_.find(op.key);
        if (it != map_.end()) erase(it);
        break;
      }
      case WriteBatch::Kind::kDeleteRange: {
        assert(!op.value.empty() && op.key < op.value);
        auto it = map_.lower_bound(op.key);
        while (it != map_.end() && it->first < op.value) erase(it++);
        break;
      }
    }
  }
}

}  // namespace synod::kv
