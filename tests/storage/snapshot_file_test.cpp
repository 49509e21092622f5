// Snapshot files: round trip, naming, and detection of every kind of damage.
#include "storage/snapshot_file.h"

#include <gtest/gtest.h>

#include "wal_test_util.h"

namespace synod::storage {
namespace {

using namespace synod::storage::testing;

raft::Snapshot sample(size_t bytes) {
  raft::Snapshot s;
  s.meta.index = raft::Index(42);
  s.meta.term = raft::Term(7);
  s.meta.conf.voters = {raft::NodeId(1), raft::NodeId(2)};
  s.data.resize(bytes);
  for (size_t i = 0; i < bytes; ++i) s.data[i] = static_cast<char>(i * 131 + 7);
  return s;
}

TEST(SnapshotFile, NameEncodesTermAndIndexInHex) {
  const raft::SnapshotMeta meta{raft::Index(255), raft::Term(16), {}};
  EXPECT_EQ(snapshot_file_name(meta), "0000000000000010-00000000000000ff.snap");
  auto id = parse_snapshot_file_name(snapshot_file_name(meta));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->index, raft::Index(255));
  EXPECT_EQ(id->term, raft::Term(16));
  EXPECT_FALSE(parse_snapshot_file_name("0000000000000010-00000000000000ff.snap.tmp"));
  EXPECT_FALSE(parse_snapshot_file_name("junk.snap"));
}

TEST(SnapshotFile, RoundTripsALargeImageWrittenInChunks) {
  TempDir dir;
  const raft::Snapshot s = sample(9 << 20);  // spans several write chunks
  SnapshotFileSummary written;
  ASSERT_TRUE(write_snapshot_file(dir.path(), s, &written).ok());
  raft::Snapshot back;
  SnapshotFileSummary read;
  ASSERT_TRUE(read_snapshot_file(dir.path() + "/" + snapshot_file_name(s.meta), &back, &read).ok());
  EXPECT_EQ(back, s);
  EXPECT_EQ(read.data_crc32c, written.data_crc32c);
  EXPECT_EQ(read.data_bytes, s.data.size());
}

TEST(SnapshotFile, RoundTripsAPbftCheckpointDigest) {
  TempDir dir;
  raft::Snapshot s = sample(100);
  s.meta.digest = std::string(32, '\x5a');
  SnapshotFileSummary written;
  ASSERT_TRUE(write_snapshot_file(dir.path(), s, &written).ok());
  raft::Snapshot back;
  SnapshotFileSummary read;
  ASSERT_TRUE(read_snapshot_file(dir.path() + "/" + snapshot_file_name(s.meta), &back, &read).ok());
  EXPECT_EQ(back, s);
  EXPECT_EQ(read.meta.digest, s.meta.digest);
}

TEST(SnapshotFile, EveryFlippedByteIsDetected) {
  TempDir dir;
  const raft::Snapshot s = sample(64);
  SnapshotFileSummary summary;
  ASSERT_TRUE(write_snapshot_file(dir.path(), s, &summary).ok());
  const std::string path = dir.path() + "/" + snapshot_file_name(s.meta);
  const std::string good = read_bytes(path);
  for (size_t at = 0; at < good.size(); ++at) {
    write_bytes(path, good);
    flip_byte(path, at);
    raft::Snapshot back;
    WalStatus st = read_snapshot_file(path, &back, &summary);
    EXPECT_FALSE(st.ok()) << "flip at " << at;
  }
}

TEST(SnapshotFile, EveryTruncationIsDetected) {
  TempDir dir;
  const raft::Snapshot s = sample(64);
  SnapshotFileSummary summary;
  ASSERT_TRUE(write_snapshot_file(dir.path(), s, &summary).ok());
  const std::string path = dir.path() + "/" + snapshot_file_name(s.meta);
  const std::string good = read_bytes(path);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    write_bytes(path, good.substr(0, cut));
    raft::Snapshot back;
    EXPECT_FALSE(read_snapshot_file(path, &back, &summary).ok()) << "cut at " << cut;
  }
}

}  // namespace
}  // namespace synod::storage
