#include "kv/compaction.h"

#include <cassert>
#include <set>
#include <string>
#include <vector>

#include "kv/keys.h"
#include "kv/records.h"

namespace synod::kv {
namespace {

// Deletes the versions of one key that compaction at `revision` makes unreadable.
void compact_key(BatchView& view, const std::string& user_key, int64_t revision) {
  std::optional<keys::Bounds> bounds = keys::history_range(user_key, "");
  assert(bounds);
  std::vector<std::string> older;  // versions at or below revision, oldest first
  bool newest_is_tombstone = false;
  view.scan(bounds->begin, bounds->end, [&](std::string_view k, std::string_view v) {
    std::optional<keys::HistoryKey> parsed = keys::parse_history(k);
    if (!parsed) records::corrupted("history key");
    if (parsed->rev.main > revision) return false;
    older.emplace_back(k);
    newest_is_tombstone = records::is_tombstone(v);
    return true;
  });
  if (older.empty()) return;
  if (!newest_is_tombstone) older.pop_back();  // the version reads at `revision` see
  for (std::string& k : older) view.del(std::move(k));
}

}  // namespace

void compact_history(BatchView& view, int64_t revision) {
  assert(revision > 0);
  keys::Bounds log = keys::table(keys::kRevLog);
  std::string log_end = keys::rev_log({revision + 1, 0});
  std::set<std::string> touched;
  std::vector<std::string> log_keys;
  view.scan(log.begin, log_end, [&](std::string_view k, std::string_view user_key) {
    log_keys.emplace_back(k);
    touched.emplace(user_key);
    return true;
  });
  for (std::string& k : log_keys) view.del(std::move(k));
  // Keys untouched since an earlier compaction were already reduced to one version.
  for (const std::string& user_key : touched) compact_key(view, user_key, revision);
}

}  // namespace synod::kv
