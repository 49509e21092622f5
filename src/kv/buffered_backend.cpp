#include "kv/buffered_backend.h"

#include <algorithm>

namespace synod::kv {

void BufferedBackend::write(WriteBatch batch) {
  const bool has_range_delete = std::any_of(
      batch.ops().begin(), batch.ops().end(),
      [](const WriteBatch::Op& op) { return op.kind == WriteBatch::Kind::kDeleteRange; });
  if (has_range_delete) {
    // A range delete cannot live in the overlay; keep batch order by writing through.
    flush();
    inner_.write(std::move(batch));
    return;
  }
  for (WriteBatch::Op& op : batch.mutable_ops()) {
    if (op.kind == WriteBatch::Kind::kPut) {
      view_->put(std::move(op.key), std::move(op.value));
    } else {
      view_->del(std::move(op.key));
    }
  }
}

void BufferedBackend::flush() {
  if (view_->empty()) return;
  inner_.write(view_->take_batch());
  view_ = std::make_unique<BatchView>(inner_);
}

}  // namespace synod::kv
