// The POSIX calls the WAL and snapshot files make, each returning a WalStatus that names the
// operation, the path and errno's text. Nothing here retries or hides a failure: in particular a
// failed fsync is reported, and the caller must treat the file's contents as unknown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "storage/wal_status.h"

namespace synod::storage {

// Owns a file descriptor; closes it on destruction (close errors there are ignored because
// durability was already decided by the fsync the owner checked).
class FileHandle {
 public:
  FileHandle() = default;
  explicit FileHandle(int fd) : fd_(fd) {}
  FileHandle(FileHandle&& o) noexcept : fd_(o.release()) {}
  FileHandle& operator=(FileHandle&& o) noexcept;
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();

 private:
  int fd_ = -1;
};

WalStatus errno_status(const char* op, const std::string& path);

// Opens with O_CLOEXEC added to `flags`.
WalStatus open_file(const std::string& path, int flags, FileHandle* out);
// Loops over short writes; one write() call in the common case.
WalStatus write_all(int fd, const char* data, size_t size, const std::string& path);
// The same with pwrite at `offset` (the file offset is left alone).
WalStatus write_all_at(int fd, const char* data, size_t size, uint64_t offset,
                       const std::string& path);
WalStatus file_size(int fd, const std::string& path, uint64_t* size);  // fstat
WalStatus sync_data(int fd, const std::string& path);                  // fdatasync
WalStatus sync_dir(const std::string& dir);  // fsync of the directory itself
// Creates `dir` if missing; `*created` says whether it did (the parent then needs a sync_dir).
WalStatus make_dir(const std::string& dir, bool* created);
WalStatus read_whole_file(const std::string& path, std::string* out);
WalStatus list_dir(const std::string& dir, std::vector<std::string>* names);
WalStatus remove_file(const std::string& path);
// Truncates to `size` bytes and fdatasyncs the file.
WalStatus truncate_file(const std::string& path, uint64_t size);
WalStatus truncate_fd(int fd, uint64_t size, const std::string& path);

std::string join_path(const std::string& dir, const std::string& name);

}  // namespace synod::storage
