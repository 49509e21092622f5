#include "wal_test_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace synod::storage::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "synod-wal-XXXXXX").string();
  const char* made = ::mkdtemp(pattern.data());
  if (made == nullptr) ADD_FAILURE() << "mkdtemp failed";
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::vector<raft::Entry> make_entries(uint64_t first, uint64_t count, uint64_t term, size_t pad) {
  std::vector<raft::Entry> out;
  for (uint64_t i = first; i < first + count; ++i) {
    raft::Entry e;
    e.index = raft::Index(i);
    e.term = raft::Term(term);
    e.data = "i" + std::to_string(i) + "t" + std::to_string(term) + std::string(pad, 'x');
    out.push_back(std::move(e));
  }
  return out;
}

raft::HardState hard_state(uint64_t term, uint64_t vote, uint64_t commit) {
  return raft::HardState{raft::Term(term), raft::NodeId(vote), raft::Index(commit)};
}

Wal::Options options(const std::string& dir, uint64_t segment_bytes, uint64_t zero_ahead_bytes) {
  Wal::Options o;
  o.dir = dir;
  o.segment_bytes = segment_bytes;
  o.zero_ahead_bytes = zero_ahead_bytes;
  return o;
}

namespace {
std::vector<std::string> sorted_files(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().string().ends_with(suffix)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::string> segment_paths(const std::string& dir) {
  return sorted_files(dir + "/wal", ".wal");
}

std::vector<std::string> snapshot_names(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& p : sorted_files(dir + "/snap", "")) {
    out.push_back(fs::path(p).filename().string());
  }
  return out;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

uint64_t file_size(const std::string& path) {
  return fs::file_size(path);
}

void truncate_to(const std::string& path, uint64_t size) {
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size)), 0);
}

void zero_range(const std::string& path, uint64_t from, uint64_t to) {
  std::string bytes = read_bytes(path);
  ASSERT_LE(to, bytes.size());
  std::fill(bytes.begin() + static_cast<ptrdiff_t>(from),
            bytes.begin() + static_cast<ptrdiff_t>(to), '\0');
  write_bytes(path, bytes);
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::string bytes = read_bytes(path);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5A);
  write_bytes(path, bytes);
}

std::string dir_fingerprint(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::string out;
  for (const std::string& f : files) out += f + "\n" + read_bytes(f) + "\n";
  return out;
}

}  // namespace synod::storage::testing
