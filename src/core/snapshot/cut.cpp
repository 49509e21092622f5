#include "core/snapshot/cut.h"

#include <utility>

namespace synod::snapshot {

CutRecorder::CutRecorder(ProcessId self, std::set<ProcessId> incoming, CutBugs bugs)
    : self_(self), incoming_(std::move(incoming)), bugs_(bugs) {
  incoming_.erase(self_);
}

std::optional<uint64_t> CutRecorder::current() const {
  if (current_ == 0) return std::nullopt;
  return current_;
}

void CutRecorder::begin(uint64_t id, std::string local) {
  current_ = id;
  recording_ = incoming_;
  recorded_ = Recorded{};
  recorded_.snapshot = id;
  recorded_.local = std::move(local);
  for (ProcessId c : incoming_) recorded_.channels[c];  // every channel, empty so far
}

bool CutRecorder::start(uint64_t id, std::string local) {
  if (id == 0 || id <= current_) return false;
  begin(id, std::move(local));
  return true;
}

bool CutRecorder::on_marker(ProcessId from, uint64_t id, const std::string& local) {
  if (id == 0 || id < current_ || !incoming_.contains(from)) return false;
  bool first = false;
  if (id > current_) {
    begin(id, local);  // the marker's channel is recorded empty: nothing came on it since
    first = true;
  }
  recording_.erase(from);
  return first;
}

void CutRecorder::on_message(ProcessId from, const std::string& payload) {
  if (!recording_.contains(from) || bugs_.ignore_in_flight) return;
  recorded_.channels[from].push_back(payload);
}

}  // namespace synod::snapshot
