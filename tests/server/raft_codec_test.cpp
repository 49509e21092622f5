#include "net/raft_codec.h"

#include <gtest/gtest.h>

#include "core/rand.h"

namespace synod::net {
namespace {

raft::Message sample_append() {
  raft::Message m;
  m.type = raft::MessageType::kAppend;
  m.from = raft::NodeId(1);
  m.to = raft::NodeId(2);
  m.term = raft::Term(7);
  m.log_index = raft::Index(10);
  m.log_term = raft::Term(6);
  m.commit = raft::Index(9);
  m.entries.push_back({raft::Term(7), raft::Index(11), raft::EntryType::kNormal, "put"});
  m.entries.push_back({raft::Term(7), raft::Index(12), raft::EntryType::kConfChange, "conf"});
  m.context = 42;
  m.sent_tick = 99;
  return m;
}

TEST(RaftCodec, RoundTripsAnAppend) {
  raft::Message m = sample_append();
  synodpb::RaftMessage wire;
  encode(m, &wire);
  std::string error;
  auto back = decode(wire, &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->type, m.type);
  EXPECT_EQ(back->entries, m.entries);
  EXPECT_EQ(back->commit, m.commit);
  EXPECT_EQ(back->context, m.context);
  EXPECT_EQ(back->sent_tick, m.sent_tick);
}

TEST(RaftCodec, RoundTripsASnapshotChunk) {
  raft::Message m;
  m.type = raft::MessageType::kSnapshot;
  m.from = raft::NodeId(1);
  m.to = raft::NodeId(3);
  m.term = raft::Term(5);
  m.snapshot_meta.index = raft::Index(100);
  m.snapshot_meta.term = raft::Term(4);
  m.snapshot_meta.conf.voters = {raft::NodeId(1), raft::NodeId(2)};
  m.snapshot_meta.conf.learners = {raft::NodeId(3)};
  m.snapshot_offset = 65536;
  m.snapshot_total = 100000;
  m.snapshot_chunk = std::string(1000, 'x');
  m.snapshot_done = true;
  synodpb::RaftMessage wire;
  encode(m, &wire);
  std::string error;
  auto back = decode(wire, &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->snapshot_meta, m.snapshot_meta);
  EXPECT_EQ(back->snapshot_chunk, m.snapshot_chunk);
  EXPECT_TRUE(back->snapshot_done);
}

TEST(RaftCodec, RefusesUnknownTypesAndGaps) {
  std::string error;
  synodpb::RaftMessage wire;
  encode(sample_append(), &wire);
  wire.set_type(200);
  EXPECT_FALSE(decode(wire, &error));
  encode(sample_append(), &wire);
  wire.mutable_entries(0)->set_type(9);
  EXPECT_FALSE(decode(wire, &error));
  encode(sample_append(), &wire);
  wire.mutable_entries(1)->set_index(20);
  EXPECT_FALSE(decode(wire, &error));
  EXPECT_NE(error.find("contiguous"), std::string::npos);
}

TEST(RaftCodec, RefusesEntriesFromTheFuture) {
  std::string error;
  synodpb::RaftMessage wire;
  encode(sample_append(), &wire);
  wire.mutable_entries(1)->set_term(8);  // above the sender's term 7
  EXPECT_FALSE(decode(wire, &error));
  encode(sample_append(), &wire);
  wire.mutable_entries(0)->set_term(5);  // below the term at log_index (6)
  EXPECT_FALSE(decode(wire, &error));
  EXPECT_NE(error.find("terms"), std::string::npos);
}

// Regression: a snapshot claiming a term above its sender's left the follower's log ahead of
// its own term; once it led, its no-op entry tripped Log::append's term order assert.
TEST(RaftCodec, RefusesASnapshotFromAboveTheSendersTerm) {
  raft::Message m;
  m.type = raft::MessageType::kSnapshot;
  m.from = raft::NodeId(2);
  m.to = raft::NodeId(1);
  m.term = raft::Term(3);
  m.snapshot_meta.index = raft::Index(10);
  m.snapshot_meta.term = raft::Term(4);
  synodpb::RaftMessage wire;
  encode(m, &wire);
  std::string error;
  EXPECT_FALSE(decode(wire, &error));
  m.snapshot_meta.term = raft::Term(3);
  encode(m, &wire);
  EXPECT_TRUE(decode(wire, &error)) << error;
}

// Peer input is untrusted: random bytes parsed as a frame never crash the decoder.
TEST(RaftCodec, SurvivesRandomBytes) {
  const uint64_t seed = 20261201;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  Rng rng(seed);
  synodpb::RaftMessage good;
  encode(sample_append(), &good);
  const std::string bytes = good.SerializeAsString();
  for (int i = 0; i < 2000; ++i) {
    std::string mutated = bytes;
    const int flips = 1 + static_cast<int>(rng.next() % 4);
    for (int f = 0; f < flips; ++f) {
      mutated[rng.next() % mutated.size()] = static_cast<char>(rng.next());
    }
    synodpb::RaftMessage wire;
    if (!wire.ParseFromString(mutated)) continue;
    std::string error;
    (void)decode(wire, &error);
  }
}

}  // namespace
}  // namespace synod::net
