// Conversion between the core's raft::Message and the peer wire format (synodpb.RaftMessage).
//
// Peer input is untrusted: decode() refuses anything the core could not take (an unknown
// message type, an entry type out of range, entries that are not contiguous) rather than
// passing it on, so no frame from the network can trip an assertion in the core.
#pragma once

#include <optional>
#include <string>

#include "core/consensus/types.h"
#include "synodpb/peer.pb.h"

namespace synod::net {

void encode(const raft::Message& m, synodpb::RaftMessage* out);
// Returns nullopt and sets `error` when `in` is not a message the core accepts.
std::optional<raft::Message> decode(const synodpb::RaftMessage& in, std::string* error);

}  // namespace synod::net
