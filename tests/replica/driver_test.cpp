// The replica driver against a scripted Host and a real Raft engine: the Ready loop's order
// (immediate messages before the fsync, the rest after), asynchronous persistence, a snapshot
// whose state is fetched (retried after failures, never blocking), compaction after a state
// flush, and reads (batched, served at the read index, failed at their deadline).
#include "replica/driver.h"

#include <gtest/gtest.h>

#include <deque>
#include <set>
#include <thread>

#include "core/raft/raft.h"
#include "replica/engine_factory.h"
#include "replica/memory_log.h"
#include "replica/state_ref.h"

namespace synod::replica {
namespace {

using raft::Entry;
using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::NodeId;

// Records every call; persistence completes only when the test says so (async) or at once.
class ScriptedHost final : public Host {
 public:
  bool async_persist = false;
  raft::Persisted disk;
  std::vector<std::string> calls;  // in order: "persist", "send", "apply", ...
  std::vector<Message> sent;
  std::vector<std::pair<NodeId, uint64_t>> fetches;
  std::vector<uint64_t> retained;
  std::vector<uint64_t> flushes;
  std::vector<raft::Snapshot> snapshots;
  uint64_t applied = 0;
  bool restore_ok = true;

  bool persist(const std::vector<Entry>& entries, const std::optional<raft::HardState>& hs,
               bool sync) override {
    calls.push_back(sync ? "persist+sync" : "persist");
    write_log(disk, entries, hs);
    return !async_persist;
  }
  void save_snapshot(const raft::Snapshot& snapshot) override {
    calls.push_back("save_snapshot");
    snapshots.push_back(snapshot);
    write_snapshot(disk, snapshot);
  }
  void send(std::vector<Message> messages) override {
    for (const Message& m : messages) {
      calls.push_back(std::string("send ") + raft::to_string(m.type));
      sent.push_back(m);
    }
  }
  void fetch_state(NodeId from, uint64_t min_index, bool retained) override {
    calls.push_back(retained ? "fetch retained" : "fetch");
    fetches.emplace_back(from, min_index);
  }
  void retain_state(uint64_t index) override {
    calls.push_back("retain " + std::to_string(index));
    retained.push_back(index);
  }
  // The test's images are the applied index they stand for; a digest names it.
  std::vector<std::pair<uint64_t, std::string>> retained_states() const override {
    return kept_before;
  }
  std::vector<std::pair<uint64_t, std::string>> kept_before;  // by an earlier process
  std::string image_digest(const std::string& image) const override { return "d" + image; }
  uint64_t applied_index() const override { return applied; }
  void apply(std::span<const Entry> entries) override {
    calls.push_back("apply");
    for (const Entry& e : entries) {
      EXPECT_EQ(e.index.value, applied + 1);
      applied = e.index.value;
    }
  }
  bool restore(const raft::SnapshotMeta&, const std::string& image) override {
    calls.push_back("restore");
    if (!restore_ok) return false;
    applied = std::stoull(image);  // the test's "image" is the applied index it stands for
    return true;
  }
  void flush_state(uint64_t applied_index) override {
    calls.push_back("flush");
    flushes.push_back(applied_index);
  }
};

DriverOptions test_options(uint64_t first_read_context = 1) {
  DriverOptions options;
  options.first_read_context = first_read_context;
  return options;
}

raft::Config config(uint64_t id, std::vector<uint64_t> voters) {
  raft::Config c;
  c.id = NodeId(id);
  for (uint64_t v : voters) c.initial_conf.voters.push_back(NodeId(v));
  return c;
}

// A one-member cluster: it elects itself after enough ticks and commits alone.
struct LoneLeader {
  ScriptedHost host;
  raft::Raft raft{config(1, {1}), raft::Persisted{}};
  Driver driver;
  explicit LoneLeader(DriverOptions options = test_options()) : driver(raft, host, options, 0) {
    for (int i = 0; i < 40 && raft.role() != raft::Role::kLeader; ++i) {
      driver.tick();
      driver.run();
    }
  }
};

size_t position(const std::vector<std::string>& calls, const std::string& call, size_t from = 0) {
  for (size_t i = from; i < calls.size(); ++i) {
    if (calls[i] == call) return i;
  }
  return calls.size();
}

TEST(Driver, ALoneMemberElectsItselfAndAppliesWhatItCommits) {
  LoneLeader n;
  ASSERT_EQ(n.raft.role(), raft::Role::kLeader);
  n.raft.propose("x");
  n.driver.run();
  EXPECT_EQ(n.host.applied, 2u);  // the leader's no-op, then "x"
  EXPECT_EQ(n.host.disk.entries.size(), 2u);
}

TEST(Driver, NothingMovesWhileAPersistIsInFlight) {
  LoneLeader n;
  n.host.async_persist = true;
  n.raft.propose("x");
  n.driver.run();
  EXPECT_TRUE(n.driver.ready_in_flight());
  const uint64_t applied = n.host.applied;
  n.raft.propose("y");
  n.driver.run();  // the next Ready waits for the first to be durable
  EXPECT_EQ(n.host.applied, applied);
  n.host.async_persist = false;
  n.driver.persisted();
  n.driver.run();
  EXPECT_FALSE(n.driver.ready_in_flight());
  EXPECT_EQ(n.host.applied, 3u);
}

TEST(Driver, AppendsLeaveBeforeTheFsyncAndAnswersAfterIt) {
  // A leader of two: its Appends go out before its own persist; the follower's answer to them
  // waits for the follower's persist (thesis 10.2.1, types.h).
  ScriptedHost leader_host, follower_host;
  raft::Raft leader(config(1, {1, 2}), {}), follower(config(2, {1, 2}), {});
  Driver l(leader, leader_host, test_options(), 0), f(follower, follower_host, test_options(), 0);
  std::deque<Message> wire;
  auto exchange = [&] {
    for (int round = 0; round < 50; ++round) {
      l.run();
      f.run();
      for (auto* h : {&leader_host, &follower_host}) {
        for (Message& m : h->sent) wire.push_back(std::move(m));
        h->sent.clear();
      }
      if (wire.empty()) return;
      while (!wire.empty()) {
        Message m = std::move(wire.front());
        wire.pop_front();
        (m.to == NodeId(1) ? l : f).step(m);
      }
    }
  };
  for (int i = 0; i < 40 && leader.role() != raft::Role::kLeader; ++i) {
    l.tick();
    exchange();
  }
  ASSERT_EQ(leader.role(), raft::Role::kLeader);
  leader_host.calls.clear();
  follower_host.calls.clear();
  leader.propose("x");
  exchange();
  EXPECT_LT(position(leader_host.calls, "send Append"),
            position(leader_host.calls, "persist+sync"));
  EXPECT_LT(position(follower_host.calls, "persist+sync"),
            position(follower_host.calls, "send AppendResp"));
  EXPECT_EQ(follower_host.applied, leader_host.applied);
}

// A follower of {1,2} handed a snapshot at index 10 whose payload is a state reference.
struct FollowerWithSnapshot {
  ScriptedHost host;
  raft::Raft raft{config(2, {1, 2}), raft::Persisted{}};
  Driver driver;
  explicit FollowerWithSnapshot(DriverOptions options = test_options())
      : driver(raft, host, options, 0) {
    Message m;
    m.type = MessageType::kSnapshot;
    m.from = NodeId(1);
    m.to = NodeId(2);
    m.term = raft::Term(1);
    m.snapshot_meta.index = Index(10);
    m.snapshot_meta.term = raft::Term(1);
    m.snapshot_meta.conf = config(2, {1, 2}).initial_conf;
    m.snapshot_chunk = encode_state_ref(10);
    m.snapshot_total = m.snapshot_chunk.size();
    m.snapshot_done = true;
    driver.step(m);
    driver.run();
  }
};

TEST(Driver, ASnapshotsStateIsFetchedFromTheLeaderWithoutBlocking) {
  FollowerWithSnapshot n;
  ASSERT_EQ(n.host.fetches.size(), 1u);
  EXPECT_EQ(n.host.fetches[0], std::make_pair(NodeId(1), uint64_t{10}));
  EXPECT_TRUE(n.driver.ready_in_flight());
  // The answer to the leader waits for the state: nothing promised before it is installed.
  EXPECT_EQ(position(n.host.calls, "send AppendResp"), n.host.calls.size());
  n.driver.state_fetched(std::string("12"), 12, "");  // the leader's state was already at 12
  n.driver.run();
  EXPECT_FALSE(n.driver.ready_in_flight());
  EXPECT_EQ(n.host.applied, 12u);
  ASSERT_EQ(n.host.snapshots.size(), 1u);
  EXPECT_EQ(n.host.snapshots[0].meta.index, Index(10));
  EXPECT_EQ(decode_state_ref(n.host.snapshots[0].data), 10u);
  // The state first, then the log's record of it, then the answer.
  EXPECT_LT(position(n.host.calls, "restore"), position(n.host.calls, "save_snapshot"));
  EXPECT_LT(position(n.host.calls, "save_snapshot"), position(n.host.calls, "send AppendResp"));
  EXPECT_EQ(n.driver.snapshot_index(), 10u);
}

TEST(Driver, AFailedFetchIsTriedAgainAfterItsBackoff) {
  DriverOptions options = test_options();
  options.fetch_retry_ticks = 3;
  FollowerWithSnapshot n(options);
  n.driver.state_fetched(std::nullopt, 0, "stream broken");
  n.driver.run();
  n.host.restore_ok = false;
  EXPECT_EQ(n.host.fetches.size(), 1u);
  for (int i = 0; i < 3; ++i) {
    n.driver.tick();
    n.driver.run();
  }
  ASSERT_EQ(n.host.fetches.size(), 2u);
  n.driver.state_fetched(std::string("10"), 10, "");  // an image that does not restore
  n.driver.run();
  EXPECT_TRUE(n.driver.ready_in_flight());
  n.host.restore_ok = true;
  for (int i = 0; i < 3; ++i) n.driver.tick();
  n.driver.run();
  ASSERT_EQ(n.host.fetches.size(), 3u);
  n.driver.state_fetched(std::string("10"), 10, "");
  n.driver.run();
  EXPECT_FALSE(n.driver.ready_in_flight());
  EXPECT_EQ(n.host.applied, 10u);
}

TEST(Driver, AnAnswerToAFetchGivenUpOnIsIgnored) {
  FollowerWithSnapshot n;
  n.driver.state_fetched(std::nullopt, 0, "lost");
  n.driver.state_fetched(std::string("10"), 10, "");  // a late duplicate: not what it waits for
  n.driver.run();
  EXPECT_TRUE(n.driver.ready_in_flight());
  EXPECT_EQ(n.host.applied, 0u);
}

// A Raft engine that asks the driver for the state trust of an engine whose members may lie:
// it records the state digests the driver gives it and certifies the ones in `certified`.
class Distrusting final : public Engine {
 public:
  Distrusting(const raft::Config& c, uint64_t interval)
      : raft_(c, raft::Persisted{}), interval_(interval) {}
  void tick() override { raft_.tick(); }
  void step(const Message& m) override { raft_.step(m); }
  raft::ProposeResult propose(std::string data) override { return raft_.propose(std::move(data)); }
  raft::ProposeResult propose_conf_change(const raft::ConfChange& c) override {
    return raft_.propose_conf_change(c);
  }
  raft::Status read_index(uint64_t context) override { return raft_.read_index(context); }
  raft::Status transfer_leadership(NodeId target) override {
    return raft_.transfer_leadership(target);
  }
  std::optional<raft::SnapshotMeta> compact(Index index, std::string data) override {
    return raft_.compact(index, std::move(data));
  }
  bool has_ready() const override { return raft_.has_ready(); }
  raft::Ready ready() override { return raft_.ready(); }
  void advance() override { raft_.advance(); }
  NodeId id() const override { return raft_.id(); }
  raft::Role role() const override { return raft_.role(); }
  raft::Term term() const override { return raft_.term(); }
  NodeId leader() const override { return raft_.leader(); }
  const raft::ConfState& conf() const override { return raft_.conf(); }
  Index committed_index() const override { return raft_.committed_index(); }
  Index last_index() const override { return raft_.last_index(); }
  Index snapshot_index() const override { return raft_.snapshot_index(); }
  Index conf_index() const override { return raft_.conf_index(); }
  StateTrust state_trust() const override { return {interval_}; }
  void state_retained(Index index, const std::string& digest) override {
    applied.emplace_back(index.value, digest);
  }
  bool state_certified(Index index, const std::string& digest) const override {
    return certified.contains({index.value, digest});
  }

  std::vector<std::pair<uint64_t, std::string>> applied;
  std::set<std::pair<uint64_t, std::string>> certified;

 private:
  raft::Raft raft_;
  uint64_t interval_;
};

// Follower 2 of {1, 2, 3, 4}, handed a snapshot at index 10, trusting no single member.
struct DistrustingFollower {
  ScriptedHost host;
  Distrusting engine{config(2, {1, 2, 3, 4}), 5};
  Driver driver;
  DistrustingFollower() : driver(engine, host, test_options(), 0) {
    engine.certified.insert({10, "d10"});
    Message m;
    m.type = MessageType::kSnapshot;
    m.from = NodeId(1);
    m.to = NodeId(2);
    m.term = raft::Term(1);
    m.snapshot_meta.index = Index(10);
    m.snapshot_meta.term = raft::Term(1);
    m.snapshot_meta.conf = config(2, {1, 2, 3, 4}).initial_conf;
    m.snapshot_chunk = encode_state_ref(10);
    m.snapshot_total = m.snapshot_chunk.size();
    m.snapshot_done = true;
    driver.step(m);
    driver.run();
  }
};

// A liar's "11" at index 10 is a different state at the same index: its digest is not the
// certified one, and the next member is asked.
TEST(Driver, AFetchedStateIsTakenOnlyWithADigestTheEngineCertifies) {
  DistrustingFollower n;
  ASSERT_EQ(n.host.fetches.size(), 1u);
  EXPECT_EQ(n.host.calls.back(), "fetch retained");
  n.driver.state_fetched(std::string("11"), 10, "");
  n.driver.run();
  EXPECT_EQ(position(n.host.calls, "restore"), n.host.calls.size());
  EXPECT_TRUE(n.driver.ready_in_flight());
  for (int i = 0; i < 10 && n.host.fetches.size() < 2; ++i) {
    n.driver.tick();
    n.driver.run();
  }
  ASSERT_EQ(n.host.fetches.size(), 2u);
  EXPECT_NE(n.host.fetches[1].first, n.host.fetches[0].first);
  n.driver.state_fetched(std::string("15"), 15, "");  // a later state nobody certified yet
  n.driver.run();
  EXPECT_EQ(position(n.host.calls, "restore"), n.host.calls.size());
  for (int i = 0; i < 10 && n.host.fetches.size() < 3; ++i) {
    n.driver.tick();
    n.driver.run();
  }
  ASSERT_EQ(n.host.fetches.size(), 3u);
  n.driver.state_fetched(std::string("10"), 10, "");
  n.driver.run();
  EXPECT_EQ(n.host.applied, 10u);
  EXPECT_FALSE(n.driver.ready_in_flight());
  // The installed state is kept for others to fetch: it is at a multiple of the interval.
  EXPECT_EQ(n.host.retained, std::vector<uint64_t>{10});
}

TEST(Driver, AnEngineThatRetainsStatesHasThemKeptAndDigestedAtEachMultipleOfItsInterval) {
  ScriptedHost host;
  Distrusting engine{config(1, {1}), 5};
  Driver driver(engine, host, test_options(), 0);
  for (int i = 0; i < 40 && engine.role() != raft::Role::kLeader; ++i) {
    driver.tick();
    driver.run();
  }
  ASSERT_EQ(engine.role(), raft::Role::kLeader);
  for (int i = 0; i < 11; ++i) engine.propose("x");
  driver.run();
  EXPECT_EQ(host.applied, 12u);
  EXPECT_EQ(host.retained, (std::vector<uint64_t>{5, 10}));
  // The host reports each state kept with its digest; the engine hears of it.
  driver.state_retained(5, "d5");
  driver.state_retained(10, "d10");
  using Applied = std::vector<std::pair<uint64_t, std::string>>;
  EXPECT_EQ(engine.applied, (Applied{{5, "d5"}, {10, "d10"}}));
  const size_t at5 = position(host.calls, "retain 5");
  ASSERT_LT(at5, host.calls.size());
  EXPECT_EQ(host.calls[at5 - 1], "apply");
}

TEST(Driver, StatesAnEarlierProcessRetainedAreToldToTheEngineAtStart) {
  ScriptedHost host;
  host.kept_before = {{5, "d5"}, {10, "d10"}};
  Distrusting engine{config(1, {1}), 5};
  Driver driver(engine, host, test_options(), 0);
  using Applied = std::vector<std::pair<uint64_t, std::string>>;
  EXPECT_EQ(engine.applied, (Applied{{5, "d5"}, {10, "d10"}}));
}

TEST(Driver, TheLogIsCompactedToAReferenceOnceTheStateIsFlushed) {
  DriverOptions options = test_options();
  options.snapshot_entries = 3;
  LoneLeader n(options);
  for (const char* data : {"a", "b", "c"}) n.raft.propose(data);
  n.driver.run();
  ASSERT_EQ(n.host.flushes.size(), 1u);
  EXPECT_EQ(n.host.flushes[0], 4u);
  EXPECT_TRUE(n.host.snapshots.empty());  // not before the flush is done
  n.raft.propose("d");
  n.driver.run();
  EXPECT_EQ(n.host.flushes.size(), 1u);  // one flush at a time
  n.driver.state_flushed(4);
  n.driver.run();
  ASSERT_EQ(n.host.snapshots.size(), 1u);
  EXPECT_EQ(n.host.snapshots[0].meta.index, Index(4));
  EXPECT_EQ(decode_state_ref(n.host.snapshots[0].data), 4u);
  EXPECT_EQ(n.raft.snapshot_index(), Index(4));
  EXPECT_EQ(n.host.disk.entries.front().index, Index(5));
}

TEST(Driver, ASnapshotWaitsForAStateFlushInProgress) {
  DriverOptions options = test_options();
  options.snapshot_entries = 1;
  FollowerWithSnapshot n(options);
  n.driver.state_fetched(std::string("12"), 12, "");
  n.driver.run();
  ASSERT_EQ(n.host.flushes.size(), 1u);  // applied 12 >= 10 + 1: a compaction's flush began
  Message m;                             // a newer snapshot arrives meanwhile
  m.type = MessageType::kSnapshot;
  m.from = NodeId(1);
  m.to = NodeId(2);
  m.term = raft::Term(1);
  m.snapshot_meta.index = Index(20);
  m.snapshot_meta.term = raft::Term(1);
  m.snapshot_meta.conf = config(2, {1, 2}).initial_conf;
  m.snapshot_chunk = encode_state_ref(20);
  m.snapshot_total = m.snapshot_chunk.size();
  m.snapshot_done = true;
  n.driver.step(m);
  n.driver.run();
  EXPECT_EQ(n.host.fetches.size(), 1u);  // no restore under a flush of the old state
  n.driver.state_flushed(12);
  n.driver.run();
  ASSERT_EQ(n.host.fetches.size(), 2u);
  EXPECT_EQ(n.host.fetches[1].second, 20u);
}

TEST(Driver, ReadsAskedTogetherShareOneRoundAndAreServedAtTheReadIndex) {
  LoneLeader n;
  std::vector<ReadOutcome> outcomes;
  for (int i = 0; i < 3; ++i) {
    n.driver.read([&](ReadOutcome o) { outcomes.push_back(o); }, 10);
  }
  EXPECT_EQ(n.driver.pending_reads(), 3u);
  n.driver.run();
  EXPECT_EQ(outcomes, std::vector<ReadOutcome>(3, ReadOutcome::kOk));
  EXPECT_EQ(n.driver.pending_reads(), 0u);
}

TEST(Driver, AReadWithoutALeaderFailsAtItsDeadline) {
  ScriptedHost host;
  raft::Raft raft(config(1, {1, 2, 3}), {});
  Driver driver(raft, host, test_options(), 0);
  std::vector<ReadOutcome> outcomes;
  driver.read([&](ReadOutcome o) { outcomes.push_back(o); }, 2);
  driver.run();
  driver.tick();
  driver.run();
  EXPECT_TRUE(outcomes.empty());
  driver.tick();
  driver.tick();
  EXPECT_EQ(outcomes, std::vector<ReadOutcome>{ReadOutcome::kNoLeader});
}

TEST(Driver, EachReadFailsAtItsOwnDeadline) {
  ScriptedHost host;
  raft::Raft raft(config(1, {1, 2, 3}), {});
  Driver driver(raft, host, test_options(), 0);
  std::vector<std::string> failed;
  for (auto [name, timeout_ticks] : {std::pair{"a", 3}, {"b", 1}, {"c", 2}, {"d", 1}}) {
    driver.read([&failed, name](ReadOutcome) { failed.push_back(name); },
                static_cast<uint32_t>(timeout_ticks));
  }
  driver.run();
  driver.tick();
  EXPECT_EQ(failed, (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(driver.pending_reads(), 2u);
  driver.tick();
  EXPECT_EQ(failed, (std::vector<std::string>{"b", "d", "c"}));
  driver.tick();
  EXPECT_EQ(failed, (std::vector<std::string>{"b", "d", "c", "a"}));
  EXPECT_EQ(driver.pending_reads(), 0u);
}

TEST(Driver, AnAnsweredReadDoesNotFailAtItsDeadline) {
  LoneLeader n;
  std::vector<ReadOutcome> outcomes;
  n.driver.read([&](ReadOutcome o) { outcomes.push_back(o); }, 2);
  n.driver.run();
  for (int i = 0; i < 5; ++i) n.driver.tick();
  n.driver.abandon_reads();
  EXPECT_EQ(outcomes, std::vector<ReadOutcome>{ReadOutcome::kOk});
}

TEST(Driver, ReadsPastTheBoundAreRefused) {
  DriverOptions options = test_options();
  options.max_pending_reads = 2;
  LoneLeader n(options);
  std::vector<ReadOutcome> outcomes;
  for (int i = 0; i < 3; ++i) n.driver.read([&](ReadOutcome o) { outcomes.push_back(o); }, 10);
  EXPECT_EQ(outcomes, std::vector<ReadOutcome>{ReadOutcome::kBusy});
}

TEST(Driver, AbandonedReadsAllFail) {
  ScriptedHost host;
  raft::Raft raft(config(1, {1, 2, 3}), {});
  Driver driver(raft, host, test_options(), 0);
  int failed = 0;
  for (int i = 0; i < 4; ++i)
    driver.read([&](ReadOutcome o) { failed += o != ReadOutcome::kOk; }, 100);
  driver.abandon_reads();
  EXPECT_EQ(failed, 4);
  EXPECT_EQ(driver.pending_reads(), 0u);
}

// A member restarts with a state fetched ahead of its log's commit hint (through index 4), and
// a log whose entries past the hint (3..5, term 1) came from a leader deposed before they were
// committed. The new leader's entries at those indexes (term 2) replace them; what the state
// already holds is not applied again.
TEST(Driver, ARestartedFollowerTakesTheLeadersEntriesOverItsOwnPastItsCommitHint) {
  ScriptedHost host;
  for (uint64_t i = 1; i <= 5; ++i) host.disk.entries.push_back(Entry{raft::Term(1), Index(i)});
  host.disk.hard_state.term = raft::Term(1);
  host.disk.hard_state.commit = Index(2);
  host.applied = 4;
  raft::Persisted disk = host.disk;
  raft::Config c = config(2, {1, 2});
  c.applied = Index(recover(EngineKind::kRaft, disk, host.applied));
  EXPECT_EQ(disk.hard_state.commit, Index(2));
  EXPECT_EQ(c.applied, Index(2));
  raft::Raft raft(c, disk);
  Driver driver(raft, host, test_options(), 0);

  Message m;
  m.type = MessageType::kAppend;
  m.from = NodeId(1);
  m.to = NodeId(2);
  m.term = raft::Term(2);
  m.log_index = Index(2);
  m.log_term = raft::Term(1);
  m.entries = {Entry{raft::Term(2), Index(3)}, Entry{raft::Term(2), Index(4)}};
  m.commit = Index(4);
  driver.step(m);
  driver.run();

  ASSERT_EQ(host.disk.entries.size(), 4u);
  EXPECT_EQ(host.disk.entries[2].term, raft::Term(2));
  EXPECT_EQ(host.disk.entries[3].term, raft::Term(2));
  ASSERT_FALSE(host.sent.empty());
  EXPECT_EQ(host.sent.back().type, MessageType::kAppendResp);
  EXPECT_FALSE(host.sent.back().reject);
  EXPECT_EQ(host.sent.back().log_index, Index(4));
  EXPECT_EQ(host.applied, 4u);  // entries 3 and 4 committed; the state held them already
  EXPECT_EQ(raft.committed_index(), Index(4));
}

TEST(Driver, RecoveryCountsTheSnapshotAsCommittedAndNothingPastTheHint) {
  raft::Persisted disk;
  disk.snapshot = raft::Snapshot{};
  disk.snapshot->meta.index = Index(10);
  disk.snapshot->meta.term = raft::Term(1);
  for (uint64_t i = 11; i <= 15; ++i) disk.entries.push_back(Entry{raft::Term(1), Index(i)});
  disk.hard_state.commit = Index(3);  // a hint older than the snapshot
  EXPECT_EQ(recover(EngineKind::kRaft, disk, 14), 10u);
  EXPECT_EQ(disk.hard_state.commit, Index(10));
  disk.hard_state.commit = Index(12);
  EXPECT_EQ(recover(EngineKind::kRaft, disk, 14), 12u);
  EXPECT_EQ(disk.hard_state.commit, Index(12));
  // The other engines start applying from what the state applied.
  EXPECT_EQ(recover(EngineKind::kMultiPaxos, disk, 14), 14u);
  EXPECT_EQ(disk.hard_state.commit, Index(12));
}

TEST(DriverDeathTest, InputsFromASecondThreadAbort) {
  LoneLeader n;
  EXPECT_DEATH(
      {
        std::thread other([&] { n.driver.tick(); });
        other.join();
      },
      "SYNOD_ASSERT");
}

// A follower of {1,2} whose leader is 1, restarted from `disk` with its own read contexts.
struct Follower {
  ScriptedHost host;
  raft::Raft raft;
  Driver driver;
  Follower(const raft::Persisted& disk, uint64_t first_read_context)
      : raft(config(2, {1, 2}), disk), driver(raft, host, test_options(first_read_context), 0) {
    Message hb;  // the leader of term 1 makes itself known
    hb.type = MessageType::kHeartbeat;
    hb.from = NodeId(1);
    hb.to = NodeId(2);
    hb.term = raft::Term(1);
    driver.step(hb);
    driver.run();
  }
  // Asks a read; returns the context of the ForwardRead it sent.
  uint64_t read(std::vector<ReadOutcome>& outcomes) {
    host.sent.clear();
    driver.read([&outcomes](ReadOutcome o) { outcomes.push_back(o); }, 100);
    driver.run();
    for (const Message& m : host.sent) {
      if (m.type == MessageType::kForwardRead) return m.context;
    }
    ADD_FAILURE() << "no ForwardRead sent";
    return 0;
  }
  void answer(uint64_t context, uint64_t read_index) {
    Message r;
    r.type = MessageType::kForwardReadResp;
    r.from = NodeId(1);
    r.to = NodeId(2);
    r.context = context;
    r.log_index = Index(read_index);
    driver.step(r);
    driver.run();
  }
};

// Regression: the leader's answer to a round the previous process asked reached the restarted
// one, whose contexts began again at 1, and served its new read at the old read index (a stale
// read in the simulator, seed 2702524 --nodes 5 --clients 20 --ops 1000 at 618058a).
TEST(Driver, AnAnswerToTheRoundOfAnEarlierProcessDoesNotServeANewRead) {
  std::vector<ReadOutcome> outcomes;
  raft::Persisted disk;
  uint64_t old_context = 0;
  {
    Follower before(disk, 1);
    old_context = before.read(outcomes);
    disk = before.host.disk;
  }
  Follower after(disk, uint64_t{2} << 32);
  const uint64_t new_context = after.read(outcomes);
  EXPECT_NE(new_context, old_context);
  after.answer(old_context, 0);  // the old round's answer, from before the restart
  EXPECT_TRUE(outcomes.empty());
  after.answer(new_context, 0);
  EXPECT_EQ(outcomes, std::vector<ReadOutcome>{ReadOutcome::kOk});
}

}  // namespace
}  // namespace synod::replica
