// Helpers shared by the storage tests: a temp directory per test, entry builders, file surgery.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/consensus/types.h"
#include "storage/wal.h"

namespace synod::storage::testing {

// A fresh directory from mkdtemp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Entries first..first+count-1 of `term`, with data naming the index and term (`pad` extra bytes).
std::vector<raft::Entry> make_entries(uint64_t first, uint64_t count, uint64_t term,
                                      size_t pad = 0);
raft::HardState hard_state(uint64_t term, uint64_t vote, uint64_t commit);

Wal::Options options(const std::string& dir, uint64_t segment_bytes = 64ull << 20,
                     uint64_t zero_ahead_bytes = Wal::Options{}.zero_ahead_bytes);

// Segment paths in `dir`/wal, in seq order.
std::vector<std::string> segment_paths(const std::string& dir);
std::vector<std::string> snapshot_names(const std::string& dir);
std::string read_bytes(const std::string& path);
void write_bytes(const std::string& path, const std::string& bytes);
uint64_t file_size(const std::string& path);
void truncate_to(const std::string& path, uint64_t size);
// Overwrites bytes [from, to) with zeros: a write into zeros written ahead that never reached
// the disk.
void zero_range(const std::string& path, uint64_t from, uint64_t to);
void flip_byte(const std::string& path, uint64_t offset);
// Concatenated bytes of every file under `dir`, with names: equal iff nothing changed.
std::string dir_fingerprint(const std::string& dir);

}  // namespace synod::storage::testing
