// The bbolt writer and the etcd snapshot image, checked by the real etcdctl (3.4): `snapshot
// status` opens the file with bbolt, runs bbolt's consistency check (every page reachable or
// free, exactly once) and hashes every bucket name, key and value with CRC-32C, so a status
// whose hash equals ours proves etcdctl read back exactly the entries written.
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "kv/crc32c.h"
#include "kv/mem_backend.h"
#include "kv/store.h"
#include "storage/bbolt_writer.h"
#include "storage/etcd_snapshot.h"

namespace synod::storage {
namespace {

namespace fs = std::filesystem;

constexpr const char* kEtcdctl = "/usr/bin/etcdctl";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) r.output.append(buf, n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

struct Status {
  uint32_t hash = 0;
  int64_t revision = 0;
  int64_t total_key = 0;
  int64_t total_size = 0;
};

int64_t json_number(const std::string& json, const std::string& field) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + field + "\":(-?[0-9]+)"))) return -1;
  return std::stoll(m[1]);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "synod-bbolt-XXXXXX").string();
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Runs `etcdctl snapshot status` on the file; fails the test if etcdctl is missing or refuses.
std::optional<Status> etcdctl_status(const fs::path& db) {
  if (access(kEtcdctl, X_OK) != 0) {
    ADD_FAILURE() << kEtcdctl << " not found: install etcd-client (etcdctl 3.4), as CI does";
    return std::nullopt;
  }
  CommandResult r = run(std::string("ETCDCTL_API=3 ") + kEtcdctl + " snapshot status '" +
                        db.string() + "' -w json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return std::nullopt;
  return Status{.hash = static_cast<uint32_t>(json_number(r.output, "hash")),
                .revision = json_number(r.output, "revision"),
                .total_key = json_number(r.output, "totalKey"),
                .total_size = json_number(r.output, "totalSize")};
}

// What etcdctl 3.4's Status computes: CRC-32C over bucket names, keys and values in order, and
// the number of entries over all buckets.
Status expected_status(const BoltBuckets& buckets, int64_t revision, size_t file_bytes) {
  Status s{.revision = revision, .total_size = static_cast<int64_t>(file_bytes)};
  for (const auto& [name, entries] : buckets) {
    s.hash = kv::crc32c_extend(s.hash, name);
    for (const auto& [k, v] : entries) s.hash = kv::crc32c_extend(kv::crc32c_extend(s.hash, k), v);
    s.total_key += static_cast<int64_t>(entries.size());
  }
  return s;
}

void expect_status(const Status& got, const Status& want) {
  EXPECT_EQ(got.revision, want.revision);
  EXPECT_EQ(got.total_key, want.total_key);
  EXPECT_EQ(got.total_size, want.total_size);
  EXPECT_EQ(got.hash, want.hash) << "etcdctl read back different bytes than were written";
}

// Writes buckets, runs etcdctl status on them and compares with what they hold.
void check_with_etcdctl(const BoltBuckets& buckets, int64_t revision) {
  std::string image = bolt_image(buckets);
  ASSERT_EQ(image.size() % kBoltPageSize, 0u);
  TempDir dir;
  write_file(dir.path() / "snap.db", image);
  std::optional<Status> got = etcdctl_status(dir.path() / "snap.db");
  if (got) expect_status(*got, expected_status(buckets, revision, image.size()));
}

BoltEntries revision_entries(int64_t first, int64_t last, size_t value_bytes) {
  BoltEntries out;
  for (int64_t rev = first; rev <= last; ++rev) {
    out.emplace_back(etcd_revision_key(rev, 0, false), std::string(value_bytes, 'v'));
  }
  return out;
}

uint64_t read_le(const std::string& image, size_t at, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(image[at + i]);
  return v;
}

TEST(BoltWriter, EmptyDatabaseHasMetaFreelistAndRootPages) {
  std::string image = bolt_image({});
  ASSERT_EQ(image.size(), 4 * kBoltPageSize);
  for (uint64_t page = 0; page < 2; ++page) {
    size_t at = page * kBoltPageSize;
    EXPECT_EQ(read_le(image, at, 8), page);              // page id
    EXPECT_EQ(read_le(image, at + 8, 2), 0x04u);         // meta page
    EXPECT_EQ(read_le(image, at + 16, 4), 0xED0CDAEDu);  // magic
    EXPECT_EQ(read_le(image, at + 20, 4), 2u);           // version
    EXPECT_EQ(read_le(image, at + 24, 4), kBoltPageSize);
    EXPECT_EQ(read_le(image, at + 56, 8), 4u);    // high-water mark
    EXPECT_EQ(read_le(image, at + 64, 8), page);  // txid
  }
  EXPECT_EQ(read_le(image, 2 * kBoltPageSize + 8, 2), 0x10u);  // freelist
  EXPECT_EQ(read_le(image, 3 * kBoltPageSize + 8, 2), 0x02u);  // root leaf
}

TEST(BoltWriter, RejectsKeysOutOfOrderOrEmpty) {
  EXPECT_FALSE(bolt_input_problem({{"b", {{"a", "1"}, {"b", "2"}}}}));
  EXPECT_TRUE(bolt_input_problem({{"b", {{"b", "1"}, {"a", "2"}}}}));
  EXPECT_TRUE(bolt_input_problem({{"b", {{"a", "1"}, {"a", "2"}}}}));
  EXPECT_TRUE(bolt_input_problem({{"b", {{"", "1"}}}}));
  EXPECT_TRUE(bolt_input_problem({{"", {}}}));
  EXPECT_TRUE(bolt_input_problem({{"b", {{std::string(kBoltMaxKeySize + 1, 'k'), "1"}}}}));
}

TEST(BoltWriter, EtcdctlReadsSmallBuckets) {
  BoltBuckets buckets;
  buckets["key"] = revision_entries(2, 9, 20);
  buckets["meta"] = {{"consistent_index", std::string(8, '\x07')}};
  buckets["members"];  // empty
  buckets["zeta"] = {{std::string("\0\x01", 2), ""}, {"\xff", std::string(300, 'z')}};
  check_with_etcdctl(buckets, 9);
}

TEST(BoltWriter, EtcdctlReadsLargeBucketsWithBranchAndOverflowPages) {
  std::mt19937_64 rng(20240611);
  SCOPED_TRACE("seed 20240611");
  BoltBuckets buckets;
  BoltEntries& big = buckets["big"];
  for (int i = 0; i < 200000; ++i) {
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "k%09d", i);
    std::string key = prefix + std::string(rng() % 40, 'x');
    big.emplace_back(std::move(key), std::string(rng() % 200, static_cast<char>('a' + i % 26)));
  }
  big[1234].second = std::string(100 * 1024, 'O');  // overflows a leaf page
  big[5678].first += std::string(6000, 'K');        // a key larger than a page, in a branch
  big[150000].second = std::string(3 * kBoltPageSize, 'P');
  buckets["key"] = revision_entries(2, 20001, 8);  // a second multi-level tree
  buckets["tiny"] = {{"only", "one"}};
  // Keys of 20 KB: every leaf and every branch page overflows (a branch still takes two).
  BoltEntries& wide = buckets["wide"];
  for (char c = 'A'; c < 'A' + 40; ++c) wide.emplace_back(c + std::string(20000, 'w'), "v");
  check_with_etcdctl(buckets, 20001);
}

// ----- etcd_snapshot_image ----------------------------------------------------------------

class EtcdSnapshot : public ::testing::Test {
 protected:
  void apply(const synodpb::Request& req) { ASSERT_TRUE(store_.apply(++index_, req).ok()); }
  void put(const std::string& key, const std::string& value) {
    synodpb::Request req;
    req.mutable_put()->set_key(key);
    req.mutable_put()->set_value(value);
    apply(req);
  }
  void del(const std::string& key) {
    synodpb::Request req;
    req.mutable_delete_range()->set_key(key);
    apply(req);
  }
  void compact(int64_t revision) {
    synodpb::Request req;
    req.mutable_compaction()->set_revision(revision);
    apply(req);
  }
  // Puts, overwrites, deletes (one key recreated) and a compaction in the middle.
  void write_history() {
    for (int i = 0; i < 50; ++i) put("key" + std::to_string(i), "v" + std::to_string(i));
    for (int i = 0; i < 50; i += 5) put("key" + std::to_string(i), "again");
    for (int i = 1; i < 50; i += 7) del("key" + std::to_string(i));
    compact(store_.revision() - 3);
    put("key1", "back");
    put("big", std::string(10000, 'b'));
    del("key2");
  }

  kv::MemBackend backend_;
  kv::Store store_{backend_};
  uint64_t index_ = 0;
};

TEST_F(EtcdSnapshot, KeyBucketHoldsEveryRevisionInEtcdsLayout) {
  put("a", "1");  // 2
  del("a");       // 3
  BoltBuckets buckets = etcd_backend_buckets(store_);
  const BoltEntries& keys = buckets["key"];
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].first, std::string("\0\0\0\0\0\0\0\x02_\0\0\0\0\0\0\0\0", 17));
  EXPECT_EQ(keys[1].first, std::string("\0\0\0\0\0\0\0\x03_\0\0\0\0\0\0\0\0t", 18));
  mvccpb::KeyValue kv;
  ASSERT_TRUE(kv.ParseFromString(keys[0].second));
  EXPECT_EQ(kv.key(), "a");
  EXPECT_EQ(kv.value(), "1");
  EXPECT_EQ(kv.create_revision(), 2);
  EXPECT_EQ(kv.version(), 1);
  mvccpb::KeyValue tombstone;
  tombstone.set_key("a");
  EXPECT_EQ(keys[1].second, tombstone.SerializeAsString());
  EXPECT_EQ(buckets["meta"],
            (BoltEntries{{"consistent_index", std::string("\0\0\0\0\0\0\0\x02", 8)}}));
}

// Two shards' stores wrote at the same revisions: the merged key bucket keeps every version,
// in revision order, the second store's at the next sub-revisions; etcdctl reads it back.
TEST_F(EtcdSnapshot, SeveralStoresMergeInRevisionOrderWithDistinctSubRevisions) {
  put("a", "1");  // 2
  put("b", "1");  // 3
  kv::MemBackend other_backend;
  kv::Store other(other_backend);
  synodpb::Request req;
  req.mutable_put()->set_key("c");
  other.apply(1, req);  // 2
  req.mutable_put()->set_key("d");
  other.apply(2, req);  // 3
  req.mutable_put()->set_key("e");
  other.apply(3, req);  // 4
  BoltBuckets buckets = etcd_backend_buckets({&store_, &other});
  const BoltEntries& keys = buckets["key"];
  ASSERT_EQ(keys.size(), 5u);
  EXPECT_EQ(keys[0].first, etcd_revision_key(2, 0, false));
  EXPECT_EQ(keys[1].first, etcd_revision_key(2, 1, false));
  EXPECT_EQ(keys[2].first, etcd_revision_key(3, 0, false));
  EXPECT_EQ(keys[3].first, etcd_revision_key(3, 1, false));
  EXPECT_EQ(keys[4].first, etcd_revision_key(4, 0, false));
  std::vector<std::string> order;
  for (const auto& [k, v] : keys) {
    mvccpb::KeyValue kv;
    ASSERT_TRUE(kv.ParseFromString(v));
    order.push_back(kv.key());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"a", "c", "b", "d", "e"}));
  TempDir dir;
  const std::string image = etcd_snapshot_image({&store_, &other});
  write_file(dir.path() / "snap.db", image);
  std::optional<Status> got = etcdctl_status(dir.path() / "snap.db");
  if (got) expect_status(*got, expected_status(buckets, 4, image.size()));
}

TEST_F(EtcdSnapshot, CompactionIsRecordedAsFinishedAndScheduled) {
  write_history();
  BoltBuckets buckets = etcd_backend_buckets(store_);
  std::string rev = etcd_revision_key(store_.compact_revision(), 0, false);
  EXPECT_EQ(buckets["meta"][1], (std::pair<std::string, std::string>("finishedCompactRev", rev)));
  EXPECT_EQ(buckets["meta"][2], (std::pair<std::string, std::string>("scheduledCompactRev", rev)));
}

TEST_F(EtcdSnapshot, EtcdctlStatusReportsTheStoresRevisionAndKeys) {
  write_history();
  std::string image = etcd_snapshot_image(store_);
  TempDir dir;
  write_file(dir.path() / "snap.db", image);
  std::optional<Status> got = etcdctl_status(dir.path() / "snap.db");
  if (got)
    expect_status(*got,
                  expected_status(etcd_backend_buckets(store_), store_.revision(), image.size()));
}

TEST_F(EtcdSnapshot, EtcdctlRestoresTheImage) {
  write_history();
  TempDir dir;
  write_file(dir.path() / "snap.db", etcd_snapshot_image(store_));
  ASSERT_TRUE(etcdctl_status(dir.path() / "snap.db"));
  std::string restored = (dir.path() / "restored").string();
  CommandResult r =
      run(std::string("ETCDCTL_API=3 ") + kEtcdctl + " snapshot restore '" +
          (dir.path() / "snap.db").string() + "' --data-dir '" + restored + "' --skip-hash-check");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The restored backend still holds the history (restore rewrites only meta and members).
  std::optional<Status> after = etcdctl_status(fs::path(restored) / "member" / "snap" / "db");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->revision, store_.revision());
}

// The Snapshot stream is the image, padded to 512 bytes (a no-op here), then its SHA-256:
// restore then checks the hash itself and needs no --skip-hash-check.
TEST_F(EtcdSnapshot, EtcdctlRestoresTheStreamWithItsHashTrailer) {
  write_history();
  std::string stream = etcd_snapshot_image(store_);
  ASSERT_EQ(stream.size() % 512, 0u);
  unsigned char sha[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(stream.data()), stream.size(), sha);
  stream.append(reinterpret_cast<const char*>(sha), sizeof sha);
  TempDir dir;
  write_file(dir.path() / "snap.db", stream);
  if (access(kEtcdctl, X_OK) != 0) GTEST_FAIL() << kEtcdctl << " not found: install etcd-client";
  CommandResult r = run(std::string("ETCDCTL_API=3 ") + kEtcdctl + " snapshot restore '" +
                        (dir.path() / "snap.db").string() + "' --data-dir '" +
                        (dir.path() / "restored").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace synod::storage
