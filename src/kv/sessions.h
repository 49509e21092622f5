// kv::SessionWindow: which of one client's recent requests the store has applied, so that a
// request ordered more than once (a faulty replica's replay, or a replica ordering again what it
// did not know it had executed) takes effect once. PBFT's replicas keep the last reply to each
// client in their state for the same reason (OSDI '99, 4.1); here it is a window, since a
// member's own requests, many in flight at once, may be ordered out of timestamp order.
//
// A client's timestamps rise with each request it makes. The window holds the highest timestamp
// applied and which of the kWindow timestamps below it were skipped over by a later one (holes):
// a request is admitted if it is newer than the highest, or fills a hole; anything else (the
// highest again, a timestamp applied already, or one older than the window) is a duplicate and
// changes nothing. A client's first request opens its window with kOpening holes below it.
//
// The encoding is part of the replicated state (stored under keys::kSession, in images and state
// digests): every replica that applies the same entries holds the same bytes.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace synod::kv {

class SessionWindow {
 public:
  static constexpr uint64_t kWindow = 4096;
  static constexpr uint64_t kOpening = 256;

  // A window that has admitted nothing.
  SessionWindow() = default;
  // nullopt on malformed bytes.
  static std::optional<SessionWindow> decode(std::string_view bytes);
  std::string encode() const;

  // True (and recorded) if `timestamp` takes effect; false for a duplicate.
  bool admit(uint64_t timestamp);
  // The highest timestamp admitted (0: none).
  uint64_t highest() const { return highest_; }

 private:
  uint64_t highest_ = 0;
  // bit i: highest_ - 1 - i was skipped over and may still come.
  std::bitset<kWindow> holes_;
};

}  // namespace synod::kv
