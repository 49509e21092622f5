// A data dir's shard layout: recorded on first start, refused when the flags change.
#include "server/shards.h"

#include <gtest/gtest.h>

#include <filesystem>

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
