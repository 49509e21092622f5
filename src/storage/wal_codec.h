// Little-endian encoding of the values the WAL and snapshot files store.
//
// The writer appends to a caller-owned buffer so that a whole sync batch is encoded in place,
// without intermediate strings. The reader never reads past its span: a short or malformed
// payload sets `failed()` and yields zeros, so a decoder checks once at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "core/consensus/types.h"

namespace synod::storage {

// The WAL's writer and reader: base's byte codec plus the consensus values the log stores.
class ByteWriter : public base::ByteWriter {
 public:
  using base::ByteWriter::ByteWriter;
  void conf(const raft::ConfState& c);
  void meta(const raft::SnapshotMeta& m);
  void hard_state(const raft::HardState& hs);
};

class ByteReader : public base::ByteReader {
 public:
  using base::ByteReader::ByteReader;
  raft::ConfState conf();
  raft::SnapshotMeta meta();
  raft::HardState hard_state();
};

using base::load_le32;
using base::store_le32;

}  // namespace synod::storage
