// kv::WriteTxn: one MVCC write transaction (etcd's storeTxnWrite). Every write in it shares
// main revision begin_revision + 1 and takes the next sub-revision; reads see earlier writes.
// Nothing reaches the backend until the owner writes view().take_batch().
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/backend.h"
#include "kv/batch_view.h"
#include "kv/key_index.h"
#include "mvccpb/kv.pb.h"

namespace synod::kv {

class WriteTxn {
 public:
  // `index`, if given, is the store's index of the backend's current table; the txn reads
  // key metadata from it (and from its own writes) instead of the backend.
  // `stamp`: the revision the txn's writes take if it is above begin_revision (a sharded
  // cluster's timestamps; revisions then are not dense); else begin_revision + 1.
  WriteTxn(const Backend& backend, int64_t begin_revision, const KeyIndex* index = nullptr,
           int64_t stamp = 0);

  const BatchView& view() const { return view_; }
  BatchView& view() { return view_; }
  int64_t begin_revision() const { return begin_revision_; }
  bool changed() const { return next_sub_ > 0 || advanced_; }
  // The txn carries a stamp (a sharded cluster's timestamp) above begin_revision: its write
  // revision is an oracle timestamp no other entry of any group has.
  bool stamped() const { return stamped_; }
  // Moves the revision on to the write revision without writing anything.
  void advance() { advanced_ = true; }
  // Before any write: the writes take `revision` instead, which may be at or below
  // begin_revision (a cross-shard transaction's commit revision, in a group whose revision
  // passed it while the keys it writes were held: no version of them is above it, and no
  // other write of the group is at it). The store's revision does not go back.
  void write_at(int64_t revision);
  // The revision the txn's own reads observe: begin, or the write revision once it has written
  // (begin still, for writes at a revision below it).
  int64_t read_revision() const {
    return changed() ? std::max(write_revision_, begin_revision_) : begin_revision_;
  }
  // The revision the store is at once this txn commits.
  int64_t end_revision() const { return read_revision(); }

  std::optional<mvccpb::KeyValue> current(std::string_view key) const;
  bool lease_exists(int64_t id) const;
  // The current version's metadata (no value): what a put needs, without a backend read when
  // the txn has an index.
  std::optional<KeyMeta> current_meta(std::string_view key) const;
  // Writes a new version of key and returns it.
  mvccpb::KeyValue put(std::string_view key, std::string value, int64_t lease);
  // Deletes every live key of [key, range_end) (etcd's rules); returns their last versions.
  std::vector<mvccpb::KeyValue> delete_range(std::string_view key, std::string_view range_end);

  // The txn's changes to the current table, for the store's index: key -> new metadata, or
  // nullopt for a delete.
  using IndexChanges = std::map<std::string, std::optional<KeyMeta>, std::less<>>;
  const IndexChanges& index_changes() const { return index_changes_; }

  // Appends an mvccpb::Event for every write from now on (watch delivery), prev_kv unset.
  void record_events(std::vector<mvccpb::Event>* events) { events_ = events; }

 private:
  int64_t write_revision() const { return write_revision_; }
  // Writes the history row (and its revision-log entry) at the next sub-revision.
  void record(std::string_view key, std::string history_value);
  void delete_key(const mvccpb::KeyValue& last);

  BatchView view_;
  const KeyIndex* index_;
  IndexChanges index_changes_;
  std::vector<mvccpb::Event>* events_ = nullptr;
  int64_t begin_revision_;
  int64_t write_revision_;
  int64_t next_sub_ = 0;
  bool advanced_ = false;
  bool stamped_ = false;
};

}  // namespace synod::kv
