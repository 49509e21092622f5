// One raft thread for many replication groups (a sharded member's data groups). Each group is
// a Member whose work comes in passes: a pass takes the group's waiting inputs, a tick if one
// is due, and runs its Ready loop once. The loop runs a pass of every member that was woken
// (an input arrived), of every member at each tick (all groups tick on one grid of the
// monotonic clock, so their heartbeats leave together), and again at once of a member whose
// pass said there is more to do.
//
// Why one thread: with a thread per group, a member hosting 64 groups under a load spread over
// them pays a thread wake-up and a context switch per request per group, and each group's
// Ready batches about one request; on one thread a busy member's groups run back to back with
// no wake-up between them and one wake-up covers every input that arrived meanwhile.
//
// Thread-safety: wake() from any thread; add() and remove() from any thread but the loop's.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace synod::server {

// The first tick after `now` on the grid of the monotonic clock `tick` apart. Every raft thread
// of a member, a group loop or a node's own, ticks on it, so the heartbeats of all its groups
// to a peer leave together.
std::chrono::steady_clock::time_point next_tick_after(std::chrono::steady_clock::time_point now,
                                                      std::chrono::milliseconds tick);

class GroupLoop {
 public:
  class Member {
   public:
    virtual ~Member() = default;
    // One pass over the member's inputs, with a tick when `tick` is set. Returns true if
    // there is more work to do at once (the loop passes it again without waiting).
    virtual bool pass(bool tick) = 0;
    // The member leaves the loop: its last call, on the loop's thread (remove()).
    virtual void leave() = 0;
    // What the member wrote before defer_sync() is durable now if `data_synced` (the loop
    // made the file system's data durable); else the member makes its own writes durable.
    virtual void synced(bool data_synced) = 0;

   private:
    friend class GroupLoop;
    // Under the loop's mutex:
    bool in_loop_ = false;   // added, and not yet taken for leaving
    bool removing_ = false;  // remove() called
    bool woken_ = false;     // in woken_
    bool left_ = false;      // leave() ran
    // The loop thread's: the last round that passed it (no second pass in one round).
    uint64_t passed_in_ = 0;
  };

  struct Options {
    std::chrono::milliseconds tick{100};
    // Run on the loop's thread around each round of passes and around its sync (the transport
    // holds what they send and sends it in one frame per peer at the end).
    std::function<void()> begin_round;
    std::function<void()> end_round;
    // A directory on the file system that holds the members' logs. When set, the writes of
    // a round's members on that file system are made durable by one syncfs(2) of it, not an
    // fdatasync each: on Linux 5.8 and later (where syncfs reports write-back errors), and on
    // ext4, XFS, Btrfs or tmpfs (not overlayfs, whose lower errors may not reach the caller).
    std::string sync_dir;
  };
  explicit GroupLoop(Options options);
  ~GroupLoop();
  GroupLoop(const GroupLoop&) = delete;
  GroupLoop& operator=(const GroupLoop&) = delete;

  // Starts passing `member`: at once, then on every wake and tick. Starts the thread on the
  // first call. After stop(), does nothing.
  void add(Member* member);
  // `member` has input: the loop passes it soon. Cheap when it is already woken.
  void wake(Member* member);
  // Stops passing `member`; returns once its leave() ran on the loop's thread. After that the
  // loop never touches it again.
  void remove(Member* member);
  // Whether a file at `path` is on the file system one syncfs makes durable (Options::sync_dir).
  bool syncs_file_system_of(const std::string& path) const;
  // Loop thread, in a pass: `member` wrote records that must be durable before it goes on;
  // at the round's end the loop makes them durable and calls member->synced().
  // `on_sync_file_system`: they are files for which syncs_file_system_of() holds.
  void defer_sync(Member* member, bool on_sync_file_system);
  // Stops the thread. Every member must have been removed.
  void stop();

 private:
  void run();
  // Under mu_: takes the leaving members out of the loop's lists, for leave() outside the lock.
  std::vector<Member*> take_leaving();
  // Runs the leavers' leave() and tells remove() they are gone.
  void finish_leaving(const std::vector<Member*>& leaving);

  // At the end of a round: makes the deferred writes durable and tells their members.
  void sync_deferred();

  struct Deferred {
    Member* member = nullptr;
    bool on_sync_file_system = false;
  };
  const Options options_;
  int sync_fd_ = -1;  // Options::sync_dir, if syncfs is used
  uint64_t sync_device_ = 0;
  std::vector<Deferred> deferred_;  // loop thread only
  std::mutex mu_;
  std::condition_variable cv_;       // the loop waits for wakes, leavers and stop
  std::condition_variable left_cv_;  // remove() waits for its member's leave()
  std::vector<Member*> members_;     // every member added and not removed
  std::vector<Member*> woken_;       // passed next, in the order woken
  std::vector<Member*> leaving_;     // remove() called, leave() not yet run
  std::vector<Member*> again_;       // loop thread only: asked for another pass at once
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace synod::server
