// Transactions across shards on a sharded member: two-phase (or three-phase) commit over
// replication groups, with the decision durable in a replicated group (docs/transactions.md
// has the protocol; the steps are kv::Store's txn_prepare, txn_precommit, txn_decide and
// txn_resolve, each a log entry).
//
// The member that receives the Txn coordinates it. It splits the request by shard (each part
// holds its shard's compares and ops — a range's op goes to every shard — every op's place
// remembered), prepares every part (its keys and ranges held, its leases pinned, its compares
// evaluated, the vote durable in the part's group), proposes the
// decision to the group of the first part — the first decision applied there stands, and the
// same entry carries that part out with it — and resolves every other part with the decision
// that stood, then answers with the ops' responses in
// the request's order (a range's parts merged as a sharded Range merges them). With
// --commit-protocol 3pc, every part records a precommit (the transaction commits, with which
// branch) between the votes and the decision. A prepare refused because a key is held by another
// transaction aborts the attempt; it is retried a few times under a new transaction ID.
//
// A coordinator that dies leaves intents; the TxnResolver of a member leading a participant
// group settles each one prepared long enough ago: it proposes abort (commit, if the part is
// precommitted) to the coordinator group, which keeps the decision that stood if one did, and
// resolves the part with the answer.
// Nothing ever blocks on a dead coordinator for longer than that.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "etcdserverpb/rpc.pb.h"
#include "kv/auth_store.h"
#include "server/context.h"

namespace synod::server {

// The shards a Txn's keys live in (its compares and both branches, nested txns included); a
// compare or op over a range meets every shard.
std::set<uint32_t> txn_groups(const Shards& shards, const etcdserverpb::TxnRequest& req);

// Commits `req`, whose keys live in more than one shard, by two-phase commit and finishes
// `reactor` with etcd's TxnResponse. Nested txns, compares over ranges, reads at past revisions
// and puts that ignore their value or lease are refused (kv's part shape) with InvalidArgument. The
// shards need not be hosted here (group_access.h).
// The same for a request made by the server itself (a DeleteRange across shards) on behalf of
// `caller`: `done` gets the status and, if OK, the response.
using TxnDone = std::function<void(const grpc::Status&, etcdserverpb::TxnResponse&&)>;
void commit_across_shards(ServerContext& ctx, const kv::Caller& caller,
                          const etcdserverpb::TxnRequest& req, TxnDone done);
void commit_across_shards(ServerContext& ctx, const grpc::ServerContextBase& call,
                          grpc::ServerUnaryReactor* reactor, const etcdserverpb::TxnRequest& req,
                          etcdserverpb::TxnResponse* resp);

// Settles transactions whose coordinator went away (see above). Its own thread; every
// `interval` it looks at the groups this member leads. Stops with the object.
class TxnResolver {
 public:
  // An intent prepared longer ago than `stale_after` (by the coordinator's clock) is settled.
  TxnResolver(ServerContext& ctx, std::chrono::milliseconds interval,
              std::chrono::milliseconds stale_after);
  ~TxnResolver();
  TxnResolver(const TxnResolver&) = delete;
  TxnResolver& operator=(const TxnResolver&) = delete;

 private:
  void run();
  void sweep();
  // `epoch`: the group's newest cut when the intent was read.
  void settle(uint32_t group, const synodpb::TxnIntent& intent, uint64_t epoch);
  void forget_settled(Node& node, int64_t now);
  void forget_decisions();

  ServerContext& ctx_;
  const std::chrono::milliseconds interval_;
  const std::chrono::milliseconds stale_after_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::set<std::string> settling_;  // transaction IDs with a settle in flight; under mu_
  uint64_t sweeps_ = 0;             // the resolver thread's own
  std::thread thread_;              // last: starts once the rest is set
};

}  // namespace synod::server
