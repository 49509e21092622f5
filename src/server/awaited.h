// One answer handed to a callback, waited for by a thread that may block (a sync gRPC handler,
// a background loop), for at most a deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

namespace synod::server {

template <typename T>
class Awaited {
 public:
  void set(T value) {
    std::lock_guard lock(mu_);
    value_ = std::move(value);
    cv_.notify_all();
  }
  // The answer, or nullopt if none came within `deadline`.
  std::optional<T> wait(std::chrono::milliseconds deadline) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, deadline, [&] { return value_.has_value(); });
    return std::move(value_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<T> value_;
};

}  // namespace synod::server
