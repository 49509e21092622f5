// A consistent cut of a sharded cluster (`synod ctl snapshot save --cluster`; docs/sharding.md,
// "Consistent cuts"). The groups are the processes and the steps of cross-shard transactions
// the messages between them (a coordinator relays a participant's vote to the decision's group,
// and the decision to the participants). The cut is Chandy and Lamport's with the marker rule
// of Lai and Yang for channels that are not FIFO:
//
//   - the member taking the cut draws an epoch from the timestamp oracle (above every earlier
//     one) and proposes a marker of it to every group, the metadata group included;
//   - a group records its state when it applies the marker (kv::Store::apply: the state just
//     before that entry), or earlier, when it applies a transaction step that carries the epoch:
//     every step carries the newest epoch of the groups its coordinator heard from, so a step
//     caused by a group's state after its cut is never applied before the receiver's cut;
//   - messages in flight at the cut are the steps whose cause is in its sender's recorded state
//     and whose effect is not in the receiver's: a decision recorded in the coordinator group
//     for a part still prepared in the participant's. They are found from the recorded states
//     (kv::ClusterCut) and kept with the snapshot as its channel state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kv/errors.h"
#include "kv/expected.h"

namespace synod::server {

struct ServerContext;

struct GroupCutImage {
  uint32_t group = 0;  // 0: the metadata group
  int64_t revision = 0;
  std::string image;  // kv::Store::image() at the cut
};

struct ClusterCutTaken {
  uint64_t epoch = 0;
  std::vector<GroupCutImage> groups;  // every group, 0..shards
};

// Takes a cut as above and gathers each group's recorded state from this member's replica or
// another's (peer RPC GroupCut). Blocks (seconds at most per step); call off the gRPC threads.
kv::Expected<ClusterCutTaken, kv::Error> take_cluster_cut(ServerContext& ctx);

}  // namespace synod::server
