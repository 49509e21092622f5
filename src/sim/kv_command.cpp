#include "sim/kv_command.h"

#include <cassert>

#include "synodpb/request.pb.h"

namespace synod::sim {

uint64_t RequestId::pack() const {
  assert(client <= kMaxClient);
  assert(seq >= 1 && seq <= kMaxSeq);
  return (static_cast<uint64_t>(client) << kSeqBits) | seq;
}

std::optional<RequestId> RequestId::unpack(uint64_t id) {
  const RequestId r{static_cast<uint32_t>(id >> kSeqBits), id & kMaxSeq};
  if (r.seq == 0) return std::nullopt;
  return r;
}

std::string KvCommand::encode() const {
  assert(op == KvOp::kPut || op == KvOp::kCas || op == KvOp::kPropose);
  synodpb::Request request;
  if (op == KvOp::kPropose) request = proposal;
  request.set_id(RequestId{client, seq}.pack());
  if (op == KvOp::kPropose) {
    // as built by the client
  } else if (op == KvOp::kPut) {
    etcdserverpb::PutRequest* put = request.mutable_put();
    put->set_key(key);
    put->set_value(value);
  } else {
    etcdserverpb::TxnRequest* txn = request.mutable_txn();
    etcdserverpb::Compare* cmp = txn->add_compare();
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_target(etcdserverpb::Compare::VALUE);
    cmp->set_key(key);
    cmp->set_value(expected);
    etcdserverpb::PutRequest* put = txn->add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
  }
  std::string out = request.SerializeAsString();
  assert(!out.empty());
  return out;
}

const etcdserverpb::TxnResponse& KvResult::txn_response() const {
  return txn ? *txn : etcdserverpb::TxnResponse::default_instance();
}

const etcdserverpb::RangeResponse& KvResult::range_response() const {
  return range ? *range : etcdserverpb::RangeResponse::default_instance();
}

std::string encode_compaction(int64_t revision) {
  assert(revision > 0);
  synodpb::Request request;
  request.mutable_compaction()->set_revision(revision);
  return request.SerializeAsString();
}

}  // namespace synod::sim
