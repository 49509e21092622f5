#include "storage/rocks_backend.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <cstdio>
#include <cstdlib>

#include "base/assert.h"

namespace synod::storage {
namespace {

[[noreturn]] void fatal(const char* what, const rocksdb::Status& status) {
  std::fprintf(stderr, "synod storage: rocksdb %s failed: %s\n", what, status.ToString().c_str());
  std::abort();
}

rocksdb::Slice slice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

rocksdb::Options make_options(const RocksOptions& opts) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.write_buffer_size = opts.write_buffer_bytes;
  options.max_write_buffer_number = 2;
  options.max_background_jobs = 2;
  options.level_compaction_dynamic_level_bytes = true;
  // Every put reads the key's current version first; a memtable bloom filter answers most of
  // those lookups without walking the skiplist.
  options.memtable_prefix_bloom_size_ratio = 0.05;
  options.memtable_whole_key_filtering = true;
  // Not memtable_insert_with_hint_prefix_extractor: RocksDB 7.8 shares the hints between the
  // point and the range-tombstone memtables, and a DeleteRange (compaction, restore) then
  // trips its skiplist's ordering assertion.
  // Values are small and every put reads its key's current row: decompressing blocks on those
  // reads cost more CPU than the disk space saved.
  options.compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
  // Index and filter blocks stay with their table readers, outside the block cache: every put
  // looks up its key's current version, and with the filters in a 32 MiB cache shared with data
  // blocks they were evicted and re-read from disk on most lookups once the store passed a few
  // hundred thousand keys (a profile showed a fifth of the CPU in those reads). They cost about
  // 10 bits per row (a few MiB at 1M keys).
  table.cache_index_and_filter_blocks = false;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.format_version = 5;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

}  // namespace

RocksBackend::RocksBackend(std::unique_ptr<rocksdb::DB> db, bool use_wal)
    : db_(std::move(db)), use_wal_(use_wal) {}

RocksBackend::~RocksBackend() {
  if (db_) db_->Close().PermitUncheckedError();
}

kv::Expected<std::unique_ptr<RocksBackend>, std::string> RocksBackend::open(
    const std::string& dir, const RocksOptions& options) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(make_options(options), dir, &raw);
  if (!status.ok()) {
    return kv::Unexpected{"cannot open RocksDB at " + dir + ": " + status.ToString()};
  }
  return std::unique_ptr<RocksBackend>(
      new RocksBackend(std::unique_ptr<rocksdb::DB>(raw), options.use_wal));
}

namespace {

// Reads of the data as it is now (`snapshot` null) or as a RocksDB snapshot holds it.
std::optional<std::string> get_at(rocksdb::DB* db, const rocksdb::Snapshot* snapshot,
                                  std::string_view key) {
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  std::string value;
  rocksdb::Status status = db->Get(read, slice(key), &value);
  if (status.IsNotFound()) return std::nullopt;
  if (!status.ok()) fatal("get", status);
  return value;
}

void scan_at(rocksdb::DB* db, const rocksdb::Snapshot* snapshot, std::string_view begin,
             std::string_view end, const kv::Backend::Visitor& visitor) {
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  rocksdb::Slice upper = slice(end);
  if (!end.empty()) read.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read));
  for (it->Seek(slice(begin)); it->Valid(); it->Next()) {
    if (!visitor(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  if (!it->status().ok()) fatal("scan", it->status());
}

// A RocksDB snapshot seen as a read-only Backend.
class PinnedView final : public kv::Backend {
 public:
  explicit PinnedView(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~PinnedView() override { db_->ReleaseSnapshot(snapshot_); }
  PinnedView(const PinnedView&) = delete;
  PinnedView& operator=(const PinnedView&) = delete;

  std::optional<std::string> get(std::string_view key) const override {
    return get_at(db_, snapshot_, key);
  }
  void scan(std::string_view begin, std::string_view end, const Visitor& visitor) const override {
    scan_at(db_, snapshot_, begin, end, visitor);
  }
  void write(kv::WriteBatch) override { SYNOD_ASSERT(!"a pinned view is read-only"); }
  void sync() override {}
  uint64_t approximate_size_bytes() const override { return 0; }
  void defragment() override {}

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

}  // namespace

std::optional<std::string> RocksBackend::get(std::string_view key) const {
  return get_at(db_.get(), nullptr, key);
}

void RocksBackend::scan(std::string_view begin, std::string_view end,
                        const Visitor& visitor) const {
  scan_at(db_.get(), nullptr, begin, end, visitor);
}

std::shared_ptr<const kv::Backend> RocksBackend::pin() const {
  return std::make_shared<PinnedView>(db_.get());
}

void RocksBackend::write(kv::WriteBatch batch) {
  rocksdb::WriteBatch wb;
  for (const kv::WriteBatch::Op& op : batch.ops()) {
    rocksdb::Status status;
    switch (op.kind) {
      case kv::WriteBatch::Kind::kPut:
        status = wb.Put(op.key, op.value);
        break;
      case kv::WriteBatch::Kind::kDelete:
        status = wb.Delete(op.key);
        break;
      case kv::WriteBatch::Kind::kDeleteRange:
        status = wb.DeleteRange(op.key, op.value);
        break;
    }
    if (!status.ok()) fatal("batch", status);
  }
  rocksdb::WriteOptions options;
  options.sync = false;  // see the header: the Raft WAL carries durability
  options.disableWAL = !use_wal_;
  rocksdb::Status status = db_->Write(options, &wb);
  if (!status.ok()) fatal("write", status);
}

void RocksBackend::sync() {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  rocksdb::Status status = use_wal_ ? db_->SyncWAL() : db_->Flush(flush);
  if (!status.ok()) fatal("sync", status);
}

uint64_t RocksBackend::approximate_size_bytes() const {
  uint64_t sst = 0;
  uint64_t mem = 0;
  db_->GetIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &sst);
  db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &mem);
  return sst + mem;
}

void RocksBackend::defragment() {
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  rocksdb::Status status = db_->CompactRange(options, nullptr, nullptr);
  if (!status.ok()) fatal("compact range", status);
}

}  // namespace synod::storage
