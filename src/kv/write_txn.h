// kv::WriteTxn: one MVCC write transaction (etcd's storeTxnWrite). Every write in it shares
// main revision begin_revision + 1 and takes the next sub-revision; reads see earlier writes.
// Nothing reaches the backend until the owner writes view().batch().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/backend.h"
#include "kv/batch_view.h"
#include "mvccpb/kv.pb.h"

namespace synod::kv {

class WriteTxn {
 public:
  WriteTxn(const Backend& backend, int64_t begin_revision);

  const BatchView& view() const { return view_; }
  BatchView& view() { return view_; }
  int64_t begin_revision() const { return begin_revision_; }
  bool changed() const { return next_sub_ > 0; }
  // The revision the txn's own reads observe: begin, or begin + 1 once it has written.
  int64_t read_revision() const { return begin_revision_ + (changed() ? 1 : 0); }
  // The revision the store is at once this txn commits.
  int64_t end_revision() const { return read_revision(); }

  std::optional<mvccpb::KeyValue> current(std::string_view key) const;
  // Writes a new version of key and returns it.
  mvccpb::KeyValue put(std::string_view key, std::string value, int64_t lease);
  // Deletes every live key of [key, range_end) (etcd's rules); returns their last versions.
  std::vector<mvccpb::KeyValue> delete_range(std::string_view key, std::string_view range_end);

 private:
  int64_t write_revision() const { return begin_revision_ + 1; }
  void record(std::string_view key, char tag, const mvccpb::KeyValue& kv);
  void delete_key(const mvccpb::KeyValue& last);

  BatchView view_;
  int64_t begin_revision_;
  int64_t next_sub_ = 0;
};

}  // namespace synod::kv
