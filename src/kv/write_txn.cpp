#include "kv/write_txn.h"

#include <algorithm>
#include <cassert>

#include "kv/keys.h"
#include "kv/range.h"
#include "kv/records.h"

namespace synod::kv {

WriteTxn::WriteTxn(const Backend& backend, int64_t begin_revision, const KeyIndex* index,
                   int64_t stamp)
    : view_(backend),
      index_(index),
      begin_revision_(begin_revision),
      write_revision_(std::max(begin_revision + 1, stamp)),
      stamped_(stamp > begin_revision) {
  assert(begin_revision >= 1);
}

void WriteTxn::write_at(int64_t revision) {
  assert(next_sub_ == 0 && !advanced_ && revision >= 1);
  write_revision_ = revision;
}

namespace {
KeyMeta meta_of(const mvccpb::KeyValue& kv) {
  return KeyMeta{kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()};
}
}  // namespace

bool WriteTxn::lease_exists(int64_t id) const {
  return view_.get(keys::lease(id)).has_value();
}

std::optional<KeyMeta> WriteTxn::current_meta(std::string_view key) const {
  if (auto it = index_changes_.find(key); it != index_changes_.end()) return it->second;
  if (index_ == nullptr) {
    std::optional<mvccpb::KeyValue> kv = current(key);
    if (!kv) return std::nullopt;
    return meta_of(*kv);
  }
  const KeyMeta* m = index_->find(key);
  if (m == nullptr) return std::nullopt;
  return *m;
}

std::optional<mvccpb::KeyValue> WriteTxn::current(std::string_view key) const {
  std::optional<std::string> value = view_.get(keys::current(key));
  if (!value) return std::nullopt;
  return records::decode_kv(key, *value);
}

void WriteTxn::record(std::string_view key, std::string history_value) {
  keys::Revision rev{write_revision(), next_sub_++};
  view_.put(keys::history(key, rev), std::move(history_value));
  view_.put(keys::rev_log(rev), std::string(key));
}

mvccpb::KeyValue WriteTxn::put(std::string_view key, std::string value, int64_t lease) {
  assert(!key.empty());
  std::optional<KeyMeta> prev = current_meta(key);
  mvccpb::KeyValue kv;  // keyless until both rows are encoded: the rows omit the key
  kv.set_create_revision(prev ? prev->create_revision : write_revision());
  kv.set_mod_revision(write_revision());
  kv.set_version(prev ? prev->version + 1 : 1);
  kv.set_value(std::move(value));
  kv.set_lease(lease);
  // One serialization serves both rows: the current row is the KeyValue, the history row the
  // same bytes behind the put tag.
  std::string history(1, records::kPutTag);
  kv.AppendToString(&history);
  view_.put(keys::current(key), history.substr(1));
  record(key, std::move(history));
  kv.set_key(std::string(key));
  index_changes_.insert_or_assign(std::string(key), meta_of(kv));
  if (events_ != nullptr) {
    mvccpb::Event& e = events_->emplace_back();
    e.set_type(mvccpb::Event::PUT);
    *e.mutable_kv() = kv;
  }
  assert(kv.version() >= 1 && kv.create_revision() <= kv.mod_revision());
  return kv;
}

void WriteTxn::delete_key(const mvccpb::KeyValue& last) {
  mvccpb::KeyValue tombstone;
  tombstone.set_key(last.key());
  tombstone.set_mod_revision(write_revision());
  view_.del(keys::current(last.key()));
  index_changes_.insert_or_assign(last.key(), std::nullopt);
  record(last.key(), records::encode_history(records::kDeleteTag, tombstone));
  if (events_ != nullptr) {
    mvccpb::Event& e = events_->emplace_back();
    e.set_type(mvccpb::Event::DELETE);
    *e.mutable_kv() = std::move(tombstone);
  }
}

std::vector<mvccpb::KeyValue> WriteTxn::delete_range(std::string_view key,
                                                     std::string_view range_end) {
  std::vector<mvccpb::KeyValue> deleted =
      read_keys(view_, key, range_end, std::nullopt, /*fetch_limit=*/0).kvs;
  for (const mvccpb::KeyValue& kv : deleted) delete_key(kv);
  return deleted;
}

}  // namespace synod::kv
