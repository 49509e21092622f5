// The group loop: which members it passes and when, how a member leaves, and the sync at the end
// of a round that every member's deferred writes share.
#include "server/group_loop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace synod::server {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) for `done`; the loop runs on its own thread.
bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

// Records what the loop does to it, in one log shared by every member of a test.
class Recorder {
 public:
  void add(std::string event) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  size_t count(const std::string& event) const {
    std::lock_guard lock(mu_);
    return static_cast<size_t>(std::count(events_.begin(), events_.end(), event));
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

class FakeMember : public GroupLoop::Member {
 public:
  FakeMember(std::string name, Recorder& log) : name_(std::move(name)), log_(log) {}

  bool pass(bool tick) override {
    log_.add(name_ + (tick ? " tick" : " pass"));
    if (defer_next_ && loop_ != nullptr) {
      defer_next_ = false;
      loop_->defer_sync(this, on_sync_file_system_);
    }
    return more_passes_.load() > 0 && more_passes_.fetch_sub(1) > 0;
  }
  void leave() override { log_.add(name_ + " leave"); }
  void synced(bool data_synced) override {
    log_.add(name_ + (data_synced ? " synced by the loop" : " synced alone"));
  }

  // The next pass defers a sync on `loop`.
  void defer_in_next_pass(GroupLoop* loop, bool on_sync_file_system) {
    loop_ = loop;
    on_sync_file_system_ = on_sync_file_system;
    defer_next_ = true;
  }
  std::atomic<int> more_passes_{0};

 private:
  std::string name_;
  Recorder& log_;
  GroupLoop* loop_ = nullptr;
  bool on_sync_file_system_ = false;
  std::atomic<bool> defer_next_{false};
};

GroupLoop::Options no_ticks() {
  GroupLoop::Options o;
  o.tick = std::chrono::hours(24 * 365 * 100);  // no tick within a test
  return o;
}

TEST(GroupLoop, AMemberIsPassedWhenAddedAndOnEveryWake) {
  Recorder log;
  FakeMember a("a", log);
  GroupLoop loop(no_ticks());
  loop.add(&a);
  ASSERT_TRUE(eventually([&] { return log.count("a pass") == 1; }));
  loop.wake(&a);
  ASSERT_TRUE(eventually([&] { return log.count("a pass") == 2; }));
  loop.remove(&a);
  loop.stop();
}

TEST(GroupLoop, AMemberWithMoreToDoIsPassedAgainWithoutAWake) {
  Recorder log;
  FakeMember a("a", log);
  a.more_passes_ = 3;
  GroupLoop loop(no_ticks());
  loop.add(&a);
  ASSERT_TRUE(eventually([&] { return log.count("a pass") == 4; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(log.count("a pass"), 4u);  // then it waits for a wake
  loop.remove(&a);
}

TEST(GroupLoop, EveryMemberTicksTogether) {
  Recorder log;
  FakeMember a("a", log), b("b", log);
  GroupLoop::Options o;
  o.tick = 5ms;
  GroupLoop loop(o);
  loop.add(&a);
  loop.add(&b);
  ASSERT_TRUE(eventually([&] { return log.count("a tick") >= 3 && log.count("b tick") >= 3; }));
  loop.remove(&a);
  loop.remove(&b);
}

TEST(GroupLoop, ARemovedMemberLeavesOnTheLoopAndIsNeverPassedAgain) {
  Recorder log;
  FakeMember a("a", log);
  GroupLoop loop(no_ticks());
  loop.add(&a);
  ASSERT_TRUE(eventually([&] { return log.count("a pass") == 1; }));
  loop.remove(&a);
  EXPECT_EQ(log.count("a leave"), 1u);  // remove() returns after leave()
  loop.wake(&a);                        // an input that arrives after its stop
  loop.remove(&a);                      // a second remove returns at once
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(log.count("a pass"), 1u);
  EXPECT_EQ(log.count("a leave"), 1u);
}

TEST(GroupLoop, TwoRemovesOfOneMemberLeaveItOnce) {
  Recorder log;
  FakeMember a("a", log);
  GroupLoop loop(no_ticks());
  loop.add(&a);
  std::thread other([&] { loop.remove(&a); });
  loop.remove(&a);
  EXPECT_EQ(log.count("a leave"), 1u);  // both returned after the one leave()
  other.join();
  EXPECT_EQ(log.count("a leave"), 1u);
}

TEST(GroupLoop, RemovingAMemberNeverAddedReturnsAtOnce) {
  Recorder log;
  FakeMember a("a", log);
  GroupLoop loop(no_ticks());
  loop.remove(&a);
  EXPECT_TRUE(log.events().empty());
}

TEST(GroupLoop, DeferredWritesAreSyncedAtTheRoundsEndBeforeItsMessagesGoOut) {
  Recorder log;
  FakeMember a("a", log), b("b", log);
  GroupLoop::Options o = no_ticks();
  o.begin_round = [&] { log.add("begin"); };
  o.end_round = [&] { log.add("end"); };
  GroupLoop loop(o);
  loop.add(&a);
  ASSERT_TRUE(eventually([&] { return log.count("end") == 1; }));
  loop.add(&b);
  ASSERT_TRUE(eventually([&] { return log.count("end") == 2; }));
  a.defer_in_next_pass(&loop, false);
  loop.wake(&a);
  ASSERT_TRUE(eventually([&] { return log.count("end") == 4; }));
  const std::vector<std::string> events = log.events();
  const std::vector<std::string> last(events.end() - 6, events.end());
  // The pass's messages leave before the sync; what the synced member sends, after it.
  EXPECT_EQ(last,
            (std::vector<std::string>{"begin", "a pass", "end", "begin", "a synced alone", "end"}));
  loop.remove(&a);
  loop.remove(&b);
}

TEST(GroupLoop, OneSyncOfTheFileSystemServesEveryMemberOnIt) {
  Recorder log;
  FakeMember a("a", log), b("b", log), c("c", log);
  GroupLoop::Options o = no_ticks();
  o.sync_dir = ::testing::TempDir();
  GroupLoop loop(o);
  if (!loop.syncs_file_system_of(::testing::TempDir())) {
    GTEST_SKIP() << "syncfs does not report write-back errors on this kernel (before 5.8)";
  }
  EXPECT_FALSE(loop.syncs_file_system_of("/no/such/path"));
  // a and b defer in one round (added together, passed together); c's log is elsewhere.
  a.defer_in_next_pass(&loop, true);
  b.defer_in_next_pass(&loop, true);
  c.defer_in_next_pass(&loop, false);
  loop.add(&a);
  loop.add(&b);
  loop.add(&c);
  ASSERT_TRUE(eventually([&] {
    return log.count("a synced by the loop") + log.count("a synced alone") == 1 &&
           log.count("b synced by the loop") + log.count("b synced alone") == 1 &&
           log.count("c synced alone") == 1;
  }));
  // The three adds may land in one round or two; in one, a and b share the syncfs.
  if (log.count("a synced by the loop") == 1) {
    EXPECT_EQ(log.count("b synced by the loop"), 1u);
  }
  EXPECT_EQ(log.count("c synced by the loop"), 0u);
  // One member's writes alone: its own fdatasync, the narrower barrier.
  const size_t alone_before = log.count("a synced alone");
  a.defer_in_next_pass(&loop, true);
  loop.wake(&a);
  ASSERT_TRUE(eventually([&] { return log.count("a synced alone") == alone_before + 1; }));
  loop.remove(&a);
  loop.remove(&b);
  loop.remove(&c);
}

TEST(GroupLoop, AMemberAddedAfterStopNeverRuns) {
  Recorder log;
  FakeMember a("a", log), b("b", log);
  GroupLoop loop(no_ticks());
  loop.add(&a);
  ASSERT_TRUE(eventually([&] { return log.count("a pass") == 1; }));
  loop.remove(&a);
  loop.stop();
  loop.add(&b);  // a group opened as the member shuts down
  loop.wake(&b);
  loop.remove(&b);
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(log.count("b pass"), 0u);
  EXPECT_EQ(log.count("b leave"), 0u);
}

}  // namespace
}  // namespace synod::server
