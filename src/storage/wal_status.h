// WalStatus: the error-as-value type of the WAL and snapshot files.
//
// An empty message means success. Every I/O failure is returned as one of these, never swallowed;
// a failed write or fsync also poisons the Wal that saw it (see wal.h).
#pragma once

#include <cassert>
#include <string>
#include <utility>

namespace synod::storage {

class [[nodiscard]] WalStatus {
 public:
  WalStatus() = default;  // success

  static WalStatus error(std::string message) {
    assert(!message.empty());
    WalStatus s;
    s.message_ = std::move(message);
    return s;
  }

  bool ok() const { return message_.empty(); }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

}  // namespace synod::storage
