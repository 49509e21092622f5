// Leases on a sharded member. A lease is the metadata group's (group 0): it is granted,
// renewed, expired and revoked there, by its leader's lessor, exactly as unsharded. Each data
// group holds a copy of every lease (its ID and TTL) so that a put there can attach a key to
// it, and deletes the attached keys when the copy is revoked; a data group never expires a
// lease itself (NodeOptions::expire_leases).
//
// Grants and revokes that clients make are copied to the data groups before they are answered,
// so a put with a fresh lease finds it and a revoked lease's keys are gone when the revoke
// returns. A LeaseMirror on every member repairs what that missed (a member that died between
// the two steps, a lease that expired in the metadata group): every `interval` the data groups
// it leads take the metadata group's set of leases — copies granted where missing, revoked
// where the lease is gone (its keys with it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/context.h"

namespace synod::server {

// Proposes `op` (a lease grant or revoke applied in the metadata group) to every data group
// (through a member that replicates it when this one does not) and calls `done` once each has
// answered. A grant of a lease a group holds already,
// or a revoke of one it does not, changes nothing there and is no failure.
void copy_lease_change(ServerContext& ctx, const synodpb::Request& op, std::function<void()> done);

// A copy of lease `id` in some data group hosted here, if any holds one.
std::optional<kv::LeaseInfo> sharded_lease_copy(const ServerContext& ctx, int64_t id);

// The keys attached to lease `id` in every data group, in key order: a group hosted here read
// after a ReadIndex barrier, any other read whole (keys only) from a member that replicates it
// and its keys on the lease picked out — a scan of that shard. Waits up to 2 s; a hosted group
// that does not answer is read as it is, a remote one not at all.
std::vector<std::string> sharded_lease_keys(ServerContext& ctx, int64_t id);

class LeaseMirror {
 public:
  LeaseMirror(ServerContext& ctx, std::chrono::milliseconds interval);
  ~LeaseMirror();
  LeaseMirror(const LeaseMirror&) = delete;
  LeaseMirror& operator=(const LeaseMirror&) = delete;
  // Sweeps now (a lease was revoked in the metadata group): its copies go at once.
  void kick();

 private:
  void run();
  void sweep();

  ServerContext& ctx_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool kicked_ = false;
  std::thread thread_;  // last: starts once the rest is set
};

}  // namespace synod::server
