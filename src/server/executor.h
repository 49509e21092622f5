// A fixed pool of worker threads with a bounded queue, for work handed off the raft thread
// (serving reads once their read index is applied), and tasks that wait a little first
// (a request retried after a short back-off).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace synod::server {

class Executor {
 public:
  explicit Executor(size_t threads) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
  }
  ~Executor() { stop(); }
  // Runs what is queued (timed tasks at once) and stops the workers. Idempotent; call it while
  // what the tasks use is still there.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : workers_) {
      if (t.joinable()) t.join();
    }
  }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

  // Runs `task` once `delay` has passed (at once when the executor stops: nothing queued is
  // dropped, so a call waiting on it is still answered).
  void post_after(std::chrono::milliseconds delay, std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      timed_.emplace(std::chrono::steady_clock::now() + delay, std::move(task));
    }
    cv_.notify_all();
  }

 private:
  void run() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        while (true) {
          const auto now = std::chrono::steady_clock::now();
          if (!timed_.empty() && (stopping_ || timed_.begin()->first <= now)) {
            tasks_.push_back(std::move(timed_.begin()->second));
            timed_.erase(timed_.begin());
          }
          if (!tasks_.empty() || stopping_) break;
          if (timed_.empty()) {
            cv_.wait(lock);
          } else {
            cv_.wait_until(lock, timed_.begin()->first);
          }
        }
        if (tasks_.empty()) return;  // stopping, and everything queued has run
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> timed_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace synod::server
