#include "cli/bft_client.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <set>

#include "core/pbft/messages.h"
#include "server/pbft_keys.h"

namespace synod::cli {

namespace {

using Clock = std::chrono::steady_clock;

// One request in flight to every member: the authenticated results by their bytes.
struct Round {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::set<uint64_t>> votes;  // result bytes -> members that sent them
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<synodpb::BftReply>> replies;
  std::set<std::string> errors;  // the members' errors, each once
  uint64_t bad_macs = 0;
};

std::string join(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace

std::unique_ptr<BftClient> BftClient::connect(const Options& options, std::string* error) {
  auto publics = server::read_public_keys(options.key_dir, error);
  if (!publics) return nullptr;
  const size_t n = publics->size();
  if (n < 4) {
    *error = "the key directory " + options.key_dir + " holds " + std::to_string(n) +
             " members' public keys; a PBFT cluster has at least 4";
    return nullptr;
  }
  std::unique_ptr<BftClient> c(new BftClient());
  c->options_ = options;
  c->f_ = (n - 1) / 3;
  std::map<uint64_t, pbft::PublicKeys> replicas;
  std::string unreachable;
  for (const std::string& endpoint : options.endpoints) {
    auto stub =
        synodpb::Bft::NewStub(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + options.timeout);
    synodpb::BftHello hello;
    grpc::Status s = stub->Hello(&context, synodpb::BftHelloRequest(), &hello);
    if (!s.ok()) {
      unreachable += (unreachable.empty() ? "" : "; ") + endpoint + ": " + s.error_message();
      continue;
    }
    auto keys = publics->find(hello.name());
    if (keys == publics->end()) {
      *error = "the member at " + endpoint + " says it is '" + hello.name() + "', whose " +
               hello.name() + ".pub is not in " + options.key_dir;
      return nullptr;
    }
    replicas[hello.member_id()] = keys->second;
    c->ids_.push_back(hello.member_id());
    c->stubs_.push_back(std::move(stub));
  }
  if (c->stubs_.size() < n - c->f_) {
    *error = "only " + std::to_string(c->stubs_.size()) + " of " + std::to_string(n) +
             " members answered (" + std::to_string(n - c->f_) + " are needed)" +
             (unreachable.empty() ? "" : ": " + unreachable);
    return nullptr;
  }
  c->keys_ = std::make_shared<const pbft::Keyring>(pbft::make_keys(), std::move(replicas));
  // Timestamps and ids that no other client process uses: from the clock and a random start.
  c->next_timestamp_ =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  std::random_device random;
  c->next_id_ = (uint64_t{random()} << 32) | random();
  return c;
}

std::string BftClient::make_request(std::string op, uint64_t* timestamp) {
  pbft::AuthenticatedRequest r;
  *timestamp = ++next_timestamp_;
  r.request = pbft::Request{keys_->public_keys().kx, *timestamp, std::move(op)};
  const std::string bytes = pbft::request_auth_bytes(r.request);
  for (uint64_t id : ids_) r.macs.emplace_back(id, keys_->mac_for(id, bytes));
  return pbft::encode_client_request(r);
}

std::optional<synodpb::BftResult> BftClient::collect(Method method, const std::string& request,
                                                     uint64_t timestamp, size_t needed,
                                                     std::chrono::milliseconds timeout,
                                                     std::string* error) {
  auto round = std::make_shared<Round>();
  synodpb::BftRequest wire;
  wire.set_request(request);
  const Clock::time_point deadline = Clock::now() + timeout;
  std::optional<std::string> accepted;
  while (!accepted) {
    const Clock::time_point attempt_end = std::min(deadline, Clock::now() + options_.retransmit);
    for (size_t i = 0; i < stubs_.size(); ++i) {
      auto context = std::make_unique<grpc::ClientContext>();
      context->set_deadline(std::chrono::system_clock::now() + timeout);
      auto reply = std::make_unique<synodpb::BftReply>();
      grpc::ClientContext* ctx = context.get();
      synodpb::BftReply* out = reply.get();
      {
        std::lock_guard lock(round->mu);
        round->contexts.push_back(std::move(context));
        round->replies.push_back(std::move(reply));
      }
      auto done = [keys = keys_, round, out, timestamp, needed](grpc::Status s) {
        std::lock_guard lock(round->mu);
        if (!s.ok()) {
          if (round->errors.size() < 4) round->errors.insert(s.error_message());
          return;
        }
        // Only what the member MAC'd for this client, for this request, counts.
        const std::string bytes =
            pbft::reply_auth_bytes(out->member_id(), out->timestamp(), out->result());
        pbft::Mac mac{};
        if (out->timestamp() != timestamp || out->mac().size() != mac.size() ||
            !keys->knows(out->member_id())) {
          ++round->bad_macs;
          return;
        }
        std::copy(out->mac().begin(), out->mac().end(), mac.begin());
        if (!keys->check_mac_from(out->member_id(), bytes, mac)) {
          ++round->bad_macs;
          return;
        }
        std::set<uint64_t>& from = round->votes[out->result()];
        from.insert(out->member_id());
        if (from.size() >= needed) round->cv.notify_all();
      };
      if (method == Method::kSubmit) {
        stubs_[i]->async()->Submit(ctx, &wire, out, std::move(done));
      } else {
        stubs_[i]->async()->Read(ctx, &wire, out, std::move(done));
      }
    }
    std::unique_lock lock(round->mu);
    round->cv.wait_until(lock, attempt_end, [&] {
      for (const auto& [result, from] : round->votes) {
        if (from.size() >= needed) {
          accepted = result;
          return true;
        }
      }
      return false;
    });
    if (!accepted && Clock::now() >= deadline) {
      *error =
          "no " + std::to_string(needed) + " members sent the same result in time" +
          (round->bad_macs ? " (" + std::to_string(round->bad_macs) + " replies failed their MACs)"
                           : "") +
          (round->errors.empty() ? "" : "; members said: " + join(round->errors));
      break;
    }
  }
  // The calls still out end on their own; the round outlives them (the callbacks hold it).
  {
    std::lock_guard lock(round->mu);
    for (auto& c : round->contexts) c->TryCancel();
  }
  if (!accepted) return std::nullopt;
  synodpb::BftResult result;
  if (!result.ParseFromString(*accepted)) {
    *error = "the accepted result does not parse";
    return std::nullopt;
  }
  return result;
}

std::optional<synodpb::BftResult> BftClient::write(synodpb::Request op, std::string* error) {
  op.set_id(++next_id_);
  uint64_t timestamp = 0;
  const std::string request = make_request(op.SerializeAsString(), &timestamp);
  return collect(Method::kSubmit, request, timestamp, f_ + 1, options_.timeout, error);
}

std::optional<synodpb::BftResult> BftClient::read(const etcdserverpb::RangeRequest& range,
                                                  std::string* error, bool* ordered) {
  if (ordered != nullptr) *ordered = false;
  {
    uint64_t timestamp = 0;
    const std::string request = make_request(range.SerializeAsString(), &timestamp);
    std::string why;
    // The read-only optimization: 2f + 1 matching answers, or the read is ordered.
    auto quick = collect(Method::kRead, request, timestamp, 2 * f_ + 1,
                         std::min(options_.timeout, options_.retransmit), &why);
    if (quick) return quick;
  }
  if (ordered != nullptr) *ordered = true;
  synodpb::Request op;
  *op.mutable_txn()->add_success()->mutable_request_range() = range;
  auto result = write(std::move(op), error);
  if (!result || !result->has_txn()) return result;
  synodpb::BftResult out;
  const etcdserverpb::TxnResponse& txn = result->txn();
  if (txn.responses_size() == 1 && txn.responses(0).has_response_range()) {
    *out.mutable_range() = txn.responses(0).response_range();
    out.mutable_range()->mutable_header()->set_revision(txn.header().revision());
  }
  return out;
}

}  // namespace synod::cli
