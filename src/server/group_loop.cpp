#include "server/group_loop.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/assert.h"

namespace synod::server {

namespace {

using Clock = std::chrono::steady_clock;

void erase_member(std::vector<GroupLoop::Member*>& list, GroupLoop::Member* member) {
  list.erase(std::remove(list.begin(), list.end(), member), list.end());
}

// syncfs reports the file system's write-back errors to its caller from Linux 5.8 on; before,
// it could return success over a write that failed, so it is not used there.
bool syncfs_reports_errors() {
  struct utsname name {};
  if (::uname(&name) != 0) return false;
  unsigned major = 0, minor = 0;
  if (std::sscanf(name.release, "%u.%u", &major, &minor) != 2) return false;
  return major > 5 || (major == 5 && minor >= 8);
}

// File systems whose syncfs writes back every file's data and reports a failure to do so. On
// others (overlayfs, network file systems) an error of the file system underneath may not
// reach the caller, and each log is fdatasynced instead.
bool syncfs_is_a_barrier(int fd) {
  constexpr long kExt4 = 0xEF53;  // ext2, ext3 and ext4 share it
  constexpr long kXfs = 0x58465342;
  constexpr long kBtrfs = 0x9123683E;
  constexpr long kTmpfs = 0x01021994;  // nothing to make durable
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return false;
  const long type = static_cast<long>(fs.f_type);
  return type == kExt4 || type == kXfs || type == kBtrfs || type == kTmpfs;
}

}  // namespace

Clock::time_point next_tick_after(Clock::time_point now, std::chrono::milliseconds tick) {
  return Clock::time_point((now.time_since_epoch() / tick + 1) * tick);
}

GroupLoop::GroupLoop(Options options) : options_(std::move(options)) {
  SYNOD_ASSERT(options_.tick.count() > 0);
  if (options_.sync_dir.empty() || !syncfs_reports_errors()) return;
  sync_fd_ = ::open(options_.sync_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sync_fd_ < 0) return;
  struct stat st {};
  if (::fstat(sync_fd_, &st) == 0 && syncfs_is_a_barrier(sync_fd_)) {
    sync_device_ = st.st_dev;
    return;
  }
  ::close(sync_fd_);
  sync_fd_ = -1;
}

GroupLoop::~GroupLoop() {
  stop();
  if (sync_fd_ >= 0) ::close(sync_fd_);
}

bool GroupLoop::syncs_file_system_of(const std::string& path) const {
  struct stat st {};
  return sync_fd_ >= 0 && ::stat(path.c_str(), &st) == 0 && st.st_dev == sync_device_;
}

void GroupLoop::defer_sync(Member* member, bool on_sync_file_system) {
  deferred_.push_back({member, on_sync_file_system});
}

void GroupLoop::sync_deferred() {
  std::vector<Deferred> deferred;
  deferred.swap(deferred_);
  const auto covered = std::count_if(deferred.begin(), deferred.end(),
                                     [](const Deferred& d) { return d.on_sync_file_system; });
  // One member's writes: its own fdatasync is the narrower barrier.
  const bool file_system_synced = covered > 1;
  if (file_system_synced && ::syncfs(sync_fd_) != 0) {
    // Durability rule: a member that cannot make its log durable must not acknowledge anything.
    spdlog::critical("group loop: syncfs of {} failed: {}", options_.sync_dir,
                     std::strerror(errno));
    std::abort();
  }
  for (const Deferred& d : deferred) {
    d.member->synced(file_system_synced && d.on_sync_file_system);
  }
}

void GroupLoop::add(Member* member) {
  std::lock_guard lock(mu_);
  SYNOD_ASSERT(!member->in_loop_ && !member->left_);
  if (stopping_) return;  // a node started as the member shuts down never runs
  member->in_loop_ = true;
  members_.push_back(member);
  member->woken_ = true;
  woken_.push_back(member);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  cv_.notify_one();
}

void GroupLoop::wake(Member* member) {
  std::lock_guard lock(mu_);
  // A member removed already (its inputs arrive after its stop) is not passed again.
  if (!member->in_loop_ || member->woken_) return;
  member->woken_ = true;
  woken_.push_back(member);
  // The first wake of a round wakes the thread; it takes every later one with it.
  if (woken_.size() == 1) cv_.notify_one();
}

void GroupLoop::remove(Member* member) {
  std::unique_lock lock(mu_);
  SYNOD_ASSERT(std::this_thread::get_id() != thread_.get_id());
  if (!member->removing_) {
    if (!member->in_loop_) return;  // never added (or added after stop())
    member->removing_ = true;
    leaving_.push_back(member);
    cv_.notify_one();
  }
  // A second remove() waits for the first one's leave() as well.
  left_cv_.wait(lock, [member] { return member->left_; });
}

void GroupLoop::stop() {
  {
    std::lock_guard lock(mu_);
    SYNOD_ASSERT(members_.empty() && leaving_.empty());
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::vector<GroupLoop::Member*> GroupLoop::take_leaving() {
  std::vector<Member*> leaving;
  leaving.swap(leaving_);
  for (Member* m : leaving) {
    m->in_loop_ = false;
    if (m->woken_) {
      m->woken_ = false;
      erase_member(woken_, m);
    }
    erase_member(members_, m);
  }
  return leaving;
}

void GroupLoop::finish_leaving(const std::vector<Member*>& leaving) {
  if (leaving.empty()) return;
  for (Member* m : leaving) {
    erase_member(again_, m);
    deferred_.erase(std::remove_if(deferred_.begin(), deferred_.end(),
                                   [m](const Deferred& d) { return d.member == m; }),
                    deferred_.end());
    m->leave();
  }
  {
    std::lock_guard lock(mu_);
    for (Member* m : leaving) m->left_ = true;
  }
  left_cv_.notify_all();
}

void GroupLoop::run() {
  Clock::time_point next_tick = next_tick_after(Clock::now(), options_.tick);
  std::vector<Member*> batch;
  uint64_t round = 0;
  while (true) {
    std::vector<Member*> leaving;
    bool tick = false;
    {
      std::unique_lock lock(mu_);
      if (again_.empty() && deferred_.empty()) {
        cv_.wait_until(lock, next_tick,
                       [&] { return stopping_ || !woken_.empty() || !leaving_.empty(); });
      }
      leaving = take_leaving();
      if (stopping_ && leaving.empty()) break;
      batch.swap(woken_);
      for (Member* m : batch) m->woken_ = false;
      const Clock::time_point now = Clock::now();
      if (now >= next_tick) {
        next_tick = next_tick_after(now, options_.tick);
        tick = true;
        batch = members_;  // every member ticks
      }
    }
    finish_leaving(leaving);
    ++round;
    batch.insert(batch.end(), again_.begin(), again_.end());
    again_.clear();
    if (options_.begin_round) options_.begin_round();
    for (Member* m : batch) {
      if (m->passed_in_ == round) continue;
      m->passed_in_ = round;
      if (m->pass(tick)) again_.push_back(m);
    }
    batch.clear();
    // What the passes sent goes out before the round's sync (a leader's appends reach its
    // followers while its own write is made durable); what the synced members send after it
    // follows in a second flush.
    if (options_.end_round) options_.end_round();
    if (!deferred_.empty()) {
      if (options_.begin_round) options_.begin_round();
      sync_deferred();
      if (options_.end_round) options_.end_round();
    }
  }
}

}  // namespace synod::server
