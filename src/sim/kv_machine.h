// A simulated replica's state machine: the production kv::Store over a kv::MemBackend, plus
// the table that drops redelivered client requests.
//
// Entries are the server's log format (serialized synodpb::Request, see kv_command.h) and go
// through Store::apply with their Raft index; entries with no KV effect (leader no-op, conf
// change, a duplicate) go through Store::advance_applied, so the store's applied index is the
// replica's. Deterministic: replicas that apply the same entries from the same image hold
// byte-identical images.
//
// Duplicates: every simulated client has one request outstanding and numbers them in order,
// so an entry whose (client, seq) is at or below the client's last applied seq is a
// redelivery (a duplicated forward, say) and has no effect. The table is replicated state: it
// changes only by applying entries and travels in the image with the store's. Under PBFT the
// table is not used: a client's request ordered twice is the store's to refuse (its client
// sessions, as the server's), which the sweeps must see doing so.
//
// Not copyable or movable (the store refers to its backend); not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/consensus/types.h"
#include "kv/mem_backend.h"
#include "kv/store.h"
#include "sim/kv_command.h"

namespace synod::sim {

struct KvApplied {
  std::optional<RequestId> id;        // the request the entry carried, if a simulated client's
  std::optional<KvResult> result;     // nullopt: a duplicate (or an entry that does not parse)
  synodpb::Request request;           // the entry, parsed
  bool changed = false;               // the store took a new revision
  std::vector<mvccpb::Event> events;  // the write's watch events, prev_kv unset
  // Why the store rejected an entry no client sent (an auto-compaction), or why it does not
  // parse; a client's request that the store refused answers with result->error instead. A
  // compaction at or below the last one is not an error: successive leaders' may race.
  std::optional<std::string> store_error;
};

class KvMachine {
 public:
  // `redeliveries`: drop redelivered client requests by their ids (not under PBFT).
  explicit KvMachine(bool redeliveries = true) : store_(backend_), redeliveries_(redeliveries) {}
  KvMachine(const KvMachine&) = delete;
  KvMachine& operator=(const KvMachine&) = delete;

  // Applies the committed normal entry at `index`. Precondition: index > applied().
  // With `once` (a PBFT entry's client and timestamp), at most once per client and timestamp.
  KvApplied apply(raft::Index index, std::string_view data, const kv::ClientStamp* once = nullptr);
  // Advances over an entry with no KV effect. Precondition: index > applied().
  void advance(raft::Index index);
  raft::Index applied() const { return raft::Index(store_.applied_index()); }
  int64_t revision() const { return store_.revision(); }
  int64_t compact_revision() const { return store_.compact_revision(); }

  // A Range read of one key at the current revision, from the local store.
  KvResult read(const std::string& key) const;
  // Any Range, from the local store (result.range; result.error if the store refuses it).
  KvResult range(const etcdserverpb::RangeRequest& req) const;
  const kv::Store& store() const { return store_; }

  // The store's image and the duplicate table, in one string.
  std::string image() const;
  // false on malformed bytes; state unchanged then.
  bool restore(std::string_view image);

  // The group's state recorded at consistent cut `epoch`, if this replica applied that cut's
  // marker (or a step carrying it) since it started.
  const kv::CutRecord* cut(uint64_t epoch) const {
    auto it = cuts_.find(epoch);
    return it == cuts_.end() ? nullptr : &it->second;
  }

 private:
  kv::MemBackend backend_;
  kv::Store store_;
  bool redeliveries_;
  std::map<uint32_t, uint64_t> last_seq_;  // client -> last applied seq
  std::map<uint64_t, kv::CutRecord> cuts_;
};

}  // namespace synod::sim
