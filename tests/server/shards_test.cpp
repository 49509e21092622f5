// A data dir's shard layout: recorded on first start, refused when the flags change; the shard
// map's entries and the target placement the shard mover moves towards.
#include "server/shards.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iterator>

#include "server/shard_mover.h"

namespace synod::server {
namespace {

namespace fs = std::filesystem;

class ShardLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/synod-layout-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/member");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ShardLayout, AFreshDataDirTakesTheFlagsAndKeepsThem) {
  std::string error;
  ASSERT_TRUE(check_shard_layout(dir_, {8, 3}, &error)) << error;
  EXPECT_TRUE(fs::exists(dir_ + "/member/shards"));
  EXPECT_TRUE(check_shard_layout(dir_, {8, 3}, &error)) << error;
  EXPECT_FALSE(check_shard_layout(dir_, {16, 3}, &error));
  EXPECT_NE(error.find("was created with --shards 8 --replication 3"), std::string::npos) << error;
  EXPECT_FALSE(check_shard_layout(dir_, {8, 1}, &error));
  EXPECT_FALSE(check_shard_layout(dir_, {0, 3}, &error));
}

TEST_F(ShardLayout, AnUnshardedDataDirStaysUnsharded) {
  fs::create_directories(dir_ + "/member/db");  // a store made before the layout was recorded
  std::string error;
  EXPECT_TRUE(check_shard_layout(dir_, {0, 3}, &error)) << error;
  EXPECT_FALSE(check_shard_layout(dir_, {4, 3}, &error));
  EXPECT_NE(error.find("was created with no --shards"), std::string::npos) << error;
}

TEST_F(ShardLayout, AnUnreadableRecordIsAnError) {
  {
    FILE* f = fopen((dir_ + "/member/shards").c_str(), "w");
    fputs("garbage\n", f);
    fclose(f);
  }
  std::string error;
  EXPECT_FALSE(check_shard_layout(dir_, {4, 3}, &error));
  EXPECT_NE(error.find("unreadable"), std::string::npos) << error;
}

}  // namespace
}  // namespace synod::server

namespace synod::server {
namespace {

TEST(ShardMap, AGroupsReplicasRoundTripAsText) {
  const GroupReplicas r{{0x9e737febb6b99eee, 0x628170c800dbcee}, {0xddd67b312462fd7b}};
  const std::string text = encode_group_replicas(r);
  EXPECT_EQ(text, "voters=9e737febb6b99eee,628170c800dbcee learners=ddd67b312462fd7b");
  EXPECT_EQ(decode_group_replicas(text), r);
  const GroupReplicas no_learners{{1, 2, 3}, {}};
  EXPECT_EQ(decode_group_replicas(encode_group_replicas(no_learners)), no_learners);
}

TEST(ShardMap, MalformedEntriesAreRefused) {
  for (const char* bad : {"", "voters=", "voters= learners=", "voters=1,2", "voters=1,,2 learners=",
                          "voters=x learners=", "voters=0 learners=", "learners=1 voters=2",
                          "voters=1 learners=2,"}) {
    EXPECT_FALSE(decode_group_replicas(bad).has_value()) << bad;
  }
}

TEST(ShardMap, AddingAMemberMovesOneReplicaOfTheShardsTheRingChanges) {
  const std::vector<uint64_t> three{11, 22, 33}, four{11, 22, 33, 44};
  const ring::Placement before = target_placement(three, 64, 3);
  const ring::Placement after = target_placement(four, 64, 3);
  int moved = 0;
  for (size_t g = 0; g < before.size(); ++g) {
    std::vector<uint64_t> a = before[g], b = after[g];
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a == b) continue;
    ++moved;
    // The new member in, exactly one old one out.
    EXPECT_TRUE(std::find(b.begin(), b.end(), 44) != b.end()) << "shard " << g;
    std::vector<uint64_t> gone;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(gone));
    EXPECT_EQ(gone.size(), 1u) << "shard " << g;
  }
  EXPECT_GT(moved, 0);
  EXPECT_LT(moved, 64);
}

}  // namespace
}  // namespace synod::server
