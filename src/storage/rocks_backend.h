// storage::RocksBackend: kv::Backend on RocksDB.
//
// Writes skip RocksDB's own WAL by default: the Raft WAL is the durability source, and the
// applied index stored with every batch says which entries to replay after a crash, so a crash
// only rolls the store back to its last flushed memtable (a consistent batch boundary) and the
// node replays the Raft log from there. sync() flushes the memtables to SST files (or, with
// use_wal, fsyncs RocksDB's WAL); the server calls it before the Raft log drops entries behind a
// snapshot. Memory is bounded: a 32 MiB block cache for data blocks, two 16 MiB memtables, and
// the tables' index and bloom filter blocks (about 10 bits per row, kept out of the cache).
//
// I/O errors are fatal (kv::Backend's contract): they are reported on stderr and abort.
// Not thread-safe for writes; see kv::Backend.
#pragma once

#include <memory>
#include <string>

#include "kv/backend.h"
#include "kv/expected.h"

namespace rocksdb {
class DB;
}

namespace synod::storage {

struct RocksOptions {
  size_t block_cache_bytes = 32u << 20;
  size_t write_buffer_bytes = 16u << 20;
  bool use_wal = false;  // see above: off saves a write() per applied entry
};

class RocksBackend final : public kv::Backend {
 public:
  // Opens (creating if missing) the database in dir. The error names the directory and
  // RocksDB's reason.
  static kv::Expected<std::unique_ptr<RocksBackend>, std::string> open(
      const std::string& dir, const RocksOptions& options = {});
  ~RocksBackend() override;
  RocksBackend(const RocksBackend&) = delete;
  RocksBackend& operator=(const RocksBackend&) = delete;

  std::optional<std::string> get(std::string_view key) const override;
  void scan(std::string_view begin, std::string_view end, const Visitor& visitor) const override;
  void write(kv::WriteBatch batch) override;
  void sync() override;
  uint64_t approximate_size_bytes() const override;
  void defragment() override;

  // The data as it is now, read-only, kept (a RocksDB snapshot) while the view lives; writes
  // after this call do not show in it. Must not outlive this backend.
  std::shared_ptr<const kv::Backend> pin() const;

 private:
  RocksBackend(std::unique_ptr<rocksdb::DB> db, bool use_wal);

  std::unique_ptr<rocksdb::DB> db_;
  bool use_wal_;
};

}  // namespace synod::storage
