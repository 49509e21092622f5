// Snapshot files and state images. A snapshot file is read back from disk at start; an image
// arrives from a peer (FetchState) and replaces a member's whole state machine. A bad file must
// be refused with an error; a bad image must be refused and change nothing; an image that is
// accepted must leave a store whose reads work.
//
// Input: a mode byte, then by mode & 3:
//   0  a snapshot file as is;
//   1  u16 meta length, meta, data: framed as a snapshot file with valid checksums;
//   2  an image as is;
//   3  the (varint length, bytes) key/value pairs of an image body, encoded by encode_image
//      (valid checksum and count), so restore's checks of the tables themselves are reached.
// A file that reads back has its data restored as an image.
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "kv/image.h"
#include "kv/mem_backend.h"
#include "kv/store.h"
#include "storage/snapshot_file.h"
#include "storage/wal_crc32c.h"

namespace synod {
namespace {

constexpr size_t kMaxPairs = 512;
constexpr size_t kMaxVisits = 4096;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// A snapshot file around `meta` and `data` (layout: storage/snapshot_file.h).
std::string frame_snapshot_file(std::string_view meta, std::string_view data) {
  std::string covered;
  put_u32(covered, 1);
  put_u32(covered, static_cast<uint32_t>(meta.size()));
  covered += meta;
  std::string file = "SYNODSNP" + covered;
  put_u32(file, storage::crc32c(covered));
  file += data;
  put_u32(file, storage::crc32c(data));
  return file;
}

std::optional<uint64_t> take_varint(fuzz::ByteReader& in) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const uint8_t b = in.byte();
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  return std::nullopt;
}

std::string image_of_pairs(fuzz::ByteReader& in) {
  kv::MemBackend backend;
  kv::WriteBatch batch;
  for (size_t n = 0; n < kMaxPairs && !in.empty(); ++n) {
    const std::optional<uint64_t> key_bytes = take_varint(in);
    if (!key_bytes) break;
    const std::string_view key = in.take(*key_bytes);
    const std::optional<uint64_t> value_bytes = take_varint(in);
    if (!value_bytes) break;
    batch.put(std::string(key), std::string(in.take(*value_bytes)));
  }
  backend.write(std::move(batch));
  return kv::encode_image(backend);
}

// Reads a restored store the ways a member does: ranges, hashes, the history, leases, members
// and the auth tables. None of them may crash on a state an image brought in.
void exercise_reads(const kv::Store& store) {
  etcdserverpb::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  all.set_limit(64);
  (void)store.range(all);
  all.set_revision(store.revision() - 1);
  (void)store.range(all);
  all.set_revision(0);
  all.set_count_only(true);
  (void)store.range(all);
  (void)store.hash_kv(0);
  (void)store.hash_kv(store.compact_revision() + 1);
  (void)store.members();
  (void)store.lessor_epoch();
  size_t visits = 0;
  for (int64_t id : store.lease_ids()) {
    if (++visits > 64) break;
    (void)store.lease(id);
  }
  visits = 0;
  store.for_each_revision([&](const kv::Store::RevisionEntry&) { ++visits; });
  store.for_each_event(store.compact_revision() + 1, store.revision(),
                       [&](const mvccpb::Event&) { return ++visits < kMaxVisits; });
  const kv::AuthStore& auth = store.auth();
  for (const std::string& name : auth.user_names()) {
    const kv::Caller caller{name, auth.revision()};
    (void)auth.check(caller, "a", std::string(1, '\0'), kv::Access::kRead);
    (void)auth.check(caller, "key", "", kv::Access::kWrite);
    (void)auth.check_admin(caller);
  }
  for (const std::string& name : auth.role_names()) (void)auth.role(name);
}

// Restores `image` over a store that holds one key: refused, nothing may change; accepted, the
// store must read, and its own image restore to the same hash.
void restore_image(std::string_view image) {
  kv::MemBackend backend;
  kv::Store store(backend);
  synodpb::Request put;
  put.mutable_put()->set_key("k");
  put.mutable_put()->set_value("v");
  (void)store.apply(1, put);
  const std::string before = store.image();
  if (!store.restore(image)) {
    if (store.image() != before) fuzz::property_failed("a refused image changed the store");
    return;
  }
  exercise_reads(store);
  kv::MemBackend copy_backend;
  kv::Store copy(copy_backend);
  if (!copy.restore(store.image())) fuzz::property_failed("a restored store's image is refused");
  const auto hash = store.hash_kv(0);
  const auto copy_hash = copy.hash_kv(0);
  if (hash.has_value() != copy_hash.has_value() ||
      (hash.has_value() && hash.value().hash != copy_hash.value().hash))
    fuzz::property_failed("a store and the store restored from its image hash differently");
}

const fuzz::ScratchDir& scratch() {
  static const fuzz::ScratchDir dir;
  return dir;
}

}  // namespace
}  // namespace synod

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace synod;
  fuzz::ByteReader in(data, size);
  const uint8_t mode = in.byte() & 3;
  if (mode >= 2) {
    restore_image(mode == 2 ? std::string(in.rest()) : image_of_pairs(in));
    return 0;
  }
  std::string file;
  if (mode == 0) {
    file = in.rest();
  } else {
    const std::string_view meta = in.take(in.u16());
    file = frame_snapshot_file(meta, in.rest());
  }
  const std::filesystem::path path = scratch().path() / "snapshot.snap";
  fuzz::write_file(path, file);
  raft::Snapshot snapshot;
  storage::SnapshotFileSummary summary;
  if (storage::read_snapshot_file(path.string(), &snapshot, &summary).ok()) {
    if (summary.data_bytes != snapshot.data.size())
      fuzz::property_failed("a snapshot file read back with another data length");
    restore_image(snapshot.data);
  }
  return 0;
}
