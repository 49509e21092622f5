// The kv::Backend contract, on the backend this binary tests.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_backend.h"

namespace synod::kv {
namespace {

using Entries = std::vector<std::pair<std::string, std::string>>;

Entries scan_all(const Backend& b, std::string_view begin, std::string_view end) {
  Entries out;
  b.scan(begin, end, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  return out;
}

class KV_SUITE(BackendTest) : public ::testing::Test {
 protected:
  void put_all(const Entries& entries) {
    WriteBatch batch;
    for (const auto& [k, v] : entries) batch.put(k, v);
    b().write(batch);
  }
  Backend& b() { return tb_->get(); }
  std::unique_ptr<testing::TestBackend> tb_ = testing::make_test_backend();
};

TEST_F(KV_SUITE(BackendTest), GetReturnsWhatWasPutAndNothingForMissingKeys) {
  put_all({{"a", "1"}});
  EXPECT_EQ(b().get("a"), "1");
  EXPECT_EQ(b().get("b"), std::nullopt);
}

TEST_F(KV_SUITE(BackendTest), ScanVisitsHalfOpenIntervalInByteOrder) {
  put_all({{"b", "2"}, {std::string("a\0", 2), "0"}, {"a", "1"}, {"c", "3"}, {"\xff", "f"}});
  EXPECT_EQ(scan_all(b(), "a", "c"),
            (Entries{{"a", "1"}, {std::string("a\0", 2), "0"}, {"b", "2"}}));
  EXPECT_EQ(scan_all(b(), "b", "").size(), 3u);  // empty end: unbounded, includes "\xff"
}

TEST_F(KV_SUITE(BackendTest), ScanStopsWhenVisitorReturnsFalse) {
  put_all({{"a", "1"}, {"b", "2"}, {"c", "3"}});
  int seen = 0;
  b().scan("", "", [&](std::string_view, std::string_view) { return ++seen < 2; });
  EXPECT_EQ(seen, 2);
}

TEST_F(KV_SUITE(BackendTest), BatchAppliesPutsDeletesAndRangeDeletesInOrder) {
  put_all({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}});
  WriteBatch batch;
  batch.del("a");
  batch.delete_range("b", "d");
  batch.put("c", "new");
  batch.put("a", "again");
  b().write(batch);
  EXPECT_EQ(scan_all(b(), "", ""), (Entries{{"a", "again"}, {"c", "new"}, {"d", "4"}}));
}

TEST_F(KV_SUITE(BackendTest), ContentsSurviveReopenAfterSync) {
  put_all({{"k", "v"}});
  b().sync();
  tb_->reopen();
  EXPECT_EQ(b().get("k"), "v");
}

TEST_F(KV_SUITE(BackendTest), SizeGrowsWithDataAndDefragmentKeepsContents) {
  Entries entries;
  for (int i = 0; i < 100; ++i)
    entries.emplace_back("key" + std::to_string(i), std::string(100, 'x'));
  put_all(entries);
  b().defragment();
  EXPECT_GT(b().approximate_size_bytes(), 0u);
  EXPECT_EQ(scan_all(b(), "", "").size(), 100u);
}

}  // namespace
}  // namespace synod::kv
