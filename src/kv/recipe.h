// kv::recipe: the steps of clientv3's concurrency recipes (Mutex, Election, and a semaphore:
// the mutex with N holders) as pure request builders and response readers. The server's
// v3lock, v3election and Semaphore services and the simulator's lock and semaphore clients run
// these same steps, so what the simulator proves under faults is the server's recipe:
//   1. (semaphore) permits_txn: put name = N if the key is new; refuse a different N;
//   2. contend_txn: if the contender key name/<lease hex> does not exist, put it on the lease;
//      either way read it and the prefix's first-created key;
//   3. predecessors: read this contender's key and those created before it; if the key is gone
//      (its lease expired while it waited) the attempt has failed; with fewer than N (1 for a
//      lock) created before it, it holds; otherwise wait for one of them to be deleted and read
//      again.
// The fencing token of a holder is its contender key's create revision.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "etcdserverpb/rpc.pb.h"
#include "kv/expected.h"

namespace synod::kv::recipe {

// The first key after every key with this prefix. Precondition: prefix is not empty.
std::string prefix_end(std::string prefix);
// name/<lease in lower-case hex, no padding>, as clientv3 names a session's key.
std::string contender_key(const std::string& name, int64_t lease);
// The prefix's first-created key (sorted by create revision, limit 1).
etcdserverpb::RangeRequest first_created(const std::string& prefix);

// Step 1: put `name` = permits unless it exists; on failure the txn reads it.
etcdserverpb::TxnRequest permits_txn(const std::string& name, int64_t permits);
// nullopt when the semaphore has `permits` permits; otherwise why not.
std::optional<std::string> check_permits(const etcdserverpb::TxnResponse& response,
                                         const std::string& name, int64_t permits);

// Step 2: the contending txn for `lease`'s key under name/, with `value` (an election's
// proposal; empty for a lock or semaphore).
etcdserverpb::TxnRequest contend_txn(const std::string& name, int64_t lease,
                                     const std::string& value);
struct Contended {
  int64_t my_revision = 0;   // the contender key's create revision: the fencing token
  int64_t txn_revision = 0;  // the txn's header revision
  bool reproclaim = false;   // the key existed (an earlier campaign) with another value
  bool first = false;        // a lock (permits <= 1) held at once: the key is the first created
};
Expected<Contended, std::string> read_contended(const etcdserverpb::TxnResponse& response,
                                                const std::string& value, int64_t permits);

// Step 3: the contenders created at or before my_revision; for a lock just the newest two (this
// one and the one before it).
etcdserverpb::RangeRequest predecessors(const std::string& name, int64_t my_revision,
                                        int64_t permits);
struct Wait {
  bool gone = false;      // the contender key no longer exists
  bool held = false;      // fewer than max(permits, 1) contenders were created first
  std::string watch_key;  // otherwise: wait for a DELETE in [watch_key, watch_end)
  std::string watch_end;  // empty: the key alone
};
Wait read_predecessors(const etcdserverpb::RangeResponse& response, const std::string& name,
                       int64_t lease, int64_t permits);

}  // namespace synod::kv::recipe
