// The backend key layout preserves user key order, including keys with zero bytes.
#include "kv/keys.h"

#include <gtest/gtest.h>

#include "test_backend.h"

namespace synod::kv::keys {
namespace {

TEST(KV_SUITE(KeysTest), HistoryKeysOrderByUserKeyThenRevision) {
  std::string a("a"), a0("a\0", 2), a00("a\0\0", 3), ab("ab");
  EXPECT_LT(history(a, {9, 9}), history(a0, {1, 0}));
  EXPECT_LT(history(a0, {1, 0}), history(a0, {1, 1}));
  EXPECT_LT(history(a0, {1, 1}), history(a0, {2, 0}));
  EXPECT_LT(history(a0, {9, 0}), history(a00, {1, 0}));
  EXPECT_LT(history(a00, {9, 0}), history(ab, {1, 0}));
}

TEST(KV_SUITE(KeysTest), HistoryKeyParsesBack) {
  std::string key("x\0y", 3);
  auto parsed = parse_history(history(key, {7, 3}));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->user_key, key);
  EXPECT_EQ(parsed->rev, (Revision{7, 3}));
  EXPECT_FALSE(parse_history("hxyz"));
}

TEST(KV_SUITE(KeysTest), HistoryRangeCoversExactlyTheRequestedKeys) {
  auto r = history_range("b", "d");
  ASSERT_TRUE(r);
  EXPECT_LE(r->begin, history("b", {1, 0}));
  EXPECT_LT(history(std::string("c\0", 2), {5, 0}), r->end);
  EXPECT_GE(history("d", {1, 0}), r->end);
  EXPECT_GT(r->begin, history("a", {99, 0}));
  EXPECT_FALSE(history_range("d", "b"));
}

}  // namespace
}  // namespace synod::kv::keys
