// Consistent global snapshots (Chandy and Lamport, "Distributed Snapshots: Determining Global
// States of Distributed Systems", TOCS 1985): one process's part of the marker algorithm, as a
// pure value its host drives. Channels are FIFO and reliable, one per ordered pair of processes.
//
//   - The initiator records its local state and sends a marker on every outgoing channel before
//     it sends anything else (start()).
//   - A process receiving its first marker of a snapshot (on channel c) records its local state,
//     records c as empty, and sends markers on every outgoing channel; from then on it records
//     every message arriving on each other incoming channel until that channel's marker comes.
//   - Once a marker came in on every incoming channel the process's part is complete: its local
//     state and, per incoming channel, the messages that were in flight on it at the cut.
//
// The recorded cut is consistent: a message recorded as received is recorded as sent, and a
// message sent before the sender's cut and received after the receiver's is in exactly one
// channel state. Summing the local states and the channel states therefore gives a state the
// system could have passed through (tests/unit/cut_test.cpp checks this on a bank whose total
// never changes).
//
// Not thread-safe. One recorder takes part in one snapshot at a time; a marker of a newer
// snapshot ends the one in progress (its part is then abandoned, complete() stays false).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace synod::snapshot {

using ProcessId = uint64_t;

struct Recorded {
  uint64_t snapshot = 0;
  std::string local;                                       // the local state at the cut
  std::map<ProcessId, std::vector<std::string>> channels;  // incoming channel -> in flight
};

// A known bug that tests plant to prove that the cut's check catches it.
struct CutBugs {
  // Messages arriving between the local cut and a channel's marker are not recorded.
  bool ignore_in_flight = false;
};

class CutRecorder {
 public:
  CutRecorder(ProcessId self, std::set<ProcessId> incoming, CutBugs bugs = {});

  // Starts snapshot `id` here with local state `local`. Returns false (and does nothing) if
  // this process already takes part in it or in a newer one. On true, the host sends a marker
  // of `id` on every outgoing channel before any other message.
  bool start(uint64_t id, std::string local);
  // A marker of snapshot `id` arrived from `from`. If it is the first of that snapshot here,
  // `local` is recorded (the host passes its state as it is now) and the result is true: the
  // host sends a marker on every outgoing channel before any other message.
  bool on_marker(ProcessId from, uint64_t id, const std::string& local);
  // An application message arrived from `from` (after the host applied it to its state).
  void on_message(ProcessId from, const std::string& payload);

  // Every incoming channel's marker came: recorded() is this process's part of the cut.
  bool complete() const { return recording_.empty() && current_ != 0; }
  std::optional<uint64_t> current() const;
  const Recorded& recorded() const { return recorded_; }

 private:
  void begin(uint64_t id, std::string local);

  ProcessId self_;
  std::set<ProcessId> incoming_;
  CutBugs bugs_;
  uint64_t current_ = 0;           // the snapshot in progress or done (0: none yet)
  std::set<ProcessId> recording_;  // incoming channels whose marker has not come
  Recorded recorded_;
};

}  // namespace synod::snapshot
