#include "storage/wal_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace synod::storage {

FileHandle& FileHandle::operator=(FileHandle&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

FileHandle::~FileHandle() {
  if (fd_ >= 0) ::close(fd_);
}

int FileHandle::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

WalStatus errno_status(const char* op, const std::string& path) {
  return WalStatus::error(std::string(op) + " " + path + ": " + std::strerror(errno));
}

WalStatus open_file(const std::string& path, int flags, FileHandle* out) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("open", path);
  *out = FileHandle(fd);
  return {};
}

WalStatus write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_status("write", path);
    data += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

WalStatus write_all_at(int fd, const char* data, size_t size, uint64_t offset,
                       const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_status("write", path);
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

WalStatus file_size(int fd, const std::string& path, uint64_t* size) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno_status("fstat", path);
  *size = static_cast<uint64_t>(st.st_size);
  return {};
}

WalStatus sync_data(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0) return errno_status("fdatasync", path);
  return {};
}

WalStatus sync_dir(const std::string& dir) {
  FileHandle h;
  if (WalStatus s = open_file(dir, O_RDONLY | O_DIRECTORY, &h); !s.ok()) return s;
  if (::fsync(h.get()) != 0) return errno_status("fsync", dir);
  return {};
}

WalStatus make_dir(const std::string& dir, bool* created) {
  *created = false;
  if (::mkdir(dir.c_str(), 0755) == 0) {
    *created = true;
    return {};
  }
  if (errno != EEXIST) return errno_status("mkdir", dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return errno_status("stat", dir);
  if (!S_ISDIR(st.st_mode)) return WalStatus::error(dir + " exists and is not a directory");
  return {};
}

WalStatus read_whole_file(const std::string& path, std::string* out) {
  FileHandle h;
  if (WalStatus s = open_file(path, O_RDONLY, &h); !s.ok()) return s;
  struct stat st;
  if (::fstat(h.get(), &st) != 0) return errno_status("fstat", path);
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    const ssize_t n = ::read(h.get(), out->data() + done, out->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("read", path);
    if (n == 0) break;  // shrank under us; keep what we read
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  return {};
}

WalStatus list_dir(const std::string& dir, std::vector<std::string>* names) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno_status("opendir", dir);
  names->clear();
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names->push_back(name);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) {
    errno = err;
    return errno_status("readdir", dir);
  }
  std::sort(names->begin(), names->end());
  return {};
}

WalStatus remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return errno_status("unlink", path);
  return {};
}

WalStatus truncate_file(const std::string& path, uint64_t size) {
  FileHandle h;
  if (WalStatus s = open_file(path, O_WRONLY, &h); !s.ok()) return s;
  return truncate_fd(h.get(), size, path);
}

WalStatus truncate_fd(int fd, uint64_t size, const std::string& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return errno_status("ftruncate", path);
  return sync_data(fd, path);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace synod::storage
