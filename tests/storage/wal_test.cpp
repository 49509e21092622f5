// Behavior of the Wal: recovery, group commit, torn tails, corruption, snapshots.
#include "storage/wal.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "storage/wal_crc32c.h"
#include "wal_test_util.h"

namespace synod::storage {
namespace {

using namespace synod::storage::testing;

std::unique_ptr<Wal> open_ok(const Wal::Options& o, raft::Persisted* recovered = nullptr) {
  Wal::Result r = Wal::open(o);
  EXPECT_TRUE(r.ok()) << r.error;
  if (recovered != nullptr) *recovered = std::move(r.recovered);
  return std::move(r.wal);
}

raft::Persisted reopen(const Wal::Options& o) {
  raft::Persisted p;
  auto wal = open_ok(o, &p);
  return p;
}

void append_sync(Wal& wal, const std::vector<raft::Entry>& entries,
                 std::optional<raft::HardState> hs = std::nullopt) {
  ASSERT_TRUE(wal.append(entries, hs).ok());
  ASSERT_TRUE(wal.sync().ok());
}

raft::Snapshot snapshot_at(uint64_t index, uint64_t term, std::string data = "image") {
  raft::Snapshot s;
  s.meta.index = raft::Index(index);
  s.meta.term = raft::Term(term);
  s.meta.conf.voters = {raft::NodeId(1), raft::NodeId(2), raft::NodeId(3)};
  s.meta.conf.learners = {raft::NodeId(4)};
  s.data = std::move(data);
  return s;
}

TEST(Crc32c, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  const std::string long_input(1000, 'a');
  EXPECT_EQ(crc32c_extend(crc32c(long_input.substr(0, 333)), long_input.data() + 333, 667),
            crc32c(long_input));
}

TEST(Wal, EmptyDirectoryCreatesAFreshWal) {
  TempDir dir;
  raft::Persisted p;
  auto wal = open_ok(options(dir.path() + "/node"), &p);
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(p.hard_state, raft::HardState{});
  EXPECT_FALSE(p.snapshot);
  EXPECT_TRUE(p.entries.empty());
  EXPECT_EQ(segment_paths(dir.path() + "/node").size(), 1u);
  wal.reset();
  EXPECT_TRUE(reopen(options(dir.path() + "/node")).entries.empty());
}

TEST(Wal, RoundTripsEntriesAndHardState) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 5, 1), hard_state(1, 2, 3));
  append_sync(*wal, make_entries(6, 2, 2), hard_state(2, 3, 7));
  wal.reset();
  raft::Persisted p = reopen(options(dir.path()));
  std::vector<raft::Entry> want = make_entries(1, 5, 1);
  for (auto& e : make_entries(6, 2, 2)) want.push_back(e);
  EXPECT_EQ(p.entries, want);
  EXPECT_EQ(p.hard_state, hard_state(2, 3, 7));
}

TEST(Wal, ConfChangeEntryTypeAndBinaryDataSurvive) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  std::vector<raft::Entry> entries = make_entries(1, 2, 1);
  entries[0].type = raft::EntryType::kConfChange;
  entries[1].data = std::string("\0\xff\x01zero", 7);
  append_sync(*wal, entries);
  wal.reset();
  EXPECT_EQ(reopen(options(dir.path())).entries, entries);
}

TEST(Wal, ReopensAfterManyAppendsAcrossSeveralSegments) {
  TempDir dir;
  auto wal = open_ok(options(dir.path(), 4096));
  for (uint64_t i = 1; i <= 2000; i += 20) append_sync(*wal, make_entries(i, 20, 1, 10));
  EXPECT_GT(wal->segment_count(), 5u);
  wal.reset();
  raft::Persisted p;
  wal = open_ok(options(dir.path(), 4096), &p);
  EXPECT_EQ(p.entries, make_entries(1, 2000, 1, 10));
  // Appending continues in the reopened last segment.
  append_sync(*wal, make_entries(2001, 1, 1));
  wal.reset();
  EXPECT_EQ(reopen(options(dir.path(), 4096)).entries.size(), 2001u);
}

TEST(Wal, ConflictingAppendTruncatesTheSuffixAndRestartSeesTheNewSuffix) {
  TempDir dir;
  auto wal = open_ok(options(dir.path(), 512));
  append_sync(*wal, make_entries(1, 30, 1));
  append_sync(*wal, make_entries(11, 5, 2), hard_state(2, 1, 10));  // replaces 11..30
  wal.reset();
  raft::Persisted p;
  wal = open_ok(options(dir.path(), 512), &p);
  std::vector<raft::Entry> want = make_entries(1, 10, 1);
  for (auto& e : make_entries(11, 5, 2)) want.push_back(e);
  EXPECT_EQ(p.entries, want);
  EXPECT_EQ(wal->last_index(), raft::Index(15));
}

TEST(Wal, AppendLeavingAGapIsRefusedAndChangesNothing) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 3, 1));
  WalStatus s = wal->append(make_entries(5, 1, 1), std::nullopt);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("gap"), std::string::npos) << s.message();
  EXPECT_FALSE(wal->append({make_entries(4, 1, 1)[0], make_entries(6, 1, 1)[0]}, {}).ok());
  EXPECT_EQ(wal->buffered_bytes(), 0u);
  append_sync(*wal, make_entries(4, 1, 1));  // still usable
  wal.reset();
  EXPECT_EQ(reopen(options(dir.path())).entries, make_entries(1, 4, 1));
}

TEST(Wal, UnsyncedAppendsAreLostWhenTheProcessCrashes) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 3, 1), hard_state(1, 1, 1));
  ASSERT_TRUE(wal->append(make_entries(4, 10, 1), hard_state(1, 1, 12)).ok());
  const std::string before = dir_fingerprint(dir.path());
  wal.reset();  // "crash": destruction must not write the buffer
  EXPECT_EQ(dir_fingerprint(dir.path()), before);
  raft::Persisted p = reopen(options(dir.path()));
  EXPECT_EQ(p.entries, make_entries(1, 3, 1));
  EXPECT_EQ(p.hard_state, hard_state(1, 1, 1));
}

TEST(Wal, OneSyncCommitsEveryAppendSinceThePreviousOne) {
  TempDir dir;
  auto wal = open_ok(options(dir.path(), 64ull << 20, 0));
  const std::string path = segment_paths(dir.path())[0];
  const uint64_t empty = file_size(path);
  for (uint64_t i = 1; i <= 64; ++i) ASSERT_TRUE(wal->append(make_entries(i, 1, 1), {}).ok());
  EXPECT_EQ(file_size(path), empty);  // buffered, nothing written yet
  const size_t buffered = wal->buffered_bytes();
  ASSERT_TRUE(wal->sync().ok());
  EXPECT_EQ(file_size(path), empty + buffered);
  EXPECT_EQ(wal->open_segment_bytes(), empty + buffered);
  EXPECT_EQ(wal->buffered_bytes(), 0u);
}

TEST(Wal, WriteThenCommitIsASyncInTwoStepsAndKeepsWhatWasAppendedBetween) {
  TempDir dir;
  auto wal = open_ok(options(dir.path(), 64ull << 20, 0));
  const std::string path = segment_paths(dir.path())[0];
  const uint64_t empty = file_size(path);
  ASSERT_TRUE(wal->append(make_entries(1, 4, 1), hard_state(1, 1, 0)).ok());
  const size_t first = wal->buffered_bytes();
  ASSERT_TRUE(wal->write().ok());
  EXPECT_EQ(file_size(path), empty + first);  // in the file, not yet counted as synced
  EXPECT_EQ(wal->open_segment_bytes(), empty);
  ASSERT_TRUE(wal->append(make_entries(5, 2, 1), {}).ok());  // after the write: stays buffered
  const size_t second = wal->buffered_bytes() - first;
  ASSERT_TRUE(wal->commit(/*data_synced=*/true).ok());
  EXPECT_EQ(wal->open_segment_bytes(), empty + first);
  EXPECT_EQ(wal->buffered_bytes(), second);
  EXPECT_EQ(file_size(path), empty + first);
  ASSERT_TRUE(wal->sync().ok());
  EXPECT_EQ(wal->open_segment_bytes(), empty + first + second);
  wal.reset();
  raft::Persisted p = reopen(options(dir.path(), 64ull << 20, 0));
  EXPECT_EQ(p.entries, make_entries(1, 6, 1));
  EXPECT_EQ(p.hard_state, hard_state(1, 1, 0));
}

TEST(Wal, CommitsInTwoStepsRotateSegmentsAsSyncsDo) {
  TempDir dir;
  auto wal = open_ok(options(dir.path(), 4096));
  for (uint64_t i = 1; i <= 2000; i += 20) {
    ASSERT_TRUE(wal->append(make_entries(i, 20, 1, 10), {}).ok());
    ASSERT_TRUE(wal->write().ok());
    ASSERT_TRUE(wal->commit(/*data_synced=*/i % 40 == 1).ok());
  }
  EXPECT_GT(wal->segment_count(), 5u);
  wal.reset();
  EXPECT_EQ(reopen(options(dir.path(), 4096)).entries, make_entries(1, 2000, 1, 10));
}

TEST(Wal, ASyncThatPassesTheFileEndWritesZerosAheadAndTheNextSyncsWriteInsideThem) {
  TempDir dir;
  const Wal::Options o = options(dir.path(), 64ull << 20, 4096);
  auto wal = open_ok(o);
  const std::string path = segment_paths(dir.path())[0];
  const uint64_t header = file_size(path);
  append_sync(*wal, make_entries(1, 2, 1));
  const uint64_t first = wal->open_segment_bytes();
  EXPECT_EQ(file_size(path), first + 4096);
  append_sync(*wal, make_entries(3, 2, 1));
  EXPECT_GT(wal->open_segment_bytes(), first);
  EXPECT_EQ(file_size(path), first + 4096);  // inside the zeros: the file did not grow
  const std::string bytes = read_bytes(path);
  EXPECT_EQ(bytes.find_first_not_of('\0', wal->open_segment_bytes()), std::string::npos);
  EXPECT_GT(first, header);
  // Zeros after the records are the log's end, not a torn tail: nothing is cut, and the next
  // record goes right after the last one.
  wal.reset();
  raft::Persisted p;
  wal = open_ok(o, &p);
  EXPECT_EQ(p.entries, make_entries(1, 4, 1));
  EXPECT_EQ(file_size(path), first + 4096);
  append_sync(*wal, make_entries(5, 1, 1), hard_state(1, 1, 5));
  wal.reset();
  p = reopen(o);
  EXPECT_EQ(p.entries, make_entries(1, 5, 1));
  EXPECT_EQ(p.hard_state, hard_state(1, 1, 5));
}

TEST(Wal, AClosedSegmentLosesItsZerosSoOnlyTheLastOneEverEndsInZeros) {
  TempDir dir;
  const Wal::Options o = options(dir.path(), 256, 1 << 20);
  {
    auto wal = open_ok(o);
    for (uint64_t i = 1; i <= 60; i += 6) append_sync(*wal, make_entries(i, 6, 1, 8));
  }
  const std::vector<std::string> segments = segment_paths(dir.path());
  ASSERT_GE(segments.size(), 3u);
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    EXPECT_LT(file_size(segments[i]), 4096u) << segments[i];  // its records, no MiB of zeros
  }
  EXPECT_EQ(reopen(o).entries, make_entries(1, 60, 1, 8));
}

TEST(Wal, TenThousandSmallEntriesInSyncedBatchesOf64) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 1; i <= 10000; i += 64) {
    const uint64_t n = std::min<uint64_t>(64, 10001 - i);
    ASSERT_TRUE(wal->append(make_entries(i, n, 1, 16), hard_state(1, 1, i)).ok());
    ASSERT_TRUE(wal->sync().ok());
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::cout << "10000 entries, 157 syncs: " << ms.count() << " ms\n";  // a figure, not asserted
  wal.reset();
  EXPECT_EQ(reopen(options(dir.path())).entries.size(), 10000u);
}

// The torn-tail and corruption cases run with each way of growing the file: zeros written
// ahead (the default) and records only.
class WalFiles : public ::testing::TestWithParam<uint64_t> {
 protected:
  Wal::Options opts(const std::string& dir, uint64_t segment_bytes = 64ull << 20) const {
    return options(dir, segment_bytes, GetParam());
  }
};

INSTANTIATE_TEST_SUITE_P(ZeroAhead, WalFiles, ::testing::Values(uint64_t{1} << 20, uint64_t{0}),
                         [](const auto& info) {
                           return info.param == 0 ? std::string("RecordsOnly")
                                                  : std::string("ZerosAhead");
                         });

// Two synced batches in one segment: where the records of the second one start and end, and the
// segment's bytes once the Wal is closed.
struct TwoBatches {
  uint64_t prefix = 0;
  uint64_t end = 0;
  std::string path;
  std::string full;
};

TwoBatches write_two_batches(const Wal::Options& o) {
  TwoBatches b;
  {
    auto wal = open_ok(o);
    append_sync(*wal, make_entries(1, 4, 1), hard_state(1, 1, 2));
    b.prefix = wal->open_segment_bytes();
    append_sync(*wal, make_entries(5, 3, 1, 20));  // the last record
    b.end = wal->open_segment_bytes();
  }
  b.path = segment_paths(o.dir)[0];
  b.full = read_bytes(b.path);
  return b;
}

TEST_P(WalFiles, TornTailAtEveryByteOffsetOfTheLastRecordRecoversThePrefix) {
  TempDir dir;
  const TwoBatches b = write_two_batches(opts(dir.path()));
  const std::string& path = b.path;
  for (uint64_t cut = b.prefix; cut < b.end; ++cut) {
    write_bytes(path, b.full.substr(0, cut));
    raft::Persisted p = reopen(opts(dir.path()));
    EXPECT_EQ(p.entries, make_entries(1, 4, 1)) << "cut at " << cut;
    EXPECT_EQ(p.hard_state, hard_state(1, 1, 2)) << "cut at " << cut;
    EXPECT_EQ(file_size(path), b.prefix) << "torn tail not truncated, cut at " << cut;
  }
}

// A crash in the middle of a write into zeros written ahead leaves zeros where the rest of the
// record should be.
TEST_P(WalFiles, WriteTornInsideTheZerosRecoversThePrefixAndTheLogGoesOnFromIt) {
  TempDir dir;
  const TwoBatches b = write_two_batches(opts(dir.path()));
  const std::string& path = b.path;
  for (uint64_t cut = b.prefix; cut < b.end; ++cut) {
    write_bytes(path, b.full);
    zero_range(path, cut, b.end);
    raft::Persisted p;
    auto wal = open_ok(opts(dir.path()), &p);
    ASSERT_NE(wal, nullptr);
    EXPECT_EQ(p.entries, make_entries(1, 4, 1)) << "cut at " << cut;
    append_sync(*wal, make_entries(5, 1, 2), hard_state(2, 1, 5));
    wal.reset();
    p = reopen(opts(dir.path()));
    EXPECT_EQ(p.entries.size(), 5u) << "cut at " << cut;
    EXPECT_EQ(p.entries.back(), make_entries(5, 1, 2)[0]) << "cut at " << cut;
    EXPECT_EQ(p.hard_state, hard_state(2, 1, 5)) << "cut at " << cut;
  }
}

TEST_P(WalFiles, FlippedByteInTheLastRecordIsTruncatedAway) {
  TempDir dir;
  const TwoBatches b = write_two_batches(opts(dir.path()));
  const std::string& path = b.path;
  for (uint64_t at = b.prefix; at < b.end; ++at) {
    write_bytes(path, b.full);
    flip_byte(path, at);
    raft::Persisted p = reopen(opts(dir.path()));
    EXPECT_EQ(p.entries, make_entries(1, 4, 1)) << "flip at " << at;
    EXPECT_EQ(file_size(path), b.prefix) << "flip at " << at;
  }
}

// Past the zeros too: a non-zero byte there means the tail is not just zeros written ahead.
TEST(Wal, GarbageAfterTheZerosIsATornTail) {
  TempDir dir;
  const Wal::Options o = options(dir.path(), 64ull << 20, 4096);
  const TwoBatches b = write_two_batches(o);
  const std::string& path = b.path;
  ASSERT_GT(file_size(path), b.end);
  flip_byte(path, file_size(path) - 1);
  raft::Persisted p = reopen(o);
  std::vector<raft::Entry> want = make_entries(1, 4, 1);
  for (const raft::Entry& e : make_entries(5, 3, 1, 20)) want.push_back(e);
  EXPECT_EQ(p.entries, want);
  EXPECT_EQ(file_size(path), b.end);  // cut back to the records
}

TEST_P(WalFiles, FlippedByteInAMiddleRecordIsRefusedAndTheWalIsUnchanged) {
  TempDir dir;
  uint64_t middle_start = 0, middle_end = 0;
  {
    auto wal = open_ok(opts(dir.path()));
    append_sync(*wal, make_entries(1, 2, 1));
    middle_start = wal->open_segment_bytes();
    append_sync(*wal, make_entries(3, 2, 1));
    middle_end = wal->open_segment_bytes();
    append_sync(*wal, make_entries(5, 2, 1));
  }
  const std::string path = segment_paths(dir.path())[0];
  const std::string full = read_bytes(path);
  const std::string name = std::filesystem::path(path).filename().string();
  for (uint64_t at = middle_start; at < middle_end; ++at) {
    write_bytes(path, full);
    flip_byte(path, at);
    const std::string before = dir_fingerprint(dir.path());
    Wal::Result r = Wal::open(opts(dir.path()));
    ASSERT_FALSE(r.ok()) << "flip at " << at;
    EXPECT_NE(r.error.find(name), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("offset " + std::to_string(middle_start)), std::string::npos) << r.error;
    EXPECT_EQ(dir_fingerprint(dir.path()), before) << "flip at " << at;
  }
}

TEST_P(WalFiles, CorruptedNonLastSegmentIsRefused) {
  TempDir dir;
  {
    auto wal = open_ok(opts(dir.path(), 256));
    for (uint64_t i = 1; i <= 60; i += 6) append_sync(*wal, make_entries(i, 6, 1, 8));
  }
  const std::vector<std::string> segments = segment_paths(dir.path());
  ASSERT_GE(segments.size(), 3u);
  // The last byte of a non-last segment: even a "tail" there is corruption.
  flip_byte(segments[1], file_size(segments[1]) - 1);
  const std::string before = dir_fingerprint(dir.path());
  Wal::Result r = Wal::open(opts(dir.path(), 256));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find(std::filesystem::path(segments[1]).filename().string()), std::string::npos)
      << r.error;
  EXPECT_EQ(dir_fingerprint(dir.path()), before);
}

TEST(Wal, MissingMiddleSegmentIsRefused) {
  TempDir dir;
  {
    auto wal = open_ok(options(dir.path(), 256));
    for (uint64_t i = 1; i <= 60; i += 6) append_sync(*wal, make_entries(i, 6, 1, 8));
  }
  const std::vector<std::string> segments = segment_paths(dir.path());
  ASSERT_GE(segments.size(), 3u);
  std::filesystem::remove(segments[1]);
  Wal::Result r = Wal::open(options(dir.path(), 256));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("missing"), std::string::npos) << r.error;
}

TEST(Wal, MissingFirstSegmentIsRefusedAsAGap) {
  TempDir dir;
  {
    auto wal = open_ok(options(dir.path(), 256));
    for (uint64_t i = 1; i <= 60; i += 6) append_sync(*wal, make_entries(i, 6, 1, 8));
  }
  std::filesystem::remove(segment_paths(dir.path())[0]);
  Wal::Result r = Wal::open(options(dir.path(), 256));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("missing entries 1.."), std::string::npos) << r.error;
}

TEST(Wal, SegmentLeftHeaderlessByACrashDuringRotationIsDropped) {
  TempDir dir;
  {
    auto wal = open_ok(options(dir.path(), 256));
    for (uint64_t i = 1; i <= 60; i += 6) append_sync(*wal, make_entries(i, 6, 1, 8));
  }
  const std::vector<std::string> segments = segment_paths(dir.path());
  truncate_to(segments.back(), 5);  // the new segment's header was cut off
  raft::Persisted p;
  auto wal = open_ok(options(dir.path(), 256), &p);
  EXPECT_EQ(p.entries, make_entries(1, 60, 1, 8));
  EXPECT_EQ(segment_paths(dir.path()).size(), segments.size() - 1);
  append_sync(*wal, make_entries(61, 1, 1));
  wal.reset();
  EXPECT_EQ(reopen(options(dir.path(), 256)).entries.size(), 61u);
}

TEST(Wal, SnapshotThenReopenReturnsTheSnapshotAndOnlyTheEntriesAfterIt) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 20, 3), hard_state(3, 1, 15));
  ASSERT_TRUE(wal->save_snapshot(snapshot_at(10, 3)).ok());
  wal.reset();
  raft::Persisted p = reopen(options(dir.path()));
  ASSERT_TRUE(p.snapshot);
  EXPECT_EQ(*p.snapshot, snapshot_at(10, 3));
  EXPECT_EQ(p.entries, make_entries(11, 10, 3));
  EXPECT_EQ(p.hard_state, hard_state(3, 1, 15));
}

TEST(Wal, SnapshotKeepsAPbftCheckpointDigestAcrossReopenAndRotation) {
  TempDir dir;
  auto wal = open_ok(options(dir.path(), 256));
  append_sync(*wal, make_entries(1, 20, 3), hard_state(3, 1, 15));
  raft::Snapshot snap = snapshot_at(10, 3);
  snap.meta.digest = std::string(32, '\x11');
  ASSERT_TRUE(wal->save_snapshot(snap).ok());
  append_sync(*wal, make_entries(21, 40, 3));  // rotates: the marker moves to a segment header
  wal.reset();
  raft::Persisted p = reopen(options(dir.path(), 256));
  ASSERT_TRUE(p.snapshot);
  EXPECT_EQ(p.snapshot->meta.digest, snap.meta.digest);
  EXPECT_EQ(*p.snapshot, snap);
}

TEST(Wal, SnapshotWhoseTermDoesNotMatchTheLogDiscardsTheWholeLog) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 20, 1));
  // A leader's snapshot at 15 in term 2: our entry 15 is from term 1, so 16..20 are stale too.
  ASSERT_TRUE(wal->save_snapshot(snapshot_at(15, 2)).ok());
  EXPECT_EQ(wal->last_index(), raft::Index(15));
  append_sync(*wal, make_entries(16, 2, 2));
  wal.reset();
  raft::Persisted p = reopen(options(dir.path()));
  EXPECT_EQ(p.snapshot->meta.index, raft::Index(15));
  EXPECT_EQ(p.entries, make_entries(16, 2, 2));
}

TEST(Wal, SnapshotBeyondTheLogEndStartsTheLogAfterIt) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 3, 1));
  ASSERT_TRUE(wal->save_snapshot(snapshot_at(100, 4)).ok());
  EXPECT_FALSE(wal->append(make_entries(50, 1, 4), {}).ok());
  append_sync(*wal, make_entries(101, 1, 4));
  wal.reset();
  raft::Persisted p = reopen(options(dir.path()));
  EXPECT_EQ(p.entries, make_entries(101, 1, 4));
}

TEST(Wal, StaleSnapshotIsRefused) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 20, 1));
  ASSERT_TRUE(wal->save_snapshot(snapshot_at(10, 1)).ok());
  EXPECT_FALSE(wal->save_snapshot(snapshot_at(10, 1)).ok());
  EXPECT_FALSE(wal->save_snapshot(snapshot_at(5, 1)).ok());
  EXPECT_TRUE(wal->save_snapshot(snapshot_at(12, 1)).ok());
}

TEST(Wal, SnapshotSyncsAppendsBufferedBeforeIt) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  ASSERT_TRUE(wal->append(make_entries(1, 20, 1), hard_state(1, 1, 20)).ok());
  ASSERT_TRUE(wal->save_snapshot(snapshot_at(10, 1)).ok());
  wal.reset();
  raft::Persisted p = reopen(options(dir.path()));
  EXPECT_EQ(p.entries, make_entries(11, 10, 1));
  EXPECT_EQ(p.hard_state, hard_state(1, 1, 20));
}

TEST(Wal, OldSegmentsAreRemovedAfterASnapshot) {
  TempDir dir;
  auto wal = open_ok(options(dir.path(), 512));
  // The hard state is written once, in the first segment: removal must not lose it.
  append_sync(*wal, make_entries(1, 10, 1, 8), hard_state(7, 2, 5));
  for (uint64_t i = 11; i <= 200; i += 10) append_sync(*wal, make_entries(i, 10, 7, 8));
  const size_t before = wal->segment_count();
  ASSERT_GT(before, 6u);
  ASSERT_TRUE(wal->save_snapshot(snapshot_at(150, 7)).ok());
  EXPECT_LT(wal->segment_count(), before);
  EXPECT_EQ(segment_paths(dir.path()).size(), wal->segment_count());
  wal.reset();
  raft::Persisted p = reopen(options(dir.path(), 512));
  EXPECT_EQ(p.entries, make_entries(151, 50, 7, 8));
  EXPECT_EQ(p.hard_state, hard_state(7, 2, 5));
}

TEST(Wal, SnapshotRemovesTheCurrentSegmentNever) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 10, 1));
  ASSERT_TRUE(wal->save_snapshot(snapshot_at(10, 1)).ok());
  EXPECT_EQ(wal->segment_count(), 1u);
  wal.reset();
  raft::Persisted p = reopen(options(dir.path()));
  EXPECT_TRUE(p.entries.empty());
  EXPECT_EQ(p.snapshot->meta.index, raft::Index(10));
}

TEST(Wal, KeepsTheNewestTwoSnapshotFiles) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  append_sync(*wal, make_entries(1, 40, 1));
  for (uint64_t i = 10; i <= 40; i += 10) ASSERT_TRUE(wal->save_snapshot(snapshot_at(i, 1)).ok());
  EXPECT_EQ(snapshot_names(dir.path()),
            (std::vector<std::string>{"0000000000000001-000000000000001e.snap",
                                      "0000000000000001-0000000000000028.snap"}));
}

TEST(Wal, CorruptNewestSnapshotFileIsRefusedWithoutChangingAnything) {
  TempDir dir;
  {
    auto wal = open_ok(options(dir.path()));
    append_sync(*wal, make_entries(1, 20, 1));
    ASSERT_TRUE(wal->save_snapshot(snapshot_at(5, 1)).ok());
    ASSERT_TRUE(wal->save_snapshot(snapshot_at(10, 1, std::string(1000, 's'))).ok());
  }
  const std::string path = dir.path() + "/snap/0000000000000001-000000000000000a.snap";
  flip_byte(path, file_size(path) / 2);
  const std::string before = dir_fingerprint(dir.path());
  Wal::Result r = Wal::open(options(dir.path()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("0000000000000001-000000000000000a.snap"), std::string::npos) << r.error;
  EXPECT_EQ(dir_fingerprint(dir.path()), before);
}

TEST(Wal, MissingSnapshotFileIsRefused) {
  TempDir dir;
  {
    auto wal = open_ok(options(dir.path()));
    append_sync(*wal, make_entries(1, 20, 1));
    ASSERT_TRUE(wal->save_snapshot(snapshot_at(10, 1)).ok());
  }
  std::filesystem::remove(dir.path() + "/snap/0000000000000001-000000000000000a.snap");
  Wal::Result r = Wal::open(options(dir.path()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("snapshot"), std::string::npos) << r.error;
}

TEST(Wal, SnapshotFileWithoutAMarkerIsIgnoredAndRemoved) {
  TempDir dir;
  {
    auto wal = open_ok(options(dir.path()));
    append_sync(*wal, make_entries(1, 20, 1));
  }
  // A crash after the snapshot file was renamed but before its marker was synced.
  write_bytes(dir.path() + "/snap/0000000000000001-000000000000000a.snap", "whatever");
  write_bytes(dir.path() + "/snap/0000000000000001-000000000000000b.snap.tmp", "half");
  raft::Persisted p = reopen(options(dir.path()));
  EXPECT_FALSE(p.snapshot);
  EXPECT_EQ(p.entries.size(), 20u);
  EXPECT_TRUE(snapshot_names(dir.path()).empty());
}

TEST(Wal, PersistFollowsTheReadyContract) {
  TempDir dir;
  auto wal = open_ok(options(dir.path()));
  raft::Ready rd;
  rd.entries = make_entries(1, 5, 1);
  rd.hard_state = hard_state(1, 1, 0);
  ASSERT_TRUE(wal->persist(rd).ok());
  raft::Ready install;  // a follower installing a leader's snapshot, then new entries
  install.snapshot = snapshot_at(30, 2);
  install.entries = make_entries(31, 2, 2);
  install.hard_state = hard_state(2, 0, 30);
  ASSERT_TRUE(wal->persist(install).ok());
  wal.reset();
  raft::Persisted p = reopen(options(dir.path()));
  EXPECT_EQ(*p.snapshot, snapshot_at(30, 2));
  EXPECT_EQ(p.entries, make_entries(31, 2, 2));
  EXPECT_EQ(p.hard_state, hard_state(2, 0, 30));
}

}  // namespace
}  // namespace synod::storage
