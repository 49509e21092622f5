#include "server/server.h"

#include <absl/synchronization/mutex.h>
#include <execinfo.h>
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "server/apply_result.h"
#include "server/client_listener.h"
#include "server/cross_shard_txn.h"
#include "server/group_access.h"
#include "server/grpc_metrics.h"
#include "server/http_endpoints.h"
#include "server/pbft_keys.h"
#include "server/relay.h"
#include "server/services.h"
#include "server/shard_mover.h"
#include "server/sharded_leases.h"
#include "server/timestamp_oracle.h"
#include "server/tls.h"

namespace synod::server {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The member directory.

std::vector<etcdserverpb::Member> ServerContext::members() const {
  const NodeStatus s = node->status();
  std::vector<synodpb::Member> records =
      node->read_store([](const kv::Store& st) { return store_members(st); });
  std::vector<etcdserverpb::Member> out;
  auto add = [&](raft::NodeId id, bool learner) {
    etcdserverpb::Member m;
    m.set_id(id.value);
    m.set_islearner(learner);
    for (const synodpb::Member& r : records) {
      if (r.id() != id.value) continue;
      m.set_name(r.name());
      for (const std::string& u : r.peer_urls()) m.add_peerurls(u);
      for (const std::string& u : r.client_urls()) m.add_clienturls(u);
    }
    if (m.peerurls().empty()) {
      // A founding member that has not published itself yet: its peer URLs are known from
      // --initial-cluster.
      if (auto f = founding_peer_urls.find(id.value); f != founding_peer_urls.end()) {
        for (const Url& u : f->second) m.add_peerurls(u.str());
      }
    }
    out.push_back(std::move(m));
  };
  for (raft::NodeId id : s.conf.voters) add(id, false);
  for (raft::NodeId id : s.conf.learners) add(id, true);
  // etcd lists members ordered by id.
  std::sort(
      out.begin(), out.end(),
      [](const etcdserverpb::Member& a, const etcdserverpb::Member& b) { return a.id() < b.id(); });
  return out;
}

std::optional<std::string> ServerContext::leader_client_address() const {
  const NodeStatus s = node->status();
  if (s.leader == raft::kNoNode || s.leader.value == self_id) return std::nullopt;
  return client_address(s.leader.value);
}

std::optional<std::string> ServerContext::client_address(uint64_t id) const {
  for (const etcdserverpb::Member& m : members()) {
    if (m.id() != id || m.clienturls().empty()) continue;
    std::string error;
    auto url = parse_url(m.clienturls(0), &error);
    if (url) return url->host_port();
  }
  return std::nullopt;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Identity: who this member is and which cluster it belongs to, fixed at first start.

// How the cluster's founding member ids derive from --initial-cluster: etcd's SHA-1, or FNV-1a
// in a data dir bootstrapped before Synod computed etcd's ids (its identity file has no tag).
enum class IdScheme { kEtcd, kFnv };
constexpr const char* kEtcdIdsTag = "etcd-ids";

struct Identity {
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
  IdScheme ids = IdScheme::kEtcd;
  raft::ConfState initial_conf;  // founding members only, on first start
  std::map<uint64_t, std::string> peer_addresses;
  std::map<uint64_t, std::vector<Url>> founding_peer_urls;
};

uint64_t founding_member_id(IdScheme ids, const ClusterMember& cm, const std::string& token) {
  return ids == IdScheme::kEtcd ? member_id(cm.peer_urls, token)
                                : fnv_member_id(cm.peer_urls, token);
}

bool fsync_file(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r+");
  if (f == nullptr) return false;
  bool ok = fsync(fileno(f)) == 0;
  fclose(f);
  return ok;
}

bool write_identity(const std::string& dir, const Identity& id, std::string* error) {
  const std::string path = dir + "/member/identity";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    // The founding voters are part of the identity: the Raft core needs the bootstrap
    // configuration on every start, since no log entry records it.
    out << std::hex << id.member_id << " " << id.cluster_id << " " << id.initial_conf.voters.size();
    for (raft::NodeId v : id.initial_conf.voters) out << " " << v.value;
    // A trailing word, so that an older binary still reads the file.
    if (id.ids == IdScheme::kEtcd) out << " " << kEtcdIdsTag;
    out << "\n";
    if (!out) {
      *error = "cannot write " + tmp;
      return false;
    }
  }
  if (!fsync_file(tmp) || rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot persist " + path;
    return false;
  }
  return true;
}

bool read_identity(const std::string& dir, Identity* id) {
  std::ifstream in(dir + "/member/identity");
  size_t voters = 0;
  if (!(in >> std::hex >> id->member_id >> id->cluster_id >> voters) || voters > 1000) {
    return false;
  }
  for (size_t i = 0; i < voters; ++i) {
    uint64_t v = 0;
    if (!(in >> v)) return false;
    id->initial_conf.voters.emplace_back(v);
  }
  std::string tag;
  id->ids = (in >> tag) && tag == kEtcdIdsTag ? IdScheme::kEtcd : IdScheme::kFnv;
  return true;
}

// Asks the listed peers for the member directory, for a member joining an existing cluster.
bool discover(const ResolvedConfig& config, const std::shared_ptr<grpc::ChannelCredentials>& peer,
              Identity* id, std::string* error) {
  std::vector<std::string> mine;
  for (const Url& u : config.advertise_peer) mine.push_back(u.str());
  for (int attempt = 0; attempt < 30; ++attempt) {
    for (const ClusterMember& cm : config.initial_cluster) {
      if (cm.name == config.raw.name) continue;
      for (const Url& u : cm.peer_urls) {
        auto stub = synodpb::Peer::NewStub(grpc::CreateChannel(u.host_port(), peer));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
        synodpb::MembersRequest req;
        synodpb::MembersResponse resp;
        if (!stub->Members(&ctx, req, &resp).ok()) continue;
        id->cluster_id = resp.cluster_id();
        for (const synodpb::PeerMember& m : resp.members()) {
          if (!m.peer_urls().empty()) {
            std::string e;
            auto url = parse_url(m.peer_urls(0), &e);
            if (url) id->peer_addresses[m.id()] = url->host_port();
          }
          for (const std::string& pu : m.peer_urls()) {
            if (std::find(mine.begin(), mine.end(), pu) != mine.end()) id->member_id = m.id();
          }
        }
        if (id->member_id == 0) {
          *error = "the cluster has no member with peer URL " + mine.front() +
                   " (add it first with 'etcdctl member add')";
          return false;
        }
        return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  *error = "no member of --initial-cluster answered; cannot join an existing cluster";
  return false;
}

// A member joining an existing cluster: the founders' ids are FNV-1a if one of the members the
// cluster listed has the FNV-1a id of an --initial-cluster entry.
IdScheme discovered_scheme(const ResolvedConfig& config, const Identity& id) {
  for (const ClusterMember& cm : config.initial_cluster) {
    if (id.peer_addresses.count(fnv_member_id(cm.peer_urls, config.raw.initial_cluster_token))) {
      return IdScheme::kFnv;
    }
  }
  return IdScheme::kEtcd;
}

bool establish_identity(const ResolvedConfig& config,
                        const std::shared_ptr<grpc::ChannelCredentials>& peer, Identity* id,
                        std::string* error) {
  const std::string& dir = config.raw.data_dir;
  std::error_code ec;
  fs::create_directories(dir + "/member", ec);
  if (ec) {
    *error = "cannot create data dir '" + dir + "': " + ec.message();
    return false;
  }
  const std::string& token = config.raw.initial_cluster_token;
  const bool existing = fs::exists(dir + "/member/identity");
  if (existing) {
    // An existing data dir wins over the flags, as in etcd.
    if (!read_identity(dir, id)) {
      *error = "data dir '" + dir + "': member/identity is unreadable";
      return false;
    }
  } else if (config.new_cluster) {
    std::vector<uint64_t> ids;
    for (const ClusterMember& cm : config.initial_cluster) {
      ids.push_back(member_id(cm.peer_urls, token));
      id->initial_conf.voters.emplace_back(ids.back());
    }
    id->member_id = member_id(config.advertise_peer, token);
    id->cluster_id = cluster_id(ids);
  } else {
    if (!discover(config, peer, id, error)) return false;
    id->ids = discovered_scheme(config, *id);
  }
  for (const ClusterMember& cm : config.initial_cluster) {
    const uint64_t founder = founding_member_id(id->ids, cm, token);
    id->founding_peer_urls[founder] = cm.peer_urls;
    id->peer_addresses.emplace(founder, cm.peer_urls.front().host_port());
  }
  return existing || write_identity(dir, *id, error);
}

// The consensus engine is fixed when the data dir is made (member/engine; a data dir without
// the file was made by Raft): the log of one engine means nothing to another.
bool check_engine(const std::string& dir, const std::string& engine, std::string* error) {
  const std::string path = dir + "/member/engine";
  std::string recorded = "raft";
  if (fs::exists(path)) {
    std::ifstream in(path);
    if (!(in >> recorded)) {
      *error = "data dir '" + dir + "': member/engine is unreadable";
      return false;
    }
  } else if (fs::exists(dir + "/member/db")) {
    recorded = "raft";
  } else {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << engine << "\n";
      if (!out) {
        *error = "cannot write " + tmp;
        return false;
      }
    }
    if (!fsync_file(tmp) || rename(tmp.c_str(), path.c_str()) != 0) {
      *error = "cannot persist " + path;
      return false;
    }
    recorded = engine;
  }
  if (recorded != engine) {
    *error = "data dir '" + dir + "' holds a " + recorded + " log; start it with --engine " +
             recorded + " (the engine cannot change for a data dir)";
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Publishing this member's name and client URLs into the replicated member table.

bool published(const ServerContext& ctx) {
  std::vector<synodpb::Member> records =
      ctx.node->read_store([](const kv::Store& s) { return store_members(s); });
  for (const synodpb::Member& r : records) {
    if (r.id() != ctx.self_id) continue;
    if (r.name() != ctx.config.raw.name ||
        r.client_urls_size() != static_cast<int>(ctx.config.advertise_client.size())) {
      return false;
    }
    return true;
  }
  return false;
}

void publish_self(ServerContext& ctx) {
  synodpb::Request request;
  synodpb::Member* m = request.mutable_member_put();
  m->set_id(ctx.self_id);
  m->set_name(ctx.config.raw.name);
  for (const Url& u : ctx.config.advertise_peer) m->add_peer_urls(u.str());
  for (const Url& u : ctx.config.advertise_client) m->add_client_urls(u.str());
  ctx.node->propose(std::move(request), [](const kv::ApplyResult&) {});
}

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
}

// A crash leaves the signal and a backtrace in the member's log (stderr); then the default
// action runs (a core file where the limit allows one). Only async-signal-safe calls here;
// backtrace() ran once at install, so it does not load libgcc while handling the signal.
void on_fatal_signal(int sig) {
  char msg[] = "synod server: fatal signal 00; backtrace:\n";
  msg[27] = static_cast<char>('0' + sig / 10 % 10);
  msg[28] = static_cast<char>('0' + sig % 10);
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void install_crash_handler() {
  void* frames[1];
  (void)backtrace(frames, 1);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, on_fatal_signal);
}

// Points the transport at every member of the current configuration. A member that has not
// yet learned any configuration (one joining an existing cluster) talks to every member it
// discovered, so it can answer the leader that is catching it up.
// The latest known peer address of each member, for state fetches.
struct PeerDirectory {
  std::mutex mu;
  std::map<uint64_t, std::string> addresses;
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // how peers are reached
};

std::optional<std::string> fetch_state(PeerDirectory& dir, uint32_t group, raft::NodeId from,
                                       uint64_t min_index, bool retained, Node::FetchCancel& cancel,
                                       uint64_t* index, std::string* error) {
  std::string address;
  {
    std::lock_guard lock(dir.mu);
    auto it = dir.addresses.find(from.value);
    if (it == dir.addresses.end()) {
      *error = "no address known for member " + std::to_string(from.value);
      return std::nullopt;
    }
    address = it->second;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto stub = synodpb::Peer::NewStub(grpc::CreateCustomChannel(address, dir.credentials, args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  synodpb::FetchStateRequest req;
  req.set_min_index(min_index);
  req.set_retained(retained);
  req.set_group(group);
  cancel.set([&ctx] { ctx.TryCancel(); });  // stop() ends the fetch
  auto reader = stub->FetchState(&ctx, req);
  std::string image;
  synodpb::StateChunk chunk;
  uint64_t applied = 0;
  uint64_t total = 0;
  bool first = true;
  while (reader->Read(&chunk)) {
    if (first) {
      applied = chunk.applied_index();
      total = chunk.total_bytes();
      image.reserve(total);
      first = false;
    }
    image += chunk.data();
  }
  grpc::Status status = reader->Finish();
  cancel.clear();
  if (!status.ok()) {
    *error = "from " + address + ": " + status.error_message();
    return std::nullopt;
  }
  if (first || image.size() != total || applied < min_index) {
    *error = "from " + address + ": incomplete state";
    return std::nullopt;
  }
  *index = applied;
  return image;
}

// Probes every known peer every 4 s (etcd's prober interval) with a Members call and records
// the round trip in the node's metrics. Its own thread; stops with the object.
class PeerProber {
 public:
  PeerProber(ServerContext& ctx, PeerDirectory& directory)
      : ctx_(ctx), directory_(directory), thread_([this] { run(); }) {}
  ~PeerProber() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    std::map<std::string, std::unique_ptr<synodpb::Peer::Stub>> stubs;  // by address
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(2), [&] { return stopping_; })) {
      lock.unlock();
      std::map<uint64_t, std::string> peers;
      std::shared_ptr<grpc::ChannelCredentials> credentials;
      {
        std::lock_guard dir_lock(directory_.mu);
        peers = directory_.addresses;
        credentials = directory_.credentials;
      }
      peers.erase(ctx_.self_id);
      for (const auto& [id, address] : peers) {
        auto& stub = stubs[address];
        if (!stub) stub = synodpb::Peer::NewStub(grpc::CreateChannel(address, credentials));
        grpc::ClientContext call;
        call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
        synodpb::MembersRequest req;
        synodpb::MembersResponse resp;
        const auto start = Clock::now();
        const bool answered = stub->Members(&call, req, &resp).ok();
        if (answered) {
          ctx_.node->metrics().observe_peer_rtt(
              id, std::chrono::duration<double>(Clock::now() - start).count());
        }
        // A sharded member's calls to other members' replicas try the ones that answer first.
        if (ctx_.remote_groups != nullptr) ctx_.remote_groups->probed(id, answered);
      }
      lock.lock();
    }
  }

  ServerContext& ctx_;
  PeerDirectory& directory_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is set
};

void sync_peers(net::Transport& transport, ServerContext& ctx, const Identity& identity,
                PeerDirectory& directory) {
  const NodeStatus s = ctx.node->status();
  std::map<uint64_t, std::string> addresses = identity.peer_addresses;
  for (const etcdserverpb::Member& m : ctx.members()) {
    if (m.peerurls().empty()) continue;
    std::string e;
    auto url = parse_url(m.peerurls(0), &e);
    if (url) addresses[m.id()] = url->host_port();
  }
  std::set<uint64_t> wanted;
  for (raft::NodeId id : s.conf.voters) wanted.insert(id.value);
  for (raft::NodeId id : s.conf.learners) wanted.insert(id.value);
  if (wanted.empty()) {
    for (const auto& [id, address] : addresses) wanted.insert(id);
  }
  wanted.erase(ctx.self_id);
  {
    std::lock_guard lock(directory.mu);
    directory.addresses = addresses;
  }
  if (ctx.shards != nullptr) {
    for (const auto& [id, address] : addresses) {
      if (id != ctx.self_id) ctx.shards->set_peer_address(id, address);
    }
  }
  for (uint64_t id : wanted) {
    auto it = addresses.find(id);
    if (it != addresses.end()) transport.set_peer(raft::NodeId(id), it->second);
  }
  for (const auto& [id, address] : addresses) {
    if (!wanted.count(id)) transport.remove_peer(raft::NodeId(id));
  }
}

}  // namespace

namespace {

// protobuf's own complaints go to the member's log, at most one a second with a count of those
// dropped: it logs one on every parse of a string field that is not UTF-8, so a peer or client
// sending such fields would otherwise fill the member's log as fast as it sends.
void log_protobuf(google::protobuf::LogLevel level, const char*, int, const std::string& message) {
  static std::mutex mu;
  static Clock::time_point last;
  static uint64_t dropped = 0;
  std::string text = message;
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '"', '\'');
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf: {}", text);
    return;
  }
  std::lock_guard lock(mu);
  const Clock::time_point now = Clock::now();
  if (now - last < std::chrono::seconds(1)) {
    ++dropped;
    return;
  }
  last = now;
  if (dropped == 0) {
    spdlog::warn("protobuf: {}", text);
  } else {
    spdlog::warn("protobuf: {} ({} more in the last second not logged)", text, dropped);
  }
  dropped = 0;
}

OutboundFilterFactory& outbound_filter_factory() {
  static OutboundFilterFactory factory;
  return factory;
}
}  // namespace

void set_outbound_filter_factory(OutboundFilterFactory factory) {
  outbound_filter_factory() = std::move(factory);
}

namespace {
ServedStateFilter& served_state_filter_slot() {
  static ServedStateFilter filter;
  return filter;
}
}  // namespace

void set_served_state_filter(ServedStateFilter filter) {
  served_state_filter_slot() = std::move(filter);
}

const ServedStateFilter& served_state_filter() {
  return served_state_filter_slot();
}

int run_server(const ResolvedConfig& config) {
  // gRPC's mutexes are absl's; Debian builds absl with its deadlock detector on, which costs a
  // lock-graph update on every acquisition (a few percent of a busy member's CPU).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  install_crash_handler();
  google::protobuf::SetLogHandler(&log_protobuf);
  if (sodium_init() < 0) {
    spdlog::error("synod server: libsodium failed to initialize");
    return 1;
  }
  std::string error;
  Identity identity;
  if (config.raw.engine == "pbft" && !config.new_cluster &&
      !fs::exists(config.raw.data_dir + "/member/identity")) {
    spdlog::error(
        "synod server: --engine pbft: the membership is fixed; a PBFT cluster cannot be joined "
        "(start every member of --initial-cluster with --initial-cluster-state new)");
    return 1;
  }
  // Key and TLS files are read once, here: a restart takes up replaced ones.
  std::unique_ptr<JwtTokens> jwt;
  if (config.jwt) {
    std::string jwt_error;
    jwt = JwtTokens::make(*config.jwt, &jwt_error);
    if (!jwt) {
      spdlog::error("synod server: {}", jwt_error);
      return 1;
    }
  }
  std::optional<TlsFiles> client_tls;
  std::optional<TlsFiles> peer_tls;
  if (!config.raw.cert_file.empty()) {
    client_tls = load_tls_files(config.raw.cert_file, config.raw.key_file,
                                config.raw.trusted_ca_file, config.raw.client_cert_auth, &error);
    if (!client_tls) {
      spdlog::error("synod server: --cert-file/--key-file/--trusted-ca-file: {}", error);
      return 1;
    }
  }
  if (!config.raw.peer_cert_file.empty()) {
    peer_tls =
        load_tls_files(config.raw.peer_cert_file, config.raw.peer_key_file,
                       config.raw.peer_trusted_ca_file, config.raw.peer_client_cert_auth, &error);
    if (!peer_tls) {
      spdlog::error("synod server: --peer-cert-file/--peer-key-file/--peer-trusted-ca-file: {}",
                    error);
      return 1;
    }
  }
  const std::shared_ptr<grpc::ChannelCredentials> peer_channel =
      peer_tls ? channel_credentials(*peer_tls) : grpc::InsecureChannelCredentials();
  if (!establish_identity(config, peer_channel, &identity, &error)) {
    spdlog::error("synod server: {}", error);
    return 1;
  }
  if (!check_engine(config.raw.data_dir, config.raw.engine, &error)) {
    spdlog::error("synod server: {}", error);
    return 1;
  }
  const ShardOptions shard_options{config.raw.shards, config.raw.replication};
  if (!check_shard_layout(config.raw.data_dir, shard_options, &error)) {
    spdlog::error("synod server: {}", error);
    return 1;
  }
  spdlog::info("synod server: member {:x} ({}) of cluster {:x}, engine {}, data dir {}",
               identity.member_id, config.raw.name, identity.cluster_id, config.raw.engine,
               config.raw.data_dir);

  net::Transport transport(raft::NodeId(identity.member_id), identity.cluster_id, config.raw.engine,
                           peer_channel);
  NodeOptions options;
  options.id = raft::NodeId(identity.member_id);
  options.cluster_id = identity.cluster_id;
  options.data_dir = config.raw.data_dir;
  options.initial_conf = identity.initial_conf;
  options.engine = *replica::parse_engine(config.raw.engine);
  options.tick_ms = config.raw.heartbeat_interval_ms;
  options.election_ticks = config.raw.election_timeout_ms / config.raw.heartbeat_interval_ms;
  options.snapshot_entries = config.raw.snapshot_count;
  if (options.engine == replica::EngineKind::kPbft) {
    // The membership is fixed: the founders, on every start; and the keys of each of them.
    std::vector<std::pair<std::string, uint64_t>> members;
    options.initial_conf = {};
    for (const ClusterMember& cm : config.initial_cluster) {
      const uint64_t id = founding_member_id(identity.ids, cm, config.raw.initial_cluster_token);
      members.emplace_back(cm.name, id);
      options.initial_conf.voters.emplace_back(id);
    }
    options.pbft.state_interval = config.raw.pbft_state_interval;
    options.pbft.keys = load_member_keyring(config.raw.data_dir, config.raw.name, members, &error);
    if (!options.pbft.keys) {
      spdlog::error("synod server: {}", error);
      return 1;
    }
  }
  std::unique_ptr<Node> node = Node::open(options, transport, &error);
  if (!node) {
    spdlog::error("synod server: {}", error);
    return 1;
  }
  if (outbound_filter_factory()) {
    node->set_outbound_filter(outbound_filter_factory()(identity.member_id, options.pbft.keys));
  }
  PeerDirectory directory;
  directory.credentials = peer_channel;
  // Where another member's peer service listens, as the directory last learned it.
  auto peer_address = [&directory](uint64_t member) -> std::optional<std::string> {
    std::lock_guard lock(directory.mu);
    auto it = directory.addresses.find(member);
    if (it == directory.addresses.end()) return std::nullopt;
    return it->second;
  };
  std::unique_ptr<TimestampOracle> oracle;
  std::unique_ptr<Shards> shards;
  if (shard_options.shards > 0) {
    oracle =
        std::make_unique<TimestampOracle>(*node, identity.member_id, peer_address, peer_channel);
    NodeOptions group_options = options;
    group_options.expire_leases = false;
    group_options.timestamps = [o = oracle.get()](uint32_t count, NodeOptions::TimestampDone done) {
      o->allocate(count, std::move(done));
    };
    // The founders (the identity keeps them, whatever --initial-cluster-state a restart is
    // given) place the groups and found their configurations: a group whose log holds no
    // membership change starts from that placement on every start. A member that joined an
    // existing cluster has none; it takes its groups from the shard map, and their
    // configurations from their logs and snapshots.
    std::vector<uint64_t> founders;
    for (raft::NodeId v : identity.initial_conf.voters) founders.push_back(v.value);
    shards = Shards::open(shard_options, group_options, founders, peer_channel, &error);
    if (!shards) {
      spdlog::error("synod server: {}", error);
      return 1;
    }
    spdlog::info("synod server: {} shards of {} replicas; {} hosted here", shard_options.shards,
                 shard_options.replication, shards->hosted().size());
  }
  Executor executor(2);
  Tokens tokens(std::chrono::seconds(config.raw.auth_token_ttl_s));
  if (!jwt) {
    node->set_on_auth_applied([&tokens](const synodpb::AuthRequest& r) { tokens.on_applied(r); });
  }
  ServerContext ctx;
  ctx.config = config;
  ctx.node = node.get();
  ctx.shards = shards.get();
  ctx.oracle = oracle.get();
  std::unique_ptr<RemoteGroups> remote_groups;
  if (shards) {
    remote_groups = std::make_unique<RemoteGroups>(peer_address, peer_channel);
    ctx.remote_groups = remote_groups.get();
  }
  ctx.executor = &executor;
  ctx.tokens = &tokens;
  ctx.jwt = jwt.get();
  if (client_tls) ctx.client_channel_credentials = channel_credentials(*client_tls);
  ctx.self_id = identity.member_id;
  ctx.founding_peer_urls = identity.founding_peer_urls;

  auto fetch_for = [&directory](uint32_t group) {
    return [&directory, group](raft::NodeId from, uint64_t min_index, bool retained,
                               Node::FetchCancel& cancel, uint64_t* index, std::string* e) {
      return fetch_state(directory, group, from, min_index, retained, cancel, index, e);
    };
  };
  node->set_fetch_state(fetch_for(0));

  KvService kv_service(ctx);
  AuthService auth_service(ctx);
  ClusterService cluster_service(ctx);
  MaintenanceService maintenance_service(ctx);
  WatchService watch_service(ctx);
  LeaseService lease_service(ctx);
  FenceService fence_service(ctx);
  ShardsService shards_service(ctx);
  LockService lock_service(ctx, watch_service);
  ElectionService election_service(ctx, watch_service);
  SemaphoreService semaphore_service(ctx, watch_service);
  node->set_watch_sink([&watch_service](std::vector<kv::WatchOutput>&& out) {
    watch_service.deliver(std::move(out));
  });
  if (shards) {
    ctx.watch_service = &watch_service;
    shards->set_on_drop([&watch_service](uint32_t group) { watch_service.group_dropped(group); });
    shards->set_node_setup([fetch_for, &watch_service](uint32_t group, Node& group_node) {
      group_node.set_fetch_state(fetch_for(group));
      group_node.set_watch_sink([&watch_service, group](std::vector<kv::WatchOutput>&& out) {
        watch_service.deliver_from_group(group, std::move(out));
      });
    });
  }
  PeerService peer_service(ctx);
  std::unique_ptr<BftService> bft_service;
  if (options.engine == replica::EngineKind::kPbft) {
    const auto n = static_cast<uint32_t>(options.initial_conf.voters.size());
    bft_service = std::make_unique<BftService>(
        ctx, std::make_shared<pbft::Keyring>(*options.pbft.keys), n, (n - 1) / 3);
  }

  grpc::ServerBuilder peer_builder;
  for (const Url& u : config.listen_peer) {
    peer_builder.AddListeningPort(u.host_port(), peer_tls ? server_credentials(*peer_tls)
                                                          : grpc::InsecureServerCredentials());
  }
  peer_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  peer_builder.SetMaxReceiveMessageSize(INT32_MAX);
  peer_builder.RegisterService(&peer_service);
  std::unique_ptr<grpc::Server> peer_server = peer_builder.BuildAndStart();
  if (!peer_server) {
    spdlog::error("synod server: cannot listen on --listen-peer-urls {}",
                  config.raw.listen_peer_urls);
    return 1;
  }

  // --listen-metrics-urls: /metrics and /health over HTTP from the start, before this member
  // serves clients.
  GrpcMetrics grpc_metrics({"etcdserverpb.KV", "etcdserverpb.Watch", "etcdserverpb.Lease",
                            "etcdserverpb.Cluster", "etcdserverpb.Maintenance", "v3lockpb.Lock",
                            "v3electionpb.Election", "synodpb.Fence", "synodpb.Semaphore",
                            "synodpb.Bft", "synodpb.Shards", "etcdserverpb.Auth"});
  // With --metrics extensive only: the interceptor that counts costs every request.
  const GrpcMetrics* rpc_counts = config.raw.metrics == "extensive" ? &grpc_metrics : nullptr;
  // HTTP/1.1 over TLS on the https:// client and metrics URLs.
  std::unique_ptr<HttpsContext> https;
  if (client_tls) {
    std::string tls_error;
    https = HttpsContext::make(*client_tls, &tls_error);
    if (!https) {
      spdlog::error("synod server: --cert-file/--key-file: {}", tls_error);
      peer_server->Shutdown(std::chrono::system_clock::now());
      return 1;
    }
  }
  std::unique_ptr<ClientListener> metrics_listener;
  if (!config.listen_metrics.empty()) {
    std::string listen_error;
    metrics_listener = ClientListener::open(config.listen_metrics, &listen_error);
    if (!metrics_listener) {
      spdlog::error("synod server: --listen-metrics-urls: {}", listen_error);
      peer_server->Shutdown(std::chrono::system_clock::now());
      return 1;
    }
    metrics_listener->start({nullptr, nullptr, https.get()}, make_http_handler(ctx, rpc_counts));
  }

  node->start();
  std::unique_ptr<TxnResolver> txn_resolver;
  std::unique_ptr<LeaseMirror> lease_mirror;
  std::unique_ptr<ShardMover> shard_mover;
  if (shards) {
    shards->start();
    shard_mover = std::make_unique<ShardMover>(ctx, std::chrono::milliseconds(200));
    lease_mirror = std::make_unique<LeaseMirror>(ctx, std::chrono::milliseconds(500));
    node->set_on_lease_revoked([m = lease_mirror.get()](int64_t) { m->kick(); });
    // Intents of a coordinator that died are settled 5 s after it prepared them.
    txn_resolver = std::make_unique<TxnResolver>(ctx, std::chrono::milliseconds(500),
                                                 std::chrono::milliseconds(5000));
  }
  sync_peers(transport, ctx, identity, directory);
  std::optional<PeerProber> prober;
  prober.emplace(ctx, directory);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  // As in etcd, a member serves clients only once its name and client URLs are in the
  // replicated member table, so every member list a client sees names every started member.
  auto last_publish = Clock::now() - std::chrono::seconds(10);
  auto keep_published = [&] {
    const NodeStatus s = node->status();
    if (s.leader != raft::kNoNode && !published(ctx) &&
        Clock::now() - last_publish > std::chrono::seconds(2)) {
      publish_self(ctx);
      last_publish = Clock::now();
    }
    sync_peers(transport, ctx, identity, directory);
  };
  while (!g_stop.load() && !published(ctx)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    keep_published();
  }
  std::unique_ptr<grpc::Server> client_server;
  std::unique_ptr<ClientListener> client_listener;
  std::unique_ptr<Relay> tls_relay;  // gRPC over TLS, after the listener
  int exit_code = 0;
  if (!g_stop.load()) {
    grpc::EnableDefaultHealthCheckService(true);
    // The client URLs are the listener's (client_listener.h): it hands gRPC its connections
    // and serves the HTTP endpoints itself. For the https:// ones gRPC listens with TLS on an
    // abstract unix socket of this process, and the listener relays gRPC clients to it.
    grpc::ServerBuilder client_builder;
    std::string listen_error;
    const bool any_https = std::any_of(config.listen_client.begin(), config.listen_client.end(),
                                       [](const Url& u) { return u.scheme == "https"; });
    if (any_https) {
      const std::string socket_name = "synod-grpc-tls-" + std::to_string(::getpid()) + "-" +
                                      std::to_string(std::random_device{}());
      client_builder.AddListeningPort("unix-abstract:" + socket_name,
                                      server_credentials(*client_tls));
      tls_relay = Relay::start(socket_name, &listen_error);
    }
    client_listener = ClientListener::open(config.listen_client, &listen_error);
    bool listening = client_listener != nullptr && (!any_https || tls_relay != nullptr);
    if (rpc_counts != nullptr) {
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> counting;
      counting.push_back(grpc_metrics.interceptor_factory());
      client_builder.experimental().SetInterceptorCreators(std::move(counting));
    }
    client_builder.SetMaxReceiveMessageSize(
        static_cast<int>(config.raw.max_request_bytes + kReceiveSlackBytes));
    client_builder.SetMaxSendMessageSize(INT32_MAX);
    client_builder.RegisterService(&kv_service);
    client_builder.RegisterService(&auth_service);
    client_builder.RegisterService(&cluster_service);
    client_builder.RegisterService(&maintenance_service);
    client_builder.RegisterService(&watch_service);
    client_builder.RegisterService(&lease_service);
    client_builder.RegisterService(&fence_service);
    client_builder.RegisterService(&shards_service);
    client_builder.RegisterService(&lock_service);
    client_builder.RegisterService(&election_service);
    client_builder.RegisterService(&semaphore_service);
    if (bft_service) client_builder.RegisterService(bft_service.get());
    if (listening) client_server = client_builder.BuildAndStart();
    if (!listening || !client_server) {
      spdlog::error("synod server: cannot listen on --listen-client-urls {}: {}",
                    config.raw.listen_client_urls,
                    listening ? "the gRPC server did not start" : listen_error);
      exit_code = 1;
      g_stop.store(true);
    } else {
      if (client_listener) {
        client_listener->start({client_server.get(), tls_relay.get(), https.get()},
                               make_http_handler(ctx, rpc_counts));
      }
      spdlog::info("synod server: serving clients on {}, peers on {}",
                   config.raw.listen_client_urls, config.raw.listen_peer_urls);
    }
  }
  while (!g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    keep_published();
  }
  spdlog::info("synod server: shutting down");
  // Each step is timed; one over a second is logged, and a watchdog says every 5 s which step
  // the shutdown is still in (for the client server: which calls gRPC still waits on).
  std::atomic<const char*> step_name{"listeners"};
  std::mutex shutdown_mu;
  std::condition_variable shutdown_cv;
  bool shut = false;
  std::thread watchdog([&] {
    std::unique_lock lock(shutdown_mu);
    while (!shutdown_cv.wait_for(lock, std::chrono::seconds(5), [&] { return shut; })) {
      const std::string name = step_name.load();
      const bool calls = name == "client gRPC server" && rpc_counts != nullptr;
      spdlog::warn("synod server: still shutting down: {}{}{}", name,
                   calls ? "; client calls unanswered: " : "",
                   calls ? rpc_counts->unfinished() : std::string());
    }
  });
  auto step = [&](const char* name, auto&& fn) {
    step_name.store(name);
    const auto start = Clock::now();
    fn();
    const double took = std::chrono::duration<double>(Clock::now() - start).count();
    if (took > 1.0) spdlog::info("synod server: shutdown: {} took {:.1f} s", name, took);
  };
  step("listeners", [&] {
    if (client_listener) client_listener->stop();
    tls_relay.reset();
    if (metrics_listener) metrics_listener->stop();
  });
  if (client_server) {
    // gRPC waits for every call it started to be answered (and its reactor done).
    step("client gRPC server", [&] {
      watch_service.close_all();
      client_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    });
  }
  step("peer prober", [&] { prober.reset(); });
  step("peer gRPC server",
       [&] { peer_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1)); });
  step("shard mover", [&] { shard_mover.reset(); });  // before the groups: it opens and drops them
  step("groups", [&] {
    node->stop();
    if (shards) shards->stop();
  });
  // After the groups: their last answers may still reach these.
  step("transaction resolver", [&] { txn_resolver.reset(); });
  step("lease mirror", [&] { lease_mirror.reset(); });
  // Waits for its calls: their answers go to the stopped groups.
  step("timestamp oracle", [&] { oracle.reset(); });
  // Its last tasks (retries waiting their back-off) still find the context.
  step("executor", [&] { executor.stop(); });
  step("transport", [&] { transport.stop(); });
  {
    std::lock_guard lock(shutdown_mu);
    shut = true;
  }
  shutdown_cv.notify_all();
  watchdog.join();
  spdlog::info("synod server: stopped");
  return exit_code;
}

}  // namespace synod::server
