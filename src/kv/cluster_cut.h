// A consistent cut of a sharded cluster as its groups recorded it (server/cluster_cut.h takes
// it; `synod ctl snapshot save --cluster` keeps it): each group's state at the cut, the messages
// that were in flight between groups (the channel state), and the state of the whole once they
// are delivered.
//
// The channels carry the steps of cross-shard transactions. A step is in flight at the cut when
// its cause is in the sender's recorded state and its effect is not in the receiver's: the
// coordinator group recorded the decision of a transaction whose part another group still holds
// prepared. Delivering the channel state resolves that part with the decision. A part whose
// transaction no group had decided at the cut is settled as a resolver of the restored cluster
// would (its coordinator is gone): commit if it was precommitted (three-phase commit), abort
// otherwise, the same for every part of the transaction.
//
// Pure: no clocks, files or threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kv/mem_backend.h"
#include "kv/store.h"

namespace synod::kv {

// A step in flight at the cut: resolve `txn` in group `to` with the decision `from` recorded.
struct ChannelMessage {
  uint32_t from = 0;
  uint32_t to = 0;
  std::string txn;
  bool commit = false;
  bool succeeded = false;
  int64_t commit_revision = 0;  // the decision's (TxnDecision.commit_revision)

  bool operator==(const ChannelMessage&) const = default;
};

// A known bug that tests plant to prove the bank check catches it.
struct ClusterCutBugs {
  // The channel state is not delivered: parts resolved by a decision in flight stay prepared
  // and are then settled like undecided ones.
  bool ignore_in_flight = false;
};

class ClusterCut {
 public:
  // From the groups' recorded states (kv::Store images) by group; 0 is the metadata group. An
  // error names the group whose image does not load.
  static Expected<ClusterCut, std::string> load(const std::map<uint32_t, std::string>& images);

  // The steps in flight at the cut, by receiver then transaction.
  const std::vector<ChannelMessage>& channel_state() const { return channels_; }
  // Transactions prepared somewhere and decided nowhere at the cut.
  size_t undecided() const { return undecided_; }

  // Delivers the channel state, then settles the undecided parts (see above): afterwards no
  // group holds a prepared part. Call once.
  void settle(ClusterCutBugs bugs = {});

  const std::map<uint32_t, std::unique_ptr<Store>>& stores() const { return stores_; }
  // Every live key of the data groups (not the metadata group's), in key order per group.
  // After settle(): a prepared part holds its keys, and a range over them is refused.
  std::vector<mvccpb::KeyValue> data_keys() const;

 private:
  void resolve(uint32_t group, const std::string& txn, bool commit, bool succeeded,
               int64_t commit_revision);

  std::map<uint32_t, std::unique_ptr<MemBackend>> backends_;
  std::map<uint32_t, std::unique_ptr<Store>> stores_;
  std::vector<ChannelMessage> channels_;
  size_t undecided_ = 0;
};

}  // namespace synod::kv
