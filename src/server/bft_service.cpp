// synodpb.Bft: the BFT client's side of a PBFT member (docs/pbft.md, "Clients").
#include "core/pbft/messages.h"
#include "server/apply_result.h"
#include "server/services.h"

namespace synod::server {

namespace {

// A response's header as every correct member has it: the revision only.
template <typename Response>
void keep_revision_only(Response* r) {
  const int64_t revision = r->header().revision();
  r->clear_header();
  r->mutable_header()->set_revision(revision);
}

synodpb::BftResult to_result(const kv::ApplyResult& applied) {
  synodpb::BftResult out;
  if (const kv::Error* e = applied.error()) {
    out.set_error(e->message);
  } else if (const auto* put = applied.response<etcdserverpb::PutResponse>()) {
    *out.mutable_put() = *put;
    keep_revision_only(out.mutable_put());
  } else if (const auto* del = applied.response<etcdserverpb::DeleteRangeResponse>()) {
    *out.mutable_delete_range() = *del;
    keep_revision_only(out.mutable_delete_range());
  } else if (const auto* txn = applied.response<etcdserverpb::TxnResponse>()) {
    *out.mutable_txn() = *txn;
    keep_revision_only(out.mutable_txn());
  } else {
    out.set_error("synod: the request was applied before (no result kept)");
  }
  return out;
}

std::string serialize(const synodpb::BftResult& result) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  result.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

}  // namespace

std::optional<pbft::AuthenticatedRequest> BftService::authentic(const std::string& bytes,
                                                                std::string* why) {
  if (bytes.size() >
      ctx_.config.raw.max_request_bytes + 64 * 1024) {  // the op, and MACs for the members
    *why = "etcdserver: request is too large";
    return std::nullopt;
  }
  std::optional<pbft::AuthenticatedRequest> r = pbft::decode_client_request(bytes);
  if (!r || r->request.is_null()) {
    *why = "synod: not a PBFT client request";
    return std::nullopt;
  }
  const pbft::Mac* mac = r->mac_for(ctx_.self_id);
  std::lock_guard lock(mu_);
  if (mac == nullptr || !keys_->check_mac_from_client(r->request.client,
                                                      pbft::request_auth_bytes(r->request), *mac)) {
    *why = "synod: the request's MAC for this member does not check";
    return std::nullopt;
  }
  return r;
}

void BftService::sign(const pbft::AuthenticatedRequest& r, const synodpb::BftResult& result,
                      synodpb::BftReply* reply) {
  reply->set_member_id(ctx_.self_id);
  reply->set_timestamp(r.request.timestamp);
  reply->set_result(serialize(result));
  const std::string bytes =
      pbft::reply_auth_bytes(ctx_.self_id, r.request.timestamp, reply->result());
  std::lock_guard lock(mu_);
  if (std::optional<pbft::Mac> mac = keys_->mac_for_client(r.request.client, bytes)) {
    reply->set_mac(mac->data(), mac->size());
  }
}

grpc::ServerUnaryReactor* BftService::Hello(grpc::CallbackServerContext* c,
                                            const synodpb::BftHelloRequest*,
                                            synodpb::BftHello* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  resp->set_member_id(ctx_.self_id);
  resp->set_name(ctx_.config.raw.name);
  resp->set_members(members_);
  resp->set_faults(faults_);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* BftService::Submit(grpc::CallbackServerContext* c,
                                             const synodpb::BftRequest* req,
                                             synodpb::BftReply* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  std::string why;
  std::optional<pbft::AuthenticatedRequest> r = authentic(req->request(), &why);
  if (!r) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why));
    return reactor;
  }
  synodpb::Request op;
  if (!op.ParseFromString(r->request.op) ||
      !(op.has_put() || op.has_delete_range() || op.has_txn())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "synod: a BFT write is a put, a delete_range or a txn"));
    return reactor;
  }
  if (op.internal() || !op.auth_user().empty() || op.auth_revision() != 0) {
    // The signed bytes are what the replicas apply: fields only a member may set are refused.
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "synod: a BFT write names no caller and is not internal"));
    return reactor;
  }
  std::optional<kv::Error> invalid;
  if (op.has_put()) invalid = kv::validate(op.put());
  if (op.has_delete_range()) invalid = kv::validate(op.delete_range());
  if (op.has_txn()) invalid = kv::validate(op.txn());
  if (invalid) {
    reactor->Finish(to_status(*invalid));
    return reactor;
  }
  ctx_.node->propose_raw(
      std::move(op), req->request(),
      [this, reactor, resp, request = *r](const kv::ApplyResult& applied) {
        const kv::Error* e = applied.error();
        // Errors of this member's own (a timeout, too many requests) are no result.
        if (e != nullptr && (e->grpc_code == grpc::StatusCode::DEADLINE_EXCEEDED ||
                             e->grpc_code == grpc::StatusCode::UNAVAILABLE ||
                             e->grpc_code == grpc::StatusCode::RESOURCE_EXHAUSTED)) {
          reactor->Finish(to_status(*e));
          return;
        }
        sign(request, to_result(applied), resp);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerUnaryReactor* BftService::Read(grpc::CallbackServerContext* c,
                                           const synodpb::BftRequest* req,
                                           synodpb::BftReply* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  std::string why;
  std::optional<pbft::AuthenticatedRequest> r = authentic(req->request(), &why);
  etcdserverpb::RangeRequest range;
  if (!r || !range.ParseFromString(r->request.op)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 r ? "synod: a BFT read is a RangeRequest" : why));
    return reactor;
  }
  synodpb::BftResult result;
  std::optional<kv::Error> e = ctx_.node->read_store(
      [&](const kv::Store& store) { return range_into(store, range, result.mutable_range()); });
  if (e) {
    result.set_error(e->message);
  } else {
    keep_revision_only(result.mutable_range());
  }
  sign(*r, result, resp);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace synod::server
