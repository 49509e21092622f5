// kv::BufferedBackend: a Backend that collects writes in memory and hands them to the backend
// beneath in one batch at flush(), so the server applies a whole Ready's committed entries
// (each one Store::apply with its own applied index) with a single storage write.
//
// Reads see the buffered writes. Atomicity holds at flush granularity: after a crash the
// backend beneath holds some flushed prefix of batches, each with the applied index of its last
// entry, so the Raft log replays from exactly there. A batch holding a range delete (compaction)
// is written through at once, after a flush of what was buffered before it.
//
// Not thread-safe, as every Backend: the server calls it under the store's lock.
#pragma once

#include <memory>

#include "kv/backend.h"
#include "kv/batch_view.h"

namespace synod::kv {

class BufferedBackend final : public Backend {
 public:
  explicit BufferedBackend(Backend& inner)
      : inner_(inner), view_(std::make_unique<BatchView>(inner)) {}

  std::optional<std::string> get(std::string_view key) const override { return view_->get(key); }
  void scan(std::string_view begin, std::string_view end, const Visitor& visitor) const override {
    view_->scan(begin, end, visitor);
  }
  void write(WriteBatch batch) override;
  // Writes what is buffered to the backend beneath (not durably).
  void flush();
  void sync() override {
    flush();
    inner_.sync();
  }
  uint64_t approximate_size_bytes() const override { return inner_.approximate_size_bytes(); }
  void defragment() override {
    flush();
    inner_.defragment();
  }
  bool buffered() const { return !view_->empty(); }

 private:
  Backend& inner_;
  std::unique_ptr<BatchView> view_;
};

}  // namespace synod::kv
