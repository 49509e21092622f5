#include "server/http_endpoints.h"

#include "server/dashboard.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <sstream>

#include <spdlog/fmt/fmt.h>

#include "base/metrics.h"
#include "server/node.h"

namespace synod::server {

namespace {

constexpr auto kHealthReadTimeout = std::chrono::seconds(1);  // etcd's QGET deadline

HttpResponse method_not_allowed() {
  return {405, "text/plain; charset=utf-8", "Method Not Allowed\n"};
}

// etcd 3.4's health check: no leader, or a quorum read that does not finish within a second,
// is unhealthy.
bool healthy(Node& node) {
  if (node.status().leader == raft::kNoNode) return false;
  auto answer = std::make_shared<std::promise<bool>>();
  std::future<bool> result = answer->get_future();
  node.read_barrier([answer](std::optional<Error> e) { answer->set_value(!e.has_value()); });
  return result.wait_for(kHealthReadTimeout) == std::future_status::ready && result.get();
}

// The process collector's metrics every Prometheus Go client (so etcd) exports, from /proc.
void process_metrics(metrics::Exposition& e) {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces), from field 3 (state) on.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
  if (f.size() < 22) return;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // f[k] is field k + 3 of proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  e.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
           "counter");
  e.sample("process_cpu_seconds_total", cpu);
  std::ifstream uptime_file("/proc/uptime");
  double uptime = 0;
  uptime_file >> uptime;
  const double boot = static_cast<double>(std::time(nullptr)) - uptime;
  e.family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
           "gauge");
  e.sample("process_start_time_seconds", boot + std::stod(f[19]) / ticks);
  e.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge");
  e.sample("process_virtual_memory_bytes", std::stod(f[20]));
  e.family("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge");
  e.sample("process_resident_memory_bytes", std::stod(f[21]) * page);
  size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  e.family("process_open_fds", "Number of open file descriptors.", "gauge");
  e.sample("process_open_fds", static_cast<double>(fds));
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    e.family("process_max_fds", "Maximum number of open file descriptors.", "gauge");
    e.sample("process_max_fds", static_cast<double>(limit.rlim_cur));
  }
}

std::string render_metrics(const ServerContext& ctx, const GrpcMetrics* grpc_metrics) {
  Node& node = *ctx.node;
  const NodeStatus s = node.status();
  const NodeMetrics& m = node.metrics();
  metrics::Exposition e;
  // etcd's names.
  e.family("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
           "gauge");
  e.sample("etcd_server_has_leader", s.leader != raft::kNoNode ? 1 : 0);
  e.family("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
           "gauge");
  e.sample("etcd_server_is_leader", s.role == raft::Role::kLeader ? 1 : 0);
  e.family("etcd_server_is_learner",
           "Whether or not this member is a learner. 1 if is, 0 otherwise.", "gauge");
  e.sample("etcd_server_is_learner", s.conf.is_learner(raft::NodeId(ctx.self_id)) ? 1 : 0);
  e.family("etcd_server_id",
           "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
           "gauge");
  e.sample("etcd_server_id", {{"server_id", fmt::format("{:x}", ctx.self_id)}}, 1);
  e.family("etcd_server_version",
           "Which version is running. 1 for 'server_version' label with current version.", "gauge");
  e.sample("etcd_server_version", {{"server_version", kApiVersion}}, 1);
  e.family("etcd_server_leader_changes_seen_total", "The number of leader changes seen.",
           "counter");
  e.sample("etcd_server_leader_changes_seen_total", static_cast<double>(m.leader_changes.value()));
  e.family("etcd_server_proposals_committed_total",
           "The total number of consensus proposals committed.", "gauge");
  e.sample("etcd_server_proposals_committed_total", static_cast<double>(s.committed));
  e.family("etcd_server_proposals_applied_total",
           "The total number of consensus proposals applied.", "gauge");
  e.sample("etcd_server_proposals_applied_total", static_cast<double>(s.applied));
  e.family("etcd_server_proposals_failed_total", "The total number of failed proposals seen.",
           "counter");
  e.sample("etcd_server_proposals_failed_total", static_cast<double>(m.proposals_failed.value()));
  e.family("synod_server_duplicate_requests_total",
           "PBFT: entries whose client request had taken effect before (ordered again; no effect).",
           "counter");
  e.sample("synod_server_duplicate_requests_total",
           static_cast<double>(m.duplicates_applied.value()));
  e.family("etcd_server_health_success", "The total number of successful health checks", "counter");
  e.sample("etcd_server_health_success", static_cast<double>(m.health_success.value()));
  e.family("etcd_server_health_failures", "The total number of failed health checks", "counter");
  e.sample("etcd_server_health_failures", static_cast<double>(m.health_failures.value()));
  e.histogram("etcd_disk_wal_fsync_duration_seconds",
              "The latency distributions of fsync called by WAL.", m.wal_fsync);
  e.histogram("etcd_disk_backend_commit_duration_seconds",
              "The latency distributions of commit called by backend.", m.backend_commit);
  const auto db_size = static_cast<double>(node.backend_size_bytes());
  e.family("etcd_mvcc_db_total_size_in_bytes",
           "Total size of the underlying database physically allocated in bytes.", "gauge");
  e.sample("etcd_mvcc_db_total_size_in_bytes", db_size);
  e.family("etcd_debugging_mvcc_current_revision", "The current revision of store.", "gauge");
  e.sample("etcd_debugging_mvcc_current_revision", static_cast<double>(ctx.revision()));
  // Synod's own.
  e.family("synod_server_engine", "The consensus engine this member runs (1 for its label).",
           "gauge");
  e.sample("synod_server_engine", {{"engine", node.engine_name()}}, 1);
  e.family("synod_server_term",
           "The current term (Raft), ballot round (Multi-Paxos) or view + 1 "
           "(PBFT).",
           "gauge");
  e.sample("synod_server_term", static_cast<double>(s.term.value));
  e.family("synod_server_apply_lag",
           "Entries committed and not yet applied to the state machine here.", "gauge");
  e.sample("synod_server_apply_lag",
           static_cast<double>(s.committed > s.applied ? s.committed - s.applied : 0));
  e.family("synod_server_voters", "Voting members in this member's configuration.", "gauge");
  e.sample("synod_server_voters", static_cast<double>(s.conf.voters.size()));
  e.family("synod_server_learners", "Learners in this member's configuration.", "gauge");
  e.sample("synod_server_learners", static_cast<double>(s.conf.learners.size()));
  e.histogram("synod_server_write_duration_seconds",
              "Client writes through the log, from arrival to answer.", m.write_latency);
  e.histogram("synod_server_read_duration_seconds",
              "Client KV reads, from arrival to answer (a linearizable one's barrier included).",
              m.read_latency);
  bool rtt_family = false;  // as Prometheus's Go client: no family without a series
  m.for_each_peer_rtt([&](uint64_t peer, const metrics::Histogram& h) {
    if (!rtt_family) {
      e.family("etcd_network_peer_round_trip_time_seconds",
               "Round-Trip-Time histogram between peers", "histogram");
      rtt_family = true;
    }
    e.histogram_samples("etcd_network_peer_round_trip_time_seconds",
                        {{"To", fmt::format("{:x}", peer)}}, h);
  });
  e.family("synod_server_watch_streams", "Client watch streams open.", "gauge");
  e.sample("synod_server_watch_streams", static_cast<double>(m.watch_streams.load()));
  e.family("synod_server_lock_waiters",
           "Lock, election campaign and semaphore acquire calls waiting for an answer.", "gauge");
  e.sample("synod_server_lock_waiters", static_cast<double>(m.lock_waiters.load()));
  e.family("synod_server_leases", "Leases the store holds.", "gauge");
  e.sample("synod_server_leases", static_cast<double>(ctx.node->read_store(
                                      [](const kv::Store& st) { return st.lease_ids().size(); })));
  if (ctx.shards != nullptr) {
    const Shards::TxnCounts& t = ctx.shards->txn_counts();
    e.family("synod_server_cross_shard_txns_total",
             "Cross-shard transactions this member coordinated, by commit protocol and outcome.",
             "counter");
    for (int p = 0; p < 2; ++p) {
      const std::string protocol = p == 0 ? "2pc" : "3pc";
      e.sample("synod_server_cross_shard_txns_total",
               {{"protocol", protocol}, {"outcome", "committed"}},
               static_cast<double>(t.committed[p].value()));
      e.sample("synod_server_cross_shard_txns_total",
               {{"protocol", protocol}, {"outcome", "aborted"}},
               static_cast<double>(t.aborted[p].value()));
    }
    e.family("synod_server_cross_shard_txns_settled_total",
             "Transactions left by a coordinator that this member's resolver settled.", "counter");
    e.sample("synod_server_cross_shard_txns_settled_total", static_cast<double>(t.settled.value()));
    e.family("synod_server_cross_shard_decisions_forgotten_total",
             "Decisions of transactions this member coordinated that went from their groups once "
             "every part was resolved.",
             "counter");
    e.sample("synod_server_cross_shard_decisions_forgotten_total",
             static_cast<double>(t.decisions_forgotten.value()));
  }
  if (grpc_metrics != nullptr) grpc_metrics->render(e);
  process_metrics(e);
  return e.take();
}

}  // namespace

HttpHandler make_http_handler(const ServerContext& ctx, const GrpcMetrics* grpc_metrics) {
  return [&ctx, grpc_metrics](const HttpRequest& req) -> HttpResponse {
    if (req.path == "/version") {
      if (req.method != "GET" && req.method != "HEAD") return method_not_allowed();
      return {200, "application/json",
              std::string("{\"etcdserver\":\"") + kApiVersion + "\",\"etcdcluster\":\"" +
                  kApiVersion + "\"}"};
    }
    if (req.path == "/health") {
      if (req.method != "GET" && req.method != "HEAD") return method_not_allowed();
      if (healthy(*ctx.node)) {
        ctx.node->metrics().health_success.add();
        return {200, "text/plain; charset=utf-8", "{\"health\":\"true\"}"};
      }
      ctx.node->metrics().health_failures.add();
      return {503, "text/plain; charset=utf-8", "{\"health\":\"false\"}\n"};
    }
    if (req.path == "/metrics") {
      if (req.method != "GET" && req.method != "HEAD") return method_not_allowed();
      return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(ctx, grpc_metrics)};
    }
    if (std::optional<HttpResponse> page = serve_dashboard(ctx, req)) return *page;
    return {404, "text/plain; charset=utf-8", "404 page not found\n"};
  };
}

}  // namespace synod::server
