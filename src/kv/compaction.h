// MVCC compaction (etcd's Compact): drops history no read at or above the compact revision can
// see. For each key, the newest version at or below the revision survives unless it is a
// tombstone; every version above it survives. Revision-log entries at or below it go too (a
// watch cannot start there any more).
#pragma once

#include <cstdint>

#include "kv/batch_view.h"

namespace synod::kv {

// Records the deletions in view. Precondition: 0 < revision <= the store's revision.
void compact_history(BatchView& view, int64_t revision);

}  // namespace synod::kv
