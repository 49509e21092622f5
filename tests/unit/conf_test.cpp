#include "core/consensus/conf.h"

#include <gtest/gtest.h>

#include <iostream>

#include "core/rand.h"

namespace synod::raft {
namespace {

ConfState three() {
  return ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}};
}

TEST(Conf, AddLearnerThenPromote) {
  auto c = apply_change(three(), {ConfChangeType::kAddLearner, NodeId(4)});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->is_learner(NodeId(4)));
  c = apply_change(*c, {ConfChangeType::kAddVoter, NodeId(4)});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->is_voter(NodeId(4)));
  EXPECT_FALSE(c->is_learner(NodeId(4)));
}

TEST(Conf, RejectsNoOpsAndRemovingTheLastVoter) {
  EXPECT_FALSE(apply_change(three(), {ConfChangeType::kAddVoter, NodeId(1)}));
  EXPECT_FALSE(apply_change(three(), {ConfChangeType::kRemoveNode, NodeId(9)}));
  EXPECT_FALSE(apply_change(three(), {ConfChangeType::kAddLearner, NodeId(2)}));
  EXPECT_FALSE(apply_change(ConfState{{NodeId(1)}, {}}, {ConfChangeType::kRemoveNode, NodeId(1)}));
  EXPECT_FALSE(apply_change(three(), {ConfChangeType::kAddVoter, kNoNode}));
}

TEST(Conf, EncodeDecodeRoundTrip) {
  ConfState c{{NodeId(1), NodeId(7)}, {NodeId(9)}};
  auto d = decode_conf(encode_conf(c));
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, c);
}

TEST(Conf, DecodeRejectsTruncatedAndTrailingBytes) {
  const std::string good = encode_conf(three());
  EXPECT_FALSE(decode_conf(good.substr(0, good.size() - 1)));
  EXPECT_FALSE(decode_conf(good + "x"));
  EXPECT_FALSE(decode_conf(""));
}

TEST(Conf, DecodeNeverCrashesOnRandomBytes) {
  const uint64_t seed = 20261122;
  std::cout << "seed " << seed << "\n";
  Rng rng(seed);
  const std::string good = encode_conf(three());
  for (int i = 0; i < 20000; ++i) {
    std::string data = good;
    const uint64_t flips = rng.range(1, 4);
    for (uint64_t f = 0; f < flips; ++f)
      data[rng.uniform(data.size())] = static_cast<char>(rng.next());
    if (rng.chance(0.3)) data.resize(rng.uniform(data.size() + 1));
    auto d = decode_conf(data);
    if (d) {
      EXPECT_EQ(decode_conf(encode_conf(*d)), d);
    }
  }
}

}  // namespace
}  // namespace synod::raft
