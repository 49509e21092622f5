// WAL records and recovery: the bytes of segment files after a crash, a bad disk or a hand edit.
// Recovery must tell a torn tail from a corrupted middle and refuse the latter with an error;
// no segment content may crash it.
//
// Input: a mode byte, then the segments. Mode bits: 0-1 how many segments (1-3, named seq 1, 2,
// 3); 2 frame: each segment is a list of (type, u16 length, payload) that the harness frames as
// records with valid CRCs, so the payload decoders are reached without the fuzzer having to
// forge checksums; 3 open the WAL (Wal::open: recovery, then its repairs) after recovering.
// Every segment but the last is prefixed by its u16 length.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "storage/wal.h"
#include "storage/wal_crc32c.h"
#include "storage/wal_record.h"
#include "storage/wal_recovery.h"
#include "storage/wal_segment.h"

namespace synod::storage {
namespace {

constexpr size_t kMaxRecordsPerSegment = 256;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// Frames (type, payload) chunks as records with valid checksums (layout: wal_record.h).
std::string frame_records(std::string_view chunks) {
  fuzz::ByteReader in(reinterpret_cast<const uint8_t*>(chunks.data()), chunks.size());
  std::string out;
  for (size_t n = 0; !in.empty() && n < kMaxRecordsPerSegment; ++n) {
    const uint8_t type = in.byte();
    const std::string_view payload = in.take(in.u16());
    std::string rest_of_header;
    put_u32(rest_of_header, static_cast<uint32_t>(payload.size()));
    rest_of_header.push_back(static_cast<char>(type));
    rest_of_header.push_back(static_cast<char>(0xA7));
    rest_of_header.append(2, '\0');
    put_u32(out, crc32c_extend(crc32c(rest_of_header), payload.data(), payload.size()));
    out += rest_of_header;
    out += payload;
  }
  return out;
}

// Every record parse_record accepts, decoded by its type's decoder.
void walk_records(std::string_view file) {
  size_t offset = 0;
  RawRecord record;
  std::string reason;
  for (size_t n = 0; n < kMaxRecordsPerSegment && offset < file.size(); ++n) {
    if (!parse_record(file, offset, &record, &reason)) {
      (void)valid_record_after(file, offset);
      return;
    }
    if (record.total_bytes < kRecordHeaderBytes || record.total_bytes > file.size() - offset)
      fuzz::property_failed("parse_record reported a record outside the file");
    std::vector<raft::Entry> entries;
    raft::HardState hard_state;
    SnapshotMarker marker;
    SegmentHeader header;
    switch (record.type) {
      case RecordType::kEntries:
        if (decode_entries(record.payload, &entries)) {
          for (size_t i = 1; i < entries.size(); ++i)
            if (entries[i].index.value != entries[i - 1].index.value + 1)
              fuzz::property_failed("decode_entries returned entries that are not contiguous");
        }
        break;
      case RecordType::kHardState:
        (void)decode_hard_state(record.payload, &hard_state);
        break;
      case RecordType::kSnapshotMarker:
        (void)decode_marker(record.payload, &marker);
        break;
      case RecordType::kSegmentHeader:
        (void)decode_segment_header(record.payload, &header);
        break;
    }
    offset += record.total_bytes;
  }
}

const fuzz::ScratchDir& scratch() {
  static const fuzz::ScratchDir dir;
  return dir;
}

}  // namespace
}  // namespace synod::storage

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace synod;
  using namespace synod::storage;
  fuzz::ByteReader in(data, size);
  const uint8_t mode = in.byte();
  const size_t segment_count = 1 + (mode & 3) % 3;
  const bool frame = (mode & 4) != 0;
  const bool open_wal = (mode & 8) != 0;

  const fuzz::ScratchDir& dir = scratch();
  dir.clear();
  const std::filesystem::path wal_dir = dir.path() / "wal";
  std::filesystem::create_directories(wal_dir);
  std::filesystem::create_directories(dir.path() / "snap");
  for (size_t i = 0; i < segment_count; ++i) {
    const std::string_view bytes = i + 1 < segment_count ? in.take(in.u16()) : in.rest();
    const std::string file = frame ? frame_records(bytes) : std::string(bytes);
    walk_records(file);
    const SegmentName name{.seq = i + 1, .first_index = raft::Index(1)};
    fuzz::write_file(wal_dir / segment_file_name(name), file);
  }

  const Recovery recovery = recover_segments(wal_dir.string());
  if (recovery.error.empty() && recovery.segments.size() != segment_count &&
      !recovery.drop_last_segment)
    fuzz::property_failed("recovery succeeded without replaying every segment");
  if (open_wal) {
    Wal::Options options;
    options.dir = dir.path().string();
    options.segment_bytes = 1 << 16;
    options.buffer_reserve_bytes = 1 << 10;
    options.zero_ahead_bytes = 0;
    Wal::Result opened = Wal::open(options);
    // Opening may still refuse what recovery read (a marker naming a snapshot file that is not
    // there), never the other way round.
    if (opened.ok() && !recovery.error.empty())
      fuzz::property_failed("Wal::open accepted segments that recovery refused");
  }
  return 0;
}
