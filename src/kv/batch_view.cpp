#include "kv/batch_view.h"

namespace synod::kv {

std::optional<std::string> BatchView::get(std::string_view key) const {
  auto it = pending_.find(key);
  if (it != pending_.end()) return it->second;
  return backend_.get(key);
}

void BatchView::scan(std::string_view begin, std::string_view end,
                     const Backend::Visitor& visitor) const {
  auto it = pending_.lower_bound(begin);
  auto pending_end =
      end.empty() ? pending_.end() : pending_.lower_bound(end);  // first pending key >= end
  bool stopped = false;
  // Emits pending entries before `limit` (all when limit is nullopt); false if the visitor stops.
  auto drain = [&](std::optional<std::string_view> limit) {
    for (; it != pending_end && (!limit || std::string_view(it->first) < *limit); ++it) {
      if (it->second && !visitor(it->first, *it->second)) return false;
    }
    return true;
  };
  backend_.scan(begin, end, [&](std::string_view key, std::string_view value) {
    if (!drain(key)) {
      stopped = true;
      return false;
    }
    if (it != pending_end && std::string_view(it->first) == key) {
      // The pending write shadows the stored value.
      bool go_on = !it->second || visitor(it->first, *it->second);
      ++it;
      stopped = !go_on;
      return go_on;
    }
    stopped = !visitor(key, value);
    return !stopped;
  });
  if (!stopped) drain(std::nullopt);
}

WriteBatch BatchView::take_batch() {
  WriteBatch out;
  while (!pending_.empty()) {
    auto node = pending_.extract(pending_.begin());
    if (node.mapped()) {
      out.put(std::move(node.key()), std::move(*node.mapped()));
    } else {
      out.del(std::move(node.key()));
    }
  }
  return out;
}

WriteBatch BatchView::batch() const {
  WriteBatch out;
  for (const auto& [key, value] : pending_) {
    if (value) {
      out.put(key, *value);
    } else {
      out.del(key);
    }
  }
  return out;
}

}  // namespace synod::kv
