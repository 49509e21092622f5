#include "check/watch.h"

#include <algorithm>
#include <cstddef>

namespace synod::check {

namespace {

bool matches(const WatchSpec& w, const WatchEvent& e) {
  if (e.revision < w.start_revision) return false;
  if (e.is_delete ? w.no_delete : w.no_put) return false;
  if (w.range_end.empty()) return e.key == w.key;
  if (w.range_end == std::string(1, '\0')) return e.key >= w.key;
  return e.key >= w.key && e.key < w.range_end;
}

std::string describe(const WatchEvent& e) {
  return std::string(e.is_delete ? "DELETE " : "PUT ") + e.key + "@" + std::to_string(e.revision);
}

}  // namespace

std::optional<std::string> check_watch_stream(const WatchSpec& spec,
                                              const std::vector<WatchEvent>& history,
                                              const std::vector<WatchReceived>& received,
                                              bool complete) {
  std::vector<WatchEvent> owed;
  for (const WatchEvent& e : history) {
    if (matches(spec, e)) owed.push_back(e);
  }
  size_t next = 0;  // index into owed of the next event due
  bool canceled = false;
  int64_t last_revision = 0;
  for (size_t r = 0; r < received.size(); ++r) {
    const WatchReceived& got = received[r];
    const std::string where = "response " + std::to_string(r) + ": ";
    if (canceled) return where + "a response after the stream was canceled";
    for (const WatchEvent& e : got.events) {
      if (next >= owed.size()) return where + "unexpected " + describe(e) + " (nothing owed)";
      if (!(e == owed[next])) {
        const bool seen_before = [&] {
          for (size_t i = 0; i < next; ++i)
            if (owed[i] == e) return true;
          return false;
        }();
        return where + (seen_before ? "duplicate " : "out of order or foreign ") + describe(e) +
               ", owed " + describe(owed[next]);
      }
      ++next;
    }
    // Whole revisions: the revision of the last event must not continue in the next one owed.
    if (!got.events.empty() && next < owed.size() &&
        owed[next].revision == got.events.back().revision) {
      return where + "revision " + std::to_string(owed[next].revision) +
             " split across responses (" + describe(owed[next]) + " came later)";
    }
    if (!got.events.empty()) last_revision = got.events.back().revision;
    if (got.canceled) {
      canceled = true;
      if (got.compact_revision <= 0) continue;  // a client's cancel: nothing to justify
      // Canceled for compaction: justified only if the watcher's position (the revision it
      // needs next) was at or below the compact revision. The position is at least the start
      // and one past the last event delivered; it may be further (revisions with no match).
      const int64_t position_at_least = std::max(spec.start_revision, last_revision + 1);
      if (position_at_least > got.compact_revision) {
        return where + "canceled for compaction at " + std::to_string(got.compact_revision) +
               " though the watcher needed revision " + std::to_string(position_at_least) +
               " or later";
      }
    }
  }
  if (complete && !canceled && next < owed.size()) {
    return "missing " + describe(owed[next]) + " (and " + std::to_string(owed.size() - next - 1) +
           " more) after the stream was drained";
  }
  return std::nullopt;
}

}  // namespace synod::check
