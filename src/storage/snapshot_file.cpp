#include "storage/snapshot_file.h"

#include <fcntl.h>

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cstdio>
#include <string_view>

#include "storage/wal_codec.h"
#include "storage/wal_crc32c.h"
#include "storage/wal_fs.h"
#include "storage/wal_record.h"

namespace synod::storage {
namespace {

constexpr std::string_view kMagic = "SYNODSNP";
constexpr uint32_t kVersion = 1;
constexpr size_t kWriteChunkBytes = 4 << 20;  // bounds each write() of a large image
constexpr size_t kMaxMetaBytes = 16 << 20;    // a conf of 2^16 members each way fits well

// magic + version + meta length + meta + meta CRC.
std::string encode_preamble(const raft::Snapshot& snapshot) {
  std::string meta;
  ByteWriter m(meta);
  m.meta(snapshot.meta);
  m.u64(snapshot.data.size());
  if (!snapshot.meta.digest.empty()) m.str(snapshot.meta.digest);  // PBFT only
  std::string out(kMagic);
  ByteWriter w(out);
  w.u32(kVersion);
  w.u32(static_cast<uint32_t>(meta.size()));
  w.bytes(meta);
  w.u32(crc32c_extend(0, out.data() + kMagic.size(), out.size() - kMagic.size()));
  return out;
}

WalStatus write_image(int fd, const std::string& data, const std::string& path, uint32_t* crc) {
  *crc = 0;
  for (size_t at = 0; at < data.size(); at += kWriteChunkBytes) {
    const size_t n = std::min(kWriteChunkBytes, data.size() - at);
    *crc = crc32c_extend(*crc, data.data() + at, n);
    if (WalStatus s = write_all(fd, data.data() + at, n, path); !s.ok()) return s;
  }
  return {};
}

WalStatus corrupt(const std::string& path, const std::string& why) {
  return WalStatus::error("snapshot file " + path + " is corrupt: " + why);
}

// Parses the preamble; on success `*data_at` is where the image starts.
WalStatus parse_preamble(const std::string& path, std::string_view file,
                         SnapshotFileSummary* summary, size_t* data_at) {
  if (file.size() < kMagic.size() + 8 || file.substr(0, kMagic.size()) != kMagic) {
    return corrupt(path, "bad magic or too short");
  }
  ByteReader r(file.substr(kMagic.size()));
  if (r.u32() != kVersion) return corrupt(path, "unknown version");
  const uint32_t meta_bytes = r.u32();
  if (meta_bytes > kMaxMetaBytes) return corrupt(path, "metadata length out of range");
  const std::string_view meta = r.bytes(meta_bytes);
  const uint32_t crc = r.u32();
  if (r.failed()) return corrupt(path, "metadata cut off");
  const size_t covered = 8 + meta_bytes;
  if (crc32c_extend(0, file.data() + kMagic.size(), covered) != crc) {
    return corrupt(path, "metadata checksum mismatch");
  }
  ByteReader mr(meta);
  summary->meta = mr.meta();
  summary->data_bytes = mr.u64();
  if (!mr.failed() && mr.remaining() > 0) {
    summary->meta.digest = std::string(mr.str(kMaxDigestBytes));
  }
  if (!mr.done()) return corrupt(path, "malformed metadata");
  *data_at = kMagic.size() + covered + 4;
  return {};
}

}  // namespace

std::string snapshot_file_name(const raft::SnapshotMeta& meta) {
  char name[64];
  std::snprintf(name, sizeof(name), "%016" PRIx64 "-%016" PRIx64 ".snap", meta.term.value,
                meta.index.value);
  return name;
}

std::optional<SnapshotFileId> parse_snapshot_file_name(const std::string& name) {
  uint64_t term = 0, index = 0;
  char rest = 0;
  if (name.size() != 16 + 1 + 16 + 5) return std::nullopt;
  if (std::sscanf(name.c_str(), "%16" SCNx64 "-%16" SCNx64 ".sna%c", &term, &index, &rest) != 3 ||
      rest != 'p') {
    return std::nullopt;
  }
  if (name != snapshot_file_name({raft::Index(index), raft::Term(term), {}})) return std::nullopt;
  return SnapshotFileId{raft::Term(term), raft::Index(index)};
}

WalStatus write_snapshot_file(const std::string& dir, const raft::Snapshot& snapshot,
                              SnapshotFileSummary* summary) {
  const std::string path = join_path(dir, snapshot_file_name(snapshot.meta));
  const std::string tmp = path + ".tmp";
  FileHandle h;
  if (WalStatus s = open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, &h); !s.ok()) return s;
  const std::string preamble = encode_preamble(snapshot);
  uint32_t crc = 0;
  if (WalStatus s = write_all(h.get(), preamble.data(), preamble.size(), tmp); !s.ok()) return s;
  if (WalStatus s = write_image(h.get(), snapshot.data, tmp, &crc); !s.ok()) return s;
  char trailer[4];
  store_le32(trailer, crc);
  if (WalStatus s = write_all(h.get(), trailer, 4, tmp); !s.ok()) return s;
  if (WalStatus s = sync_data(h.get(), tmp); !s.ok()) return s;
  h = FileHandle();
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return errno_status("rename", tmp);
  if (WalStatus s = sync_dir(dir); !s.ok()) return s;
  *summary = SnapshotFileSummary{snapshot.meta, snapshot.data.size(), crc};
  return {};
}

WalStatus read_snapshot_file(const std::string& path, raft::Snapshot* snapshot,
                             SnapshotFileSummary* summary) {
  std::string file;
  if (WalStatus s = read_whole_file(path, &file); !s.ok()) return s;
  size_t data_at = 0;
  if (WalStatus s = parse_preamble(path, file, summary, &data_at); !s.ok()) return s;
  if (file.size() - data_at < 4 || file.size() - data_at - 4 != summary->data_bytes) {
    return corrupt(path, "size does not match the recorded image length");
  }
  const uint32_t crc = crc32c_extend(0, file.data() + data_at, summary->data_bytes);
  if (crc != load_le32(file.data() + file.size() - 4)) {
    return corrupt(path, "image checksum mismatch");
  }
  summary->data_crc32c = crc;
  // Drop the preamble and trailer in place rather than copying a possibly huge image.
  file.resize(file.size() - 4);
  file.erase(0, data_at);
  snapshot->meta = summary->meta;
  snapshot->data = std::move(file);
  return {};
}

}  // namespace synod::storage
