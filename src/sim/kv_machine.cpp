#include "sim/kv_machine.h"

#include <cassert>

#include "synodpb/request.pb.h"

namespace synod::sim {
namespace {

// Image layout: kMagic, u64 store image length, the store image (kv::Store::image(), itself
// checksummed), u64 client count, then (u64 client, u64 seq) per client; integers little-endian.
constexpr std::string_view kMagic = "SIMKV2";

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool get_u64(std::string_view& in, uint64_t& v) {
  if (in.size() < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  in.remove_prefix(8);
  return true;
}

KvResult result_of(const kv::ApplyResult& applied) {
  KvResult r;
  if (const auto* txn = applied.response<etcdserverpb::TxnResponse>()) {
    r.cas_succeeded = txn->succeeded();
    r.revision = txn->header().revision();
    r.txn = std::make_shared<const etcdserverpb::TxnResponse>(*txn);
  } else if (const auto* put = applied.response<etcdserverpb::PutResponse>()) {
    r.revision = put->header().revision();
  } else if (const auto* del = applied.response<etcdserverpb::DeleteRangeResponse>()) {
    r.revision = del->header().revision();
  } else if (const auto* vote = applied.response<kv::TxnVote>()) {
    r.txn_step = KvResult::TxnStep{vote->prepared, vote->compares_hold, false, false};
  } else if (const auto* decided = applied.response<kv::TxnDecided>()) {
    r.txn_step = KvResult::TxnStep{false, false, decided->commit, decided->succeeded};
    r.txn = std::make_shared<const etcdserverpb::TxnResponse>(decided->response);
  }
  return r;
}

}  // namespace

KvApplied KvMachine::apply(raft::Index index, std::string_view data, const kv::ClientStamp* once) {
  assert(index > applied());
  KvApplied out;
  synodpb::Request& request = out.request;
  if (!request.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    out.store_error = "entry is not a synodpb.Request";
    advance(index);
    return out;
  }
  out.id = RequestId::unpack(request.id());
  if (out.id && redeliveries_) {
    auto [seq, inserted] = last_seq_.try_emplace(out.id->client, out.id->seq);
    if (!inserted) {
      if (out.id->seq <= seq->second) {
        advance(index);  // a redelivery: no effect
        return out;
      }
      seq->second = out.id->seq;
    }
  }
  const int64_t before = store_.revision();
  kv::ApplyResult applied_result = store_.apply(index.value, request, &out.events, once);
  assert(!applied_result.skipped);
  if (applied_result.cut) {
    const uint64_t epoch = applied_result.cut->epoch;
    cuts_[epoch] = std::move(*applied_result.cut);
  }
  if (applied_result.duplicate) return out;  // ordered again: no effect, no answer
  out.changed = store_.revision() != before;
  if (const kv::Error* error = applied_result.error()) {
    const bool raced_compaction =
        request.has_compaction() && request.compaction().revision() <= compact_revision();
    if (out.id) {
      out.result = KvResult{};
      out.result->error = error->message;
    } else if (!raced_compaction && !request.has_lease_revoke()) {
      // A lessor's revoke may find the lease gone (revoked by its client, or a retried revoke).
      out.store_error = error->message;
    }
  } else {
    out.result = result_of(applied_result);
  }
  if (out.result) out.result->cut_epoch = applied_result.cut_epoch;
  assert(applied() == index);
  return out;
}

void KvMachine::advance(raft::Index index) {
  const bool advanced = store_.advance_applied(index.value);
  assert(advanced);
  (void)advanced;
}

KvResult KvMachine::read(const std::string& key) const {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  auto resp = store_.range(req);
  if (!resp) {
    KvResult r;
    r.error = resp.error().message;  // a key a cross-shard transaction holds
    return r;
  }
  if (resp->kvs_size() == 0) return {};
  return {resp->kvs(0).value(), false};
}

KvResult KvMachine::range(const etcdserverpb::RangeRequest& req) const {
  KvResult r;
  auto resp = store_.range(req);
  if (resp) {
    r.range = std::make_shared<const etcdserverpb::RangeResponse>(std::move(resp).value());
  } else {
    r.error = resp.error().message;
  }
  return r;
}

std::string KvMachine::image() const {
  const std::string store_image = store_.image();
  std::string out(kMagic);
  put_u64(out, store_image.size());
  out += store_image;
  put_u64(out, last_seq_.size());
  for (const auto& [client, seq] : last_seq_) {
    put_u64(out, client);
    put_u64(out, seq);
  }
  return out;
}

bool KvMachine::restore(std::string_view image) {
  if (!image.starts_with(kMagic)) return false;
  image.remove_prefix(kMagic.size());
  uint64_t n = 0;
  if (!get_u64(image, n) || n > image.size()) return false;
  const std::string_view store_image = image.substr(0, n);
  image.remove_prefix(n);
  std::map<uint32_t, uint64_t> seqs;
  if (!get_u64(image, n) || n > image.size() / 16) return false;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t client = 0;
    uint64_t seq = 0;
    if (!get_u64(image, client) || !get_u64(image, seq) || client > RequestId::kMaxClient) {
      return false;
    }
    seqs.emplace(static_cast<uint32_t>(client), seq);
  }
  if (!image.empty()) return false;
  if (!store_.restore(store_image)) return false;  // checked last: it commits the change
  last_seq_ = std::move(seqs);
  return true;
}

}  // namespace synod::sim
