#include "cli/ctl.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "synodpb/fence.grpc.pb.h"

namespace synod::cli {

namespace {

struct CtlFlags {
  std::string endpoints = "127.0.0.1:2379";
  int timeout_s = 5;
  CLI::App* fenced_put = nullptr;
  CLI::App* lock_token = nullptr;
  std::string lock;
  int64_t token = 0;
  std::string key;
  std::string value;
  int64_t lease = 0;
};

// The endpoints in order ("host:port" or "http://host:port").
std::vector<std::string> parse_endpoints(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string ep = list.substr(start, comma == std::string::npos ? std::string::npos
                                                                   : comma - start);
    if (ep.rfind("http://", 0) == 0) ep = ep.substr(7);
    if (!ep.empty()) out.push_back(ep);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Runs `call` against each endpoint in turn until one answers (any status but UNAVAILABLE);
// prints the error and returns the exit code.
template <typename Call>
int with_endpoints(const CtlFlags& f, Call call) {
  grpc::Status last(grpc::StatusCode::UNAVAILABLE, "no endpoint given");
  for (const std::string& ep : parse_endpoints(f.endpoints)) {
    auto channel = grpc::CreateChannel(ep, grpc::InsecureChannelCredentials());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(f.timeout_s));
    last = call(channel, ctx);
    if (last.ok()) return 0;
    if (last.error_code() != grpc::StatusCode::UNAVAILABLE &&
        last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      std::cerr << "Error: " << last.error_message() << "\n";
      return 1;
    }
  }
  std::cerr << "Error: " << last.error_message() << "\n";
  return 3;
}

int run_fenced_put(const CtlFlags& f) {
  return with_endpoints(f, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext& ctx) {
    synodpb::FencedPutRequest req;
    req.set_lock(f.lock);
    req.set_token(f.token);
    req.mutable_put()->set_key(f.key);
    req.mutable_put()->set_value(f.value);
    req.mutable_put()->set_lease(f.lease);
    etcdserverpb::PutResponse resp;
    grpc::Status s = synodpb::Fence::NewStub(ch)->Put(&ctx, req, &resp);
    if (s.ok()) std::cout << "OK\n";
    return s;
  });
}

int run_lock_token(const CtlFlags& f) {
  return with_endpoints(f, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext& ctx) {
    etcdserverpb::RangeRequest req;
    req.set_key(f.key);
    etcdserverpb::RangeResponse resp;
    grpc::Status s = etcdserverpb::KV::NewStub(ch)->Range(&ctx, req, &resp);
    if (!s.ok()) return s;
    if (resp.kvs_size() == 0) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "lock key " + f.key + " does not exist (the lock is not held)");
    }
    std::cout << resp.kvs(0).create_revision() << "\n";
    return s;
  });
}

}  // namespace

std::function<int()> add_ctl_command(CLI::App& app) {
  auto f = std::make_shared<CtlFlags>();
  CLI::App* ctl = app.add_subcommand("ctl", "Synod's client commands (fenced writes)");
  ctl->require_subcommand(1);
  ctl->add_option("--endpoints", f->endpoints, "comma list of host:port (127.0.0.1:2379)");
  ctl->add_option("--command-timeout", f->timeout_s, "seconds to wait for an answer (5)");
  f->fenced_put = ctl->add_subcommand(
      "fenced-put", "put KEY VALUE only if TOKEN is the current holder's of lock LOCK");
  f->fenced_put->add_option("lock", f->lock, "the lock's name (as given to etcdctl lock)")
      ->required();
  f->fenced_put->add_option("token", f->token, "the fencing token (synod ctl lock-token)")
      ->required();
  f->fenced_put->add_option("key", f->key, "key to write")->required();
  f->fenced_put->add_option("value", f->value, "value to write")->required();
  f->fenced_put->add_option("--lease", f->lease, "lease ID (decimal) to attach the key to");
  f->lock_token = ctl->add_subcommand(
      "lock-token", "print the fencing token of a lock key (etcdctl lock's ETCD_LOCK_KEY)");
  f->lock_token->add_option("key", f->key, "the holder's lock key")->required();
  for (CLI::App* sub : {f->fenced_put, f->lock_token}) sub->fallthrough();
  return [f]() {
    if (f->fenced_put->parsed()) return run_fenced_put(*f);
    return run_lock_token(*f);
  };
}

}  // namespace synod::cli
