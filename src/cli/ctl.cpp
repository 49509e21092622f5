#include "cli/ctl.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iomanip>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <csignal>
#include <cstdlib>
#include <thread>

#include "cli/bft_client.h"
#include "cli/cluster_snapshot.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "kv/recipe.h"
#include "synodpb/fence.grpc.pb.h"
#include "synodpb/semaphore.grpc.pb.h"
#include "synodpb/shards.grpc.pb.h"

namespace synod::cli {

namespace {

struct CtlFlags {
  std::string endpoints = "127.0.0.1:2379";
  int timeout_s = 5;
  CLI::App* fenced_put = nullptr;
  CLI::App* lock_token = nullptr;
  CLI::App* ring = nullptr;
  CLI::App* rebalance_status = nullptr;
  CLI::App* snapshot_save = nullptr;
  CLI::App* snapshot_status = nullptr;
  CLI::App* snapshot_restore = nullptr;
  std::string snapshot_dir;
  std::string snapshot_bug;
  std::string lock;
  int64_t token = 0;
  std::string key;
  std::string value;
  int64_t lease = 0;
  CLI::App* sem_acquire = nullptr;
  CLI::App* sem_release = nullptr;
  CLI::App* sem_list = nullptr;
  CLI::App* sem_extend = nullptr;
  int64_t permits = 1;
  int64_t ttl_s = 10;
  int64_t timeout_ms = 0;
  std::vector<std::string> command;
  // BFT client (--bft): put, get, del.
  bool bft = false;
  std::string bft_keys;
  CLI::App* put = nullptr;
  CLI::App* get = nullptr;
  CLI::App* del = nullptr;
  bool prefix = false;
  bool prev_kv = false;
};

// The endpoints in order ("host:port" or "http://host:port").
std::vector<std::string> parse_endpoints(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string ep =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
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

volatile std::sig_atomic_t g_interrupted = 0;

// Keeps a lease alive from a thread until stopped (what a clientv3 session does).
class KeepAlive {
 public:
  KeepAlive(std::shared_ptr<grpc::Channel> channel, int64_t lease, int64_t ttl_s)
      : stub_(etcdserverpb::Lease::NewStub(std::move(channel))), lease_(lease) {
    stream_ = stub_->LeaseKeepAlive(&ctx_);
    thread_ = std::thread([this, period = std::chrono::milliseconds(ttl_s * 1000 / 3)] {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, period, [&] { return stop_; })) {
        etcdserverpb::LeaseKeepAliveRequest req;
        req.set_id(lease_);
        etcdserverpb::LeaseKeepAliveResponse resp;
        if (!stream_->Write(req) || !stream_->Read(&resp) || resp.ttl() <= 0) {
          std::cerr << "synod ctl: lease " << std::hex << lease_ << std::dec
                    << " could not be kept alive; the permit will be lost\n";
          return;
        }
      }
    });
  }
  ~KeepAlive() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    ctx_.TryCancel();
  }

 private:
  std::unique_ptr<etcdserverpb::Lease::Stub> stub_;
  int64_t lease_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                           etcdserverpb::LeaseKeepAliveResponse>>
      stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::shared_ptr<grpc::Channel> first_channel(const CtlFlags& f) {
  std::vector<std::string> eps = parse_endpoints(f.endpoints);
  return grpc::CreateChannel(eps.empty() ? "127.0.0.1:2379" : eps.front(),
                             grpc::InsecureChannelCredentials());
}

// Grants a lease, keeps it alive, waits for a permit, then runs the command (or waits for
// Ctrl-C), releases and revokes. Prints the key and the token, as etcdctl lock prints the key.
int run_semaphore_acquire(const CtlFlags& f) {
  auto channel = first_channel(f);
  auto lease_stub = etcdserverpb::Lease::NewStub(channel);
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(f.ttl_s);
  etcdserverpb::LeaseGrantResponse granted;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(f.timeout_s));
    grpc::Status s = lease_stub->LeaseGrant(&ctx, grant, &granted);
    if (!s.ok()) {
      std::cerr << "Error: " << s.error_message() << "\n";
      return s.error_code() == grpc::StatusCode::UNAVAILABLE ? 3 : 1;
    }
  }
  KeepAlive keepalive(channel, granted.id(), granted.ttl());
  auto revoke = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(f.timeout_s));
    etcdserverpb::LeaseRevokeRequest r;
    r.set_id(granted.id());
    etcdserverpb::LeaseRevokeResponse out;
    lease_stub->LeaseRevoke(&ctx, r, &out).ok();
  };
  auto stub = synodpb::Semaphore::NewStub(channel);
  synodpb::SemaphoreAcquireRequest req;
  req.set_name(f.key);
  req.set_permits(f.permits);
  req.set_lease(granted.id());
  req.set_timeout_ms(f.timeout_ms);
  synodpb::SemaphoreAcquireResponse held;
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub->Acquire(&ctx, req, &held);
    if (!s.ok()) {
      std::cerr << "Error: " << s.error_message() << "\n";
      revoke();
      return 1;
    }
  }
  std::cout << held.key() << "\ntoken " << held.token() << "\n" << std::flush;
  int rc = 0;
  if (!f.command.empty()) {
    std::string cmd;
    for (const std::string& part : f.command) cmd += "'" + part + "' ";
    ::setenv("SYNOD_SEMAPHORE_KEY", held.key().c_str(), 1);
    ::setenv("SYNOD_SEMAPHORE_TOKEN", std::to_string(held.token()).c_str(), 1);
    const int status = std::system(cmd.c_str());
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  } else {
    std::signal(SIGINT, [](int) { g_interrupted = 1; });
    std::signal(SIGTERM, [](int) { g_interrupted = 1; });
    while (!g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  revoke();  // drops the key with the lease: the permit goes to the next waiter
  return rc;
}

int run_semaphore_release(const CtlFlags& f) {
  return with_endpoints(f, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext& ctx) {
    synodpb::SemaphoreReleaseRequest req;
    req.set_key(f.key);
    synodpb::SemaphoreReleaseResponse resp;
    grpc::Status s = synodpb::Semaphore::NewStub(ch)->Release(&ctx, req, &resp);
    if (s.ok()) std::cout << "released " << f.key << "\n";
    return s;
  });
}

// A member ID as etcdctl prints it.
std::string hex(uint64_t id) {
  std::ostringstream o;
  o << std::hex << id;
  return o.str();
}

// The ring: which members replicate each shard, and the groups' state as the answering member
// sees those it hosts.
int run_ring(const CtlFlags& f) {
  return with_endpoints(f, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext& ctx) {
    synodpb::ShardsResponse resp;
    grpc::Status s = synodpb::Shards::NewStub(ch)->Status(&ctx, synodpb::ShardsRequest(), &resp);
    if (!s.ok()) return s;
    if (resp.shards() == 0) {
      std::cout << "not sharded (one group; metadata leader " << hex(resp.metadata_leader())
                << ")\n";
      return s;
    }
    std::cout << resp.shards() << " shards, " << resp.replication() << " replicas each; "
              << "seen from member " << hex(resp.member()) << ", metadata leader "
              << hex(resp.metadata_leader()) << "\n";
    std::cout << "group  replicas                                              leader            "
                 "term  applied  revision  keys\n";
    for (const synodpb::GroupStatus& g : resp.groups()) {
      std::string replicas;
      for (uint64_t m : g.replicas()) replicas += (replicas.empty() ? "" : ",") + hex(m);
      std::cout << std::left << std::setw(7) << g.group() << std::setw(54) << replicas;
      if (g.hosted()) {
        std::cout << std::setw(18) << (g.leader() ? hex(g.leader()) : "none") << std::right
                  << std::setw(5) << g.term() << std::setw(9) << g.applied() << std::setw(10)
                  << g.revision() << std::setw(6) << g.keys();
      } else {
        std::cout << "(not replicated here)";
      }
      std::cout << std::left << "\n";
    }
    return s;
  });
}

// Rebalancing: how many shards sit where the ring over the current members wants them, and the
// moves under way (a replica added as a learner and catching up, or an old one still to go).
int run_rebalance_status(const CtlFlags& f) {
  return with_endpoints(f, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext& ctx) {
    synodpb::ShardsResponse resp;
    grpc::Status s = synodpb::Shards::NewStub(ch)->Status(&ctx, synodpb::ShardsRequest(), &resp);
    if (!s.ok()) return s;
    auto list = [&](const auto& ids) {
      std::string out;
      for (uint64_t m : ids) out += (out.empty() ? "" : ",") + hex(m);
      return out.empty() ? std::string("-") : out;
    };
    if (resp.shards() == 0) {
      std::cout << "not sharded\n";
      return s;
    }
    std::cout << resp.placed() << " of " << resp.shards() << " shards placed as the ring over "
              << resp.members_size() << " members wants (" << list(resp.members()) << ")\n";
    if (resp.placed() == resp.shards()) {
      std::cout << "balanced: no move under way\n";
      return s;
    }
    for (const synodpb::GroupStatus& g : resp.groups()) {
      std::vector<uint64_t> now(g.replicas().begin(), g.replicas().end());
      std::vector<uint64_t> want(g.target().begin(), g.target().end());
      std::sort(now.begin(), now.end());
      std::sort(want.begin(), want.end());
      if (now == want && g.learners().empty()) continue;
      std::string state;
      if (!g.learners().empty()) {
        state = "learner " + list(g.learners()) + " catching up";
      } else if (now.size() > want.size() ||
                 std::includes(now.begin(), now.end(), want.begin(), want.end())) {
        state = "old replica to remove";
      } else {
        state = "queued";
      }
      std::cout << "group " << g.group() << ": " << state << "; replicas " << list(g.replicas())
                << ", target " << list(g.target()) << "\n";
    }
    return s;
  });
}

int run_semaphore_list(const CtlFlags& f) {
  return with_endpoints(f, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext& ctx) {
    synodpb::SemaphoreDescribeRequest req;
    req.set_name(f.key);
    synodpb::SemaphoreDescribeResponse resp;
    grpc::Status s = synodpb::Semaphore::NewStub(ch)->Describe(&ctx, req, &resp);
    if (!s.ok()) return s;
    if (resp.permits() == 0) {
      std::cout << "no semaphore " << f.key << "\n";
      return s;
    }
    std::cout << "permits " << resp.permits() << ", " << resp.holders_size() << " held, "
              << resp.waiters_size() << " waiting\n";
    for (const auto& h : resp.holders())
      std::cout << "holder " << h.key() << " token " << h.token() << "\n";
    for (const auto& w : resp.waiters())
      std::cout << "waiter " << w.key() << " token " << w.token() << "\n";
    return s;
  });
}

int run_semaphore_extend(const CtlFlags& f) {
  return with_endpoints(f, [&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext& ctx) {
    auto stream = etcdserverpb::Lease::NewStub(ch)->LeaseKeepAlive(&ctx);
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(f.lease);
    etcdserverpb::LeaseKeepAliveResponse resp;
    if (!stream->Write(req) || !stream->Read(&resp)) {
      stream->WritesDone();
      return stream->Finish();
    }
    stream->WritesDone();
    stream->Finish().ok();
    if (resp.ttl() <= 0) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found");
    }
    std::cout << "lease " << std::hex << f.lease << std::dec << " keepalived with TTL("
              << resp.ttl() << ")\n";
    return grpc::Status::OK;
  });
}

// --- BFT client (PBFT clusters) -----------------------------------------------------------

std::unique_ptr<BftClient> bft_connect(const CtlFlags& f) {
  if (!f.bft || f.bft_keys.empty()) {
    std::cerr << "Error: put, get and del are the BFT client's: give --bft --bft-keys DIR (the "
                 "members' NAME.pub files); etcdctl does the same trusting one member\n";
    return nullptr;
  }
  BftClient::Options o;
  o.endpoints = parse_endpoints(f.endpoints);
  o.key_dir = f.bft_keys;
  o.timeout = std::chrono::seconds(f.timeout_s);
  std::string error;
  std::unique_ptr<BftClient> c = BftClient::connect(o, &error);
  if (!c) std::cerr << "Error: " << error << "\n";
  return c;
}

void print_kv(const mvccpb::KeyValue& kv) {
  std::cout << kv.key() << "\n" << kv.value() << "\n";
}

int bft_done(const std::optional<synodpb::BftResult>& r, const std::string& error) {
  if (!r) {
    std::cerr << "Error: " << error << "\n";
    return 3;
  }
  if (r->has_error()) {
    std::cerr << "Error: " << r->error() << "\n";
    return 1;
  }
  return 0;
}

int run_bft_put(const CtlFlags& f) {
  std::unique_ptr<BftClient> c = bft_connect(f);
  if (!c) return 3;
  synodpb::Request op;
  op.mutable_put()->set_key(f.key);
  op.mutable_put()->set_value(f.value);
  op.mutable_put()->set_prev_kv(f.prev_kv);
  std::string error;
  auto r = c->write(std::move(op), &error);
  if (int code = bft_done(r, error); code != 0) return code;
  std::cout << "OK\n";
  if (f.prev_kv && r->put().has_prev_kv()) print_kv(r->put().prev_kv());
  return 0;
}

int run_bft_get(const CtlFlags& f) {
  std::unique_ptr<BftClient> c = bft_connect(f);
  if (!c) return 3;
  etcdserverpb::RangeRequest range;
  range.set_key(f.key);
  if (f.prefix) range.set_range_end(kv::recipe::prefix_end(f.key));
  std::string error;
  auto r = c->read(range, &error);
  if (int code = bft_done(r, error); code != 0) return code;
  for (const mvccpb::KeyValue& kv : r->range().kvs()) print_kv(kv);
  return 0;
}

int run_bft_del(const CtlFlags& f) {
  std::unique_ptr<BftClient> c = bft_connect(f);
  if (!c) return 3;
  synodpb::Request op;
  op.mutable_delete_range()->set_key(f.key);
  if (f.prefix) op.mutable_delete_range()->set_range_end(kv::recipe::prefix_end(f.key));
  std::string error;
  auto r = c->write(std::move(op), &error);
  if (int code = bft_done(r, error); code != 0) return code;
  std::cout << r->delete_range().deleted() << "\n";
  return 0;
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
  CLI::App* sem = ctl->add_subcommand("semaphore", "counting semaphores (synodpb.Semaphore)");
  sem->require_subcommand(1);
  f->sem_acquire = sem->add_subcommand(
      "acquire", "wait for one of N permits, run COMMAND (or hold until Ctrl-C), release");
  f->sem_acquire->add_option("name", f->key, "the semaphore's name")->required();
  f->sem_acquire->add_option("command", f->command, "command to run while holding")->expected(-1);
  f->sem_acquire->add_option("--permits", f->permits, "N, the number of holders (1)");
  f->sem_acquire->add_option("--ttl", f->ttl_s, "session lease TTL in seconds (10)");
  f->sem_acquire->add_option("--timeout-ms", f->timeout_ms,
                             "give up after this long (try-acquire); 0 waits (0)");
  f->sem_release = sem->add_subcommand("release", "give a permit (or a place in line) back");
  f->sem_release->add_option("key", f->key, "the holder's key")->required();
  f->sem_list = sem->add_subcommand("list", "N, the holders and the waiters, in order");
  f->sem_list->add_option("name", f->key, "the semaphore's name")->required();
  f->sem_extend = sem->add_subcommand("extend", "keep a holder's lease alive once");
  f->sem_extend->add_option("lease", f->lease, "lease ID (decimal)")->required();
  ctl->add_flag("--bft", f->bft,
                "put/get/del as a BFT client of a PBFT cluster: every member asked, f + 1 "
                "matching MAC'd replies taken (2f + 1 for a read answered unordered)");
  ctl->add_option("--bft-keys", f->bft_keys,
                  "with --bft: the directory of the members' NAME.pub files (synod keys new)");
  f->put = ctl->add_subcommand("put", "put KEY VALUE (--bft)");
  f->put->add_option("key", f->key, "key")->required();
  f->put->add_option("value", f->value, "value")->required();
  f->put->add_flag("--prev-kv", f->prev_kv, "print the previous key-value");
  f->get = ctl->add_subcommand("get", "get KEY (--bft)");
  f->get->add_option("key", f->key, "key")->required();
  f->get->add_flag("--prefix", f->prefix, "every key with KEY as prefix");
  f->ring = ctl->add_subcommand(
      "ring", "a sharded cluster's shards: their replicas and, where hosted, leader and state");
  CLI::App* rebalance =
      ctl->add_subcommand("rebalance", "a sharded cluster's moves of shards between members");
  rebalance->require_subcommand(1);
  f->rebalance_status = rebalance->add_subcommand(
      "status", "shards placed as the ring wants, and the moves under way");
  CLI::App* snapshot = ctl->add_subcommand(
      "snapshot", "a sharded cluster's consistent cut across all shards (Chandy-Lamport)");
  snapshot->require_subcommand(1);
  f->snapshot_save = snapshot->add_subcommand(
      "save", "take a consistent cut of every shard while writes go on, into a new directory");
  f->snapshot_save->add_option("--cluster", f->snapshot_dir, "the directory to write")->required();
  f->snapshot_status = snapshot->add_subcommand(
      "status", "what a saved cut holds: groups, keys, messages in flight at the cut");
  f->snapshot_status->add_option("dir", f->snapshot_dir, "the snapshot's directory")->required();
  f->snapshot_restore = snapshot->add_subcommand(
      "restore",
      "load a saved cut (messages in flight delivered) into the empty cluster at --endpoints");
  f->snapshot_restore->add_option("dir", f->snapshot_dir, "the snapshot's directory")->required();
  for (CLI::App* sub : {f->snapshot_status, f->snapshot_restore}) {
    sub->add_option("--bug", f->snapshot_bug, "plant a known bug (tests only): ignore-in-flight")
        ->check(CLI::IsMember({"ignore-in-flight"}))
        ->group("");
  }
  f->del = ctl->add_subcommand("del", "delete KEY (--bft); prints how many keys went");
  f->del->add_option("key", f->key, "key")->required();
  f->del->add_flag("--prefix", f->prefix, "every key with KEY as prefix");
  for (CLI::App* sub : {f->fenced_put, f->lock_token, f->sem_acquire, f->sem_release, f->sem_list,
                        f->sem_extend, f->put, f->get, f->del, f->ring, f->rebalance_status,
                        f->snapshot_save, f->snapshot_status, f->snapshot_restore})
    sub->fallthrough();
  sem->fallthrough();
  snapshot->fallthrough();
  rebalance->fallthrough();
  return [f]() {
    if (f->ring->parsed()) return run_ring(*f);
    if (f->rebalance_status->parsed()) return run_rebalance_status(*f);
    if (f->snapshot_save->parsed() || f->snapshot_status->parsed() ||
        f->snapshot_restore->parsed()) {
      SnapshotFlags s;
      s.endpoints = parse_endpoints(f->endpoints);
      s.timeout_s = std::max(f->timeout_s, 60);
      s.dir = f->snapshot_dir;
      s.bugs.ignore_in_flight = f->snapshot_bug == "ignore-in-flight";
      if (f->snapshot_save->parsed()) return save_cluster_snapshot(s);
      if (f->snapshot_status->parsed()) return cluster_snapshot_status(s);
      return restore_cluster_snapshot(s);
    }
    if (f->put->parsed()) return run_bft_put(*f);
    if (f->get->parsed()) return run_bft_get(*f);
    if (f->del->parsed()) return run_bft_del(*f);
    if (f->fenced_put->parsed()) return run_fenced_put(*f);
    if (f->lock_token->parsed()) return run_lock_token(*f);
    if (f->sem_acquire->parsed()) return run_semaphore_acquire(*f);
    if (f->sem_release->parsed()) return run_semaphore_release(*f);
    if (f->sem_list->parsed()) return run_semaphore_list(*f);
    return run_semaphore_extend(*f);
  };
}

}  // namespace synod::cli
