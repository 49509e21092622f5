// The simulator's replica state machine: kv::Store under the simulated clients' requests.
#include "sim/kv_machine.h"

#include <gtest/gtest.h>

namespace synod::sim {
namespace {

KvCommand put(uint32_t client, uint64_t seq, std::string key, std::string value) {
  return {client, seq, KvOp::kPut, std::move(key), std::move(value), {}};
}

KvCommand cas(uint32_t client, uint64_t seq, std::string key, std::string expected,
              std::string value) {
  return {client, seq, KvOp::kCas, std::move(key), std::move(value), std::move(expected)};
}

TEST(KvMachine, PutThenReadAtTheCurrentRevision) {
  KvMachine m;
  const KvApplied a = m.apply(raft::Index(1), put(0, 1, "k", "v").encode());
  ASSERT_TRUE(a.result);
  EXPECT_FALSE(a.store_error);
  ASSERT_TRUE(a.id);
  EXPECT_EQ(a.id->client, 0u);
  EXPECT_EQ(a.id->seq, 1u);
  EXPECT_EQ(m.read("k").value, "v");
  EXPECT_FALSE(m.read("other").value);
  EXPECT_EQ(m.applied(), raft::Index(1));
}

TEST(KvMachine, CasSwapsOnlyOnAnEqualValue) {
  KvMachine m;
  m.apply(raft::Index(1), put(0, 1, "k", "a").encode());
  KvApplied miss = m.apply(raft::Index(2), cas(1, 1, "k", "b", "c").encode());
  ASSERT_TRUE(miss.result);
  EXPECT_FALSE(miss.result->cas_succeeded);
  EXPECT_EQ(m.read("k").value, "a");
  KvApplied hit = m.apply(raft::Index(3), cas(1, 2, "k", "a", "c").encode());
  ASSERT_TRUE(hit.result);
  EXPECT_TRUE(hit.result->cas_succeeded);
  EXPECT_EQ(m.read("k").value, "c");
}

TEST(KvMachine, CasNeverSucceedsOnAnAbsentKeyEvenExpectingEmpty) {
  KvMachine m;
  KvApplied a = m.apply(raft::Index(1), cas(0, 1, "k", "", "v").encode());
  ASSERT_TRUE(a.result);
  EXPECT_FALSE(a.result->cas_succeeded);
  EXPECT_FALSE(m.read("k").value);
}

TEST(KvMachine, RedeliveredRequestHasNoEffectButAdvancesTheIndex) {
  KvMachine m;
  m.apply(raft::Index(1), put(0, 1, "k", "a").encode());
  m.apply(raft::Index(2), put(0, 2, "k", "b").encode());
  KvApplied dup = m.apply(raft::Index(3), put(0, 1, "k", "a").encode());
  EXPECT_FALSE(dup.result);
  EXPECT_FALSE(dup.store_error);
  EXPECT_EQ(m.read("k").value, "b");
  EXPECT_EQ(m.applied(), raft::Index(3));
}

TEST(KvMachine, DuplicateTableSurvivesASnapshot) {
  KvMachine a;
  a.apply(raft::Index(1), put(2, 5, "k", "a").encode());
  a.advance(raft::Index(2));  // a leader no-op
  KvMachine b;
  ASSERT_TRUE(b.restore(a.image()));
  EXPECT_EQ(b.applied(), raft::Index(2));
  EXPECT_EQ(b.read("k").value, "a");
  EXPECT_FALSE(b.apply(raft::Index(3), put(2, 5, "k", "x").encode()).result);
  EXPECT_EQ(b.read("k").value, "a");
  EXPECT_TRUE(b.apply(raft::Index(4), put(2, 6, "k", "y").encode()).result);
  // Both replicas applied the same entries: byte-identical images.
  a.apply(raft::Index(3), put(2, 5, "k", "x").encode());
  a.apply(raft::Index(4), put(2, 6, "k", "y").encode());
  EXPECT_EQ(a.image(), b.image());
}

TEST(KvMachine, MalformedImageChangesNothing) {
  KvMachine m;
  m.apply(raft::Index(1), put(0, 1, "k", "a").encode());
  const std::string image = m.image();
  EXPECT_FALSE(m.restore(""));
  EXPECT_FALSE(m.restore(image.substr(0, image.size() - 1)));
  EXPECT_FALSE(m.restore(image + "x"));
  EXPECT_EQ(m.read("k").value, "a");
  EXPECT_EQ(m.image(), image);
}

TEST(KvMachine, CompactionKeepsCurrentValuesAndARacedOneIsNoError) {
  KvMachine m;
  for (uint64_t i = 1; i <= 5; ++i) {
    m.apply(raft::Index(i), put(0, i, "k", "v" + std::to_string(i)).encode());
  }
  const int64_t rev = m.revision();
  EXPECT_FALSE(m.apply(raft::Index(6), encode_compaction(rev - 1)).store_error);
  EXPECT_EQ(m.compact_revision(), rev - 1);
  EXPECT_FALSE(m.apply(raft::Index(7), encode_compaction(rev - 2)).store_error);
  EXPECT_EQ(m.read("k").value, "v5");
  EXPECT_TRUE(m.apply(raft::Index(8), "\xff\xff not a request").store_error);
  EXPECT_EQ(m.applied(), raft::Index(8));
}

}  // namespace
}  // namespace synod::sim
