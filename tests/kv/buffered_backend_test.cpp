#include "kv/buffered_backend.h"

#include <gtest/gtest.h>

#include "kv/store.h"
#include "test_backend.h"

namespace synod::kv {
namespace {

using testing::make_test_backend;

synodpb::Request put_request(const std::string& key, const std::string& value) {
  synodpb::Request r;
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  return r;
}

TEST(KV_SUITE(BufferedBackend), ReadsSeeBufferedWritesBeforeTheFlush) {
  auto inner = make_test_backend();
  BufferedBackend buffered(inner->get());
  WriteBatch b;
  b.put("a", "1");
  b.put("b", "2");
  buffered.write(b);
  EXPECT_EQ(buffered.get("a"), "1");
  EXPECT_FALSE(inner->get().get("a"));
  std::vector<std::string> keys;
  buffered.scan("", "", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  });
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b"}));
  buffered.flush();
  EXPECT_EQ(inner->get().get("b"), "2");
  EXPECT_FALSE(buffered.buffered());
}

TEST(KV_SUITE(BufferedBackend), ARangeDeleteFlushesAndWritesThrough) {
  auto inner = make_test_backend();
  BufferedBackend buffered(inner->get());
  WriteBatch b;
  b.put("a", "1");
  b.put("c", "3");
  buffered.write(b);
  WriteBatch d;
  d.delete_range("a", "b");
  buffered.write(d);
  EXPECT_FALSE(buffered.buffered());
  EXPECT_FALSE(inner->get().get("a"));
  EXPECT_EQ(inner->get().get("c"), "3");
}

// The server applies a Ready's entries through the buffer and flushes once: the backend
// beneath then holds every entry and the last applied index, as if each had been written.
TEST(KV_SUITE(BufferedBackend), ManyAppliesFlushAsOneConsistentState) {
  auto direct_backend = make_test_backend();
  auto inner = make_test_backend();
  Store direct(direct_backend->get());
  BufferedBackend buffered(inner->get());
  Store through(buffered);
  for (uint64_t i = 1; i <= 20; ++i) {
    const auto r = put_request("k" + std::to_string(i % 7), "v" + std::to_string(i));
    direct.apply(i, r);
    through.apply(i, r);
  }
  buffered.flush();
  Store reopened(inner->get());
  EXPECT_EQ(reopened.applied_index(), 20u);
  EXPECT_EQ(reopened.revision(), direct.revision());
  EXPECT_EQ(reopened.hash_kv(0)->hash, direct.hash_kv(0)->hash);
}

}  // namespace
}  // namespace synod::kv
