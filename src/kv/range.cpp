#include "kv/range.h"

#include <algorithm>
#include <cassert>

#include "kv/keys.h"
#include "kv/records.h"

namespace synod::kv {
namespace {

using etcdserverpb::RangeRequest;
using mvccpb::KeyValue;

bool wants_more(const KeyScan& scan, int64_t fetch_limit) {
  return fetch_limit == 0 || static_cast<int64_t>(scan.kvs.size()) < fetch_limit;
}

void read_current(const BatchView& view, std::string_view key, std::string_view range_end,
                  int64_t fetch_limit, KeyScan& out) {
  if (range_end.empty()) {  // a single key: one point read
    std::optional<std::string> value = view.get(keys::current(key));
    if (!value) return;
    out.count = 1;
    if (fetch_limit >= 0) out.kvs.push_back(records::decode_kv(key, *value));
    return;
  }
  std::optional<keys::Bounds> bounds = keys::current_range(key, range_end);
  if (!bounds) return;
  view.scan(bounds->begin, bounds->end, [&](std::string_view k, std::string_view v) {
    ++out.count;
    if (fetch_limit >= 0 && wants_more(out, fetch_limit)) {
      out.kvs.push_back(records::decode_kv(k.substr(1), v));
    }
    return true;  // count needs every key
  });
}

// History entries come grouped per user key in revision order; the last one at or below the
// revision is the key's state then.
void read_history(const BatchView& view, std::string_view key, std::string_view range_end,
                  int64_t revision, int64_t fetch_limit, KeyScan& out) {
  std::optional<keys::Bounds> bounds = keys::history_range(key, range_end);
  if (!bounds) return;
  std::optional<std::string> user_key;  // key of the group being read
  std::optional<std::string> newest;    // its newest history value at or below revision
  auto flush = [&] {
    if (!user_key || !newest || records::is_tombstone(*newest)) return;
    ++out.count;
    if (fetch_limit >= 0 && wants_more(out, fetch_limit)) {
      out.kvs.push_back(records::decode_history(*user_key, *newest));
    }
  };
  view.scan(bounds->begin, bounds->end, [&](std::string_view k, std::string_view v) {
    std::optional<keys::HistoryKey> parsed = keys::parse_history(k);
    if (!parsed) records::corrupted("history key");
    if (!user_key || *user_key != parsed->user_key) {
      flush();
      user_key = std::move(parsed->user_key);
      newest.reset();
    }
    if (parsed->rev.main <= revision) newest = std::string(v);
    return true;
  });
  flush();
}

template <typename Field>
void sort_by(std::vector<KeyValue>& kvs, bool descending, Field field) {
  // Stable, so ties stay in key order (etcd's unstable sort leaves ties unspecified).
  std::stable_sort(kvs.begin(), kvs.end(), [&](const KeyValue& a, const KeyValue& b) {
    return descending ? field(b) < field(a) : field(a) < field(b);
  });
}

void sort_kvs(std::vector<KeyValue>& kvs, RangeRequest::SortTarget target,
              RangeRequest::SortOrder order) {
  // etcd sorts ascending by default when a target other than KEY is named.
  if (order == RangeRequest::NONE && target != RangeRequest::KEY) order = RangeRequest::ASCEND;
  if (order == RangeRequest::NONE) return;
  bool desc = order == RangeRequest::DESCEND;
  switch (target) {
    case RangeRequest::VERSION:
      return sort_by(kvs, desc, [](const KeyValue& kv) { return kv.version(); });
    case RangeRequest::CREATE:
      return sort_by(kvs, desc, [](const KeyValue& kv) { return kv.create_revision(); });
    case RangeRequest::MOD:
      return sort_by(kvs, desc, [](const KeyValue& kv) { return kv.mod_revision(); });
    case RangeRequest::VALUE:
      return sort_by(kvs, desc,
                     [](const KeyValue& kv) -> const std::string& { return kv.value(); });
    default:
      return sort_by(kvs, desc, [](const KeyValue& kv) -> const std::string& { return kv.key(); });
  }
}

void prune(std::vector<KeyValue>& kvs, const RangeRequest& req) {
  std::erase_if(kvs, [&](const KeyValue& kv) {
    return (req.max_mod_revision() != 0 && kv.mod_revision() > req.max_mod_revision()) ||
           (req.min_mod_revision() != 0 && kv.mod_revision() < req.min_mod_revision()) ||
           (req.max_create_revision() != 0 && kv.create_revision() > req.max_create_revision()) ||
           (req.min_create_revision() != 0 && kv.create_revision() < req.min_create_revision());
  });
}

bool needs_everything(const RangeRequest& req) {
  return req.sort_order() != RangeRequest::NONE || req.min_mod_revision() != 0 ||
         req.max_mod_revision() != 0 || req.min_create_revision() != 0 ||
         req.max_create_revision() != 0;
}

}  // namespace

KeyScan read_keys(const BatchView& view, std::string_view key, std::string_view range_end,
                  std::optional<int64_t> past_revision, int64_t fetch_limit) {
  KeyScan out;
  if (past_revision) {
    assert(*past_revision > 0);
    read_history(view, key, range_end, *past_revision, fetch_limit, out);
  } else {
    read_current(view, key, range_end, fetch_limit, out);
  }
  assert(fetch_limit <= 0 || static_cast<int64_t>(out.kvs.size()) <= fetch_limit);
  return out;
}

std::optional<Error> check_range_revision(int64_t revision, ReadRevisions revs) {
  if (revision > revs.current) return errors::future_revision();
  if (revision > 0 && revision < revs.compact) return errors::compacted();
  return std::nullopt;
}

Expected<etcdserverpb::RangeResponse, Error> execute_range(const BatchView& view,
                                                           const RangeRequest& req,
                                                           ReadRevisions revs) {
  if (std::optional<Error> e = check_range_revision(req.revision(), revs)) return Unexpected{*e};
  int64_t revision = req.revision() <= 0 ? revs.current : req.revision();
  std::optional<int64_t> past;
  if (revision < revs.current) past = revision;

  // Sorting and filtering need every key; otherwise one beyond the limit tells `more`.
  int64_t fetch_limit = 0;
  if (req.count_only()) {
    fetch_limit = -1;
  } else if (req.limit() > 0 && !needs_everything(req)) {
    fetch_limit = req.limit() + 1;
  }
  KeyScan scan = read_keys(view, req.key(), req.range_end(), past, fetch_limit);
  prune(scan.kvs, req);
  sort_kvs(scan.kvs, req.sort_target(), req.sort_order());

  etcdserverpb::RangeResponse resp;
  resp.mutable_header()->set_revision(revs.current);
  resp.set_count(scan.count);
  if (req.limit() > 0 && static_cast<int64_t>(scan.kvs.size()) > req.limit()) {
    scan.kvs.resize(static_cast<size_t>(req.limit()));
    resp.set_more(true);
  }
  for (KeyValue& kv : scan.kvs) {
    if (req.keys_only()) kv.clear_value();
    *resp.add_kvs() = std::move(kv);
  }
  return resp;
}

etcdserverpb::RangeResponse merge_ranges(const RangeRequest& req,
                                         std::vector<etcdserverpb::RangeResponse>&& parts) {
  etcdserverpb::RangeResponse out;
  int64_t revision = 0;
  int64_t count = 0;
  bool more = false;
  std::vector<KeyValue> kvs;
  for (etcdserverpb::RangeResponse& part : parts) {
    revision = std::max(revision, part.header().revision());
    count += part.count();
    more = more || part.more();
    for (KeyValue& kv : *part.mutable_kvs()) kvs.push_back(std::move(kv));
  }
  // Key order first, so that ties in another sort target stay in key order, as in one store.
  sort_by(kvs, false, [](const KeyValue& kv) -> const std::string& { return kv.key(); });
  sort_kvs(kvs, req.sort_target(), req.sort_order());
  if (req.limit() > 0 && static_cast<int64_t>(kvs.size()) > req.limit()) {
    kvs.resize(static_cast<size_t>(req.limit()));
    more = true;
  }
  out.mutable_header()->set_revision(revision);
  out.set_count(count);
  out.set_more(more);
  for (KeyValue& kv : kvs) *out.add_kvs() = std::move(kv);
  return out;
}

}  // namespace synod::kv
