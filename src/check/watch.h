// check::check_watch_stream: does what a watcher received match the store's history, as etcd's
// watch semantics promise? An oracle independent of kv::WatchHub (its own key-range rule).
//
// Given the store's whole history (every event, in revision order) and the responses one
// watcher received, in order, it checks:
//   - exactly once, in order, no gap: the delivered events, concatenated, are a prefix of the
//     history's events that match the watch (key or range, filters, start revision);
//   - whole revisions: every response holds all matching events of each revision it touches;
//   - a cancel for compaction comes last and only when the next owed revision is at or below
//     the compact revision it carries;
//   - complete (when `complete` is set: the watcher was drained): nothing owed is missing
//     unless the stream was canceled.
// Pure; no clocks, no threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace synod::check {

struct WatchEvent {
  int64_t revision = 0;  // main revision of the write
  std::string key;
  bool is_delete = false;
  bool operator==(const WatchEvent&) const = default;
};

struct WatchSpec {
  std::string key;        // etcd's rules: never empty here ("\0" for an empty request key)
  std::string range_end;  // empty: the key alone; "\0": every key >= key
  int64_t start_revision = 1;
  bool no_put = false;
  bool no_delete = false;
};

struct WatchReceived {
  std::vector<WatchEvent> events;
  bool canceled = false;
  int64_t compact_revision = 0;
};

// nullopt if the stream is consistent with the history; otherwise what is wrong, with the
// index of the response that shows it.
std::optional<std::string> check_watch_stream(const WatchSpec& spec,
                                              const std::vector<WatchEvent>& history,
                                              const std::vector<WatchReceived>& received,
                                              bool complete);

}  // namespace synod::check
