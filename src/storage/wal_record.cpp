#include "storage/wal_record.h"

#include <cassert>

#include "storage/wal_codec.h"
#include "storage/wal_crc32c.h"

namespace synod::storage {
namespace {

constexpr uint8_t kMagic = 0xA7;
constexpr uint32_t kSegmentHeaderVersion = 1;
// Entries records close once their payload passes this; bigger batches take several records.
constexpr size_t kEntriesRecordSplitBytes = 4 << 20;
constexpr size_t kEntryFixedBytes = 8 + 1 + 4;

// Reserves a header at the end of `buf`; returns where it starts.
size_t begin_record(std::string& buf, RecordType type) {
  const size_t start = buf.size();
  buf.append(kRecordHeaderBytes, '\0');
  buf[start + 8] = static_cast<char>(type);
  buf[start + 9] = static_cast<char>(kMagic);
  return start;
}

// Fills the length and CRC of the record that begin_record opened at `start`.
void finish_record(std::string& buf, size_t start) {
  const size_t length = buf.size() - start - kRecordHeaderBytes;
  assert(length <= kMaxRecordPayloadBytes);
  store_le32(buf.data() + start + 4, static_cast<uint32_t>(length));
  const uint32_t crc = crc32c_extend(0, buf.data() + start + 4, kRecordHeaderBytes - 4 + length);
  store_le32(buf.data() + start, crc);
}

void write_marker(ByteWriter& w, const SnapshotMarker& m) {
  w.meta(m.meta);
  w.u8(m.keep_suffix ? 1 : 0);
  w.u64(m.data_bytes);
  w.u32(m.data_crc32c);
  if (!m.meta.digest.empty()) w.str(m.meta.digest);  // PBFT only; absent in older WALs
}

bool read_marker(ByteReader& r, SnapshotMarker* m) {
  m->meta = r.meta();
  const uint8_t keep = r.u8();
  m->keep_suffix = keep == 1;
  m->data_bytes = r.u64();
  m->data_crc32c = r.u32();
  if (!r.failed() && r.remaining() > 0) m->meta.digest = std::string(r.str(kMaxDigestBytes));
  return !r.failed() && keep <= 1;
}

bool framing_plausible(std::string_view file, size_t offset, uint32_t* length) {
  if (file.size() - offset < kRecordHeaderBytes) return false;
  const char* h = file.data() + offset;
  const auto type = static_cast<uint8_t>(h[8]);
  *length = load_le32(h + 4);
  return type >= 1 && type <= 4 && static_cast<uint8_t>(h[9]) == kMagic && h[10] == 0 &&
         h[11] == 0 && *length <= kMaxRecordPayloadBytes &&
         *length <= file.size() - offset - kRecordHeaderBytes;
}

}  // namespace

void append_entries_records(std::string& buf, const std::vector<raft::Entry>& entries) {
  size_t i = 0;
  while (i < entries.size()) {
    const size_t start = begin_record(buf, RecordType::kEntries);
    ByteWriter w(buf);
    w.u64(entries[i].index.value);
    const size_t count_at = buf.size();
    w.u32(0);  // count, patched below
    uint32_t count = 0;
    size_t payload = 0;
    do {
      const raft::Entry& e = entries[i];
      assert(e.index == entries[0].index + i && e.data.size() <= kMaxEntryDataBytes);
      w.u64(e.term.value);
      w.u8(static_cast<uint8_t>(e.type));
      w.u32(static_cast<uint32_t>(e.data.size()));
      w.bytes(e.data);
      payload += kEntryFixedBytes + e.data.size();
      ++count;
      ++i;
    } while (i < entries.size() && payload + entries[i].data.size() < kEntriesRecordSplitBytes);
    store_le32(buf.data() + count_at, count);
    finish_record(buf, start);
  }
}

void append_hard_state_record(std::string& buf, const raft::HardState& hs) {
  const size_t start = begin_record(buf, RecordType::kHardState);
  ByteWriter(buf).hard_state(hs);
  finish_record(buf, start);
}

void append_marker_record(std::string& buf, const SnapshotMarker& marker) {
  const size_t start = begin_record(buf, RecordType::kSnapshotMarker);
  ByteWriter w(buf);
  write_marker(w, marker);
  finish_record(buf, start);
}

void append_segment_header_record(std::string& buf, const SegmentHeader& header) {
  const size_t start = begin_record(buf, RecordType::kSegmentHeader);
  ByteWriter w(buf);
  w.u32(kSegmentHeaderVersion);
  w.u64(header.seq);
  w.u64(header.last_index.value);
  w.hard_state(header.hard_state);
  w.u8(header.marker ? 1 : 0);
  if (header.marker) write_marker(w, *header.marker);
  finish_record(buf, start);
}

bool parse_record(std::string_view file, size_t offset, RawRecord* out, std::string* reason) {
  assert(offset <= file.size());
  const size_t left = file.size() - offset;
  if (left < kRecordHeaderBytes) {
    *reason = "record header cut off (" + std::to_string(left) + " bytes left)";
    return false;
  }
  uint32_t length = 0;
  if (!framing_plausible(file, offset, &length)) {
    *reason = "bad record framing or length beyond the end of the file";
    return false;
  }
  const char* h = file.data() + offset;
  const uint32_t crc = crc32c_extend(0, h + 4, kRecordHeaderBytes - 4 + length);
  if (crc != load_le32(h)) {
    *reason = "record checksum mismatch";
    return false;
  }
  out->type = static_cast<RecordType>(h[8]);
  out->payload = file.substr(offset + kRecordHeaderBytes, length);
  out->total_bytes = kRecordHeaderBytes + length;
  return true;
}

bool valid_record_after(std::string_view file, size_t offset) {
  RawRecord record;
  std::string reason;
  for (size_t at = offset + 1; at + kRecordHeaderBytes <= file.size(); ++at) {
    uint32_t length = 0;
    if (!framing_plausible(file, at, &length)) continue;  // cheap filter before the CRC
    if (parse_record(file, at, &record, &reason)) return true;
  }
  return false;
}

bool decode_entries(std::string_view payload, std::vector<raft::Entry>* out) {
  ByteReader r(payload);
  const raft::Index first(r.u64());
  const uint32_t count = r.u32();
  if (r.failed() || first.value == 0 || uint64_t(count) * kEntryFixedBytes > r.remaining()) {
    return false;
  }
  out->clear();
  out->reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    raft::Entry e;
    e.index = first + i;
    e.term = raft::Term(r.u64());
    const uint8_t type = r.u8();
    e.data = std::string(r.bytes(r.u32()));
    if (r.failed() || type > 1) return false;
    e.type = static_cast<raft::EntryType>(type);
    out->push_back(std::move(e));
  }
  return r.done() && count > 0;
}

bool decode_hard_state(std::string_view payload, raft::HardState* out) {
  ByteReader r(payload);
  *out = r.hard_state();
  return r.done();
}

bool decode_marker(std::string_view payload, SnapshotMarker* out) {
  ByteReader r(payload);
  return read_marker(r, out) && r.done();
}

bool decode_segment_header(std::string_view payload, SegmentHeader* out) {
  ByteReader r(payload);
  if (r.u32() != kSegmentHeaderVersion) return false;
  out->seq = r.u64();
  out->last_index = raft::Index(r.u64());
  out->hard_state = r.hard_state();
  const uint8_t has_marker = r.u8();
  out->marker.reset();
  if (has_marker == 1) {
    SnapshotMarker m;
    if (!read_marker(r, &m)) return false;
    out->marker = m;
  }
  return has_marker <= 1 && r.done();
}

}  // namespace synod::storage
