// synod: one binary for every role: `synod server`, `synod sim`, `synod ctl`, `synod bench`,
// `synod check`.
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "check/history_json.h"
#include "cli/bench.h"
#include "cli/check.h"
#include "cli/commit.h"
#include "cli/ctl.h"
#include "cli/keys.h"
#include "server/config.h"
#include "server/context.h"
#include "server/server.h"
#include "sim/simulation.h"
#ifdef SYNOD_BYZANTINE_TEST
#include "byzantine_member.h"
#endif

namespace {

int run_sim(synod::sim::SimOptions opts, const std::string& seeds, const std::string& history_out) {
  using synod::sim::print_summary;
  using synod::sim::run_simulation;
  if (seeds.empty()) {
    auto result = run_simulation(opts, std::cout);
    print_summary(opts, result, std::cout);
    if (!history_out.empty()) {
      std::ofstream out(history_out);
      synod::check::write_history_jsonl(result.history, out);
      if (!out) {
        std::cerr << "synod sim: cannot write " << history_out << "\n";
        return 2;
      }
    }
    return result.passed() ? 0 : 1;
  }
  // A sweep: one progress line on stderr (rewritten in place on a terminal, every tenth of the
  // sweep otherwise), the failures in full on stdout, then each failing seed's replay command.
  uint64_t first = 0;
  uint64_t last = 0;
  char dots[3] = {};
  std::istringstream in(seeds);
  if (!(in >> first) || !in.get(dots[0]) || !in.get(dots[1]) || dots[0] != '.' || dots[1] != '.' ||
      !(in >> last) || !in.eof() || last < first) {
    std::cerr << "synod sim: --seeds wants A..B with A <= B, got '" << seeds << "'\n";
    return 2;
  }
  const bool terminal = isatty(STDERR_FILENO) != 0;
  const uint64_t total = last - first + 1;
  std::vector<std::string> replays;
  for (uint64_t s = first; s <= last; ++s) {
    opts.seed = s;
    std::ostringstream log;
    auto result = run_simulation(opts, log);
    if (!result.passed()) {
      replays.push_back(synod::sim::replay_command(opts));
      if (terminal) std::cerr << "\n";
      print_summary(opts, result, std::cout);
      std::cout << std::flush;
    }
    const uint64_t done = s - first + 1;
    if (terminal || done == total || done % std::max<uint64_t>(1, total / 10) == 0) {
      std::cerr << (terminal ? "\r" : "") << "seed " << s << " (" << done << "/" << total
                << "), failures " << replays.size() << (terminal ? "" : "\n") << std::flush;
    }
  }
  if (terminal) std::cerr << "\n";
  std::cout << "swept seeds " << first << ".." << last << ": " << (total - replays.size())
            << " passed, " << replays.size() << " failed\n";
  for (const std::string& r : replays) std::cout << "  replay: " << r << "\n";
  return replays.empty() ? 0 : 1;
}

void add_server_flags(CLI::App& cmd, synod::server::ServerConfig& c, std::string& config_file) {
  cmd.add_option("--config-file", config_file, "file of 'key: value' lines with the flags below");
  cmd.add_option("--name", c.name, "human-readable name of this member");
  cmd.add_option("--data-dir", c.data_dir,
                 "directory of the WAL and the store (default <name>.synod)");
  cmd.add_option("--listen-client-urls", c.listen_client_urls, "URLs to serve clients on");
  cmd.add_option("--advertise-client-urls", c.advertise_client_urls,
                 "client URLs advertised to the cluster");
  cmd.add_option("--listen-peer-urls", c.listen_peer_urls, "URLs to serve peers on");
  cmd.add_option("--listen-metrics-urls", c.listen_metrics_urls,
                 "more URLs serving /metrics and /health over HTTP (the client URLs do too)");
  cmd.add_option("--metrics", c.metrics,
                 "'basic' or 'extensive' (adds per-RPC gRPC counters, at a CPU cost per request)");
  cmd.add_option("--cert-file", c.cert_file, "TLS certificate for https:// client URLs (PEM)");
  cmd.add_option("--key-file", c.key_file, "its private key (PEM)");
  cmd.add_option("--trusted-ca-file", c.trusted_ca_file,
                 "CA that signs the client certificates --client-cert-auth accepts");
  cmd.add_flag("--client-cert-auth", c.client_cert_auth,
               "refuse clients without a certificate signed by --trusted-ca-file");
  cmd.add_option("--peer-cert-file", c.peer_cert_file,
                 "TLS certificate for https:// peer URLs, also shown to peers (PEM)");
  cmd.add_option("--peer-key-file", c.peer_key_file, "its private key (PEM)");
  cmd.add_option("--peer-trusted-ca-file", c.peer_trusted_ca_file,
                 "CA that signs the members' peer certificates");
  cmd.add_flag("--peer-client-cert-auth", c.peer_client_cert_auth,
               "refuse peers without a certificate signed by --peer-trusted-ca-file");
  cmd.add_option("--max-request-bytes", c.max_request_bytes,
                 "largest client request accepted, in bytes (default 1572864)");
  cmd.add_option("--max-txn-ops", c.max_txn_ops,
                 "most operations in one txn, nested ones included (default 128)");
  cmd.add_option("--auth-token", c.auth_token,
                 "auth tokens: 'simple' (the default) or "
                 "'jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256|PS256|ES256|...[,ttl=5m]'");
  cmd.add_option("--auth-token-ttl", c.auth_token_ttl_s,
                 "seconds an unused auth token stays valid (default 300)");
  cmd.add_option("--initial-advertise-peer-urls", c.initial_advertise_peer_urls,
                 "peer URLs advertised to the cluster");
  cmd.add_option("--initial-cluster", c.initial_cluster,
                 "founding members: name=peer-url,... (default <name>=<advertised peer URL>)");
  cmd.add_option("--initial-cluster-state", c.initial_cluster_state,
                 "'new' to found a cluster, 'existing' to join one");
  cmd.add_option("--initial-cluster-token", c.initial_cluster_token,
                 "cluster token, distinguishes clusters started from the same flags");
  cmd.add_option("--heartbeat-interval", c.heartbeat_interval_ms, "heartbeat interval in ms");
  cmd.add_option("--election-timeout", c.election_timeout_ms, "election timeout in ms");
  cmd.add_option("--snapshot-count", c.snapshot_count,
                 "applied entries between Raft log compactions");
  cmd.add_option("--pbft-state-interval", c.pbft_state_interval,
                 "PBFT: applied entries between retained, digested states (a multiple of 128, "
                 "equal on every member)");
  cmd.add_option("--log-level", c.log_level, "debug, info, warn or error");
  cmd.add_option("--engine", c.engine,
                 "consensus engine: raft (default) or multipaxos; fixed when the data dir is made");
  cmd.add_option("--shards", c.shards,
                 "split the keyspace into this many shards, each its own replication group "
                 "(default 0: one group); fixed when the data dir is made");
  cmd.add_option("--replication", c.replication,
                 "with --shards: members replicating each shard (default 3)");
  cmd.add_option("--commit-protocol", c.commit_protocol,
                 "with --shards: cross-shard transactions this member coordinates commit by 2pc "
                 "(default) or 3pc");
}

int run_server_command(CLI::App& cmd, synod::server::ServerConfig flags,
                       const std::string& config_file) {
  std::string error;
  synod::server::ServerConfig config;
  if (!config_file.empty()) {
    if (!synod::server::load_config_file(config_file, &config, &error)) {
      std::cerr << "synod server: " << error << "\n";
      return 2;
    }
    // Flags given on the command line override the file.
    auto given = [&](const char* name) { return cmd.count(name) > 0; };
    if (given("--name")) config.name = flags.name;
    if (given("--data-dir")) config.data_dir = flags.data_dir;
    if (given("--listen-client-urls")) config.listen_client_urls = flags.listen_client_urls;
    if (given("--advertise-client-urls"))
      config.advertise_client_urls = flags.advertise_client_urls;
    if (given("--listen-peer-urls")) config.listen_peer_urls = flags.listen_peer_urls;
    if (given("--listen-metrics-urls")) config.listen_metrics_urls = flags.listen_metrics_urls;
    if (given("--metrics")) config.metrics = flags.metrics;
    if (given("--auth-token")) config.auth_token = flags.auth_token;
    if (given("--max-request-bytes")) config.max_request_bytes = flags.max_request_bytes;
    if (given("--max-txn-ops")) config.max_txn_ops = flags.max_txn_ops;
    if (given("--cert-file")) config.cert_file = flags.cert_file;
    if (given("--key-file")) config.key_file = flags.key_file;
    if (given("--trusted-ca-file")) config.trusted_ca_file = flags.trusted_ca_file;
    if (given("--client-cert-auth")) config.client_cert_auth = flags.client_cert_auth;
    if (given("--peer-cert-file")) config.peer_cert_file = flags.peer_cert_file;
    if (given("--peer-key-file")) config.peer_key_file = flags.peer_key_file;
    if (given("--peer-trusted-ca-file")) config.peer_trusted_ca_file = flags.peer_trusted_ca_file;
    if (given("--peer-client-cert-auth"))
      config.peer_client_cert_auth = flags.peer_client_cert_auth;
    if (given("--auth-token-ttl")) config.auth_token_ttl_s = flags.auth_token_ttl_s;
    if (given("--initial-advertise-peer-urls"))
      config.initial_advertise_peer_urls = flags.initial_advertise_peer_urls;
    if (given("--initial-cluster")) config.initial_cluster = flags.initial_cluster;
    if (given("--initial-cluster-state"))
      config.initial_cluster_state = flags.initial_cluster_state;
    if (given("--initial-cluster-token"))
      config.initial_cluster_token = flags.initial_cluster_token;
    if (given("--heartbeat-interval")) config.heartbeat_interval_ms = flags.heartbeat_interval_ms;
    if (given("--election-timeout")) config.election_timeout_ms = flags.election_timeout_ms;
    if (given("--snapshot-count")) config.snapshot_count = flags.snapshot_count;
    if (given("--pbft-state-interval")) config.pbft_state_interval = flags.pbft_state_interval;
    if (given("--log-level")) config.log_level = flags.log_level;
    if (given("--engine")) config.engine = flags.engine;
    if (given("--shards")) config.shards = flags.shards;
    if (given("--replication")) config.replication = flags.replication;
    if (given("--commit-protocol")) config.commit_protocol = flags.commit_protocol;
  } else {
    config = flags;
  }
  auto resolved = synod::server::resolve(config, &error);
  if (!resolved) {
    std::cerr << "synod server: " << error << "\n";
    return 2;
  }
  auto level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    std::cerr << "synod server: --log-level: unknown level '" << config.log_level << "'\n";
    return 2;
  }
  spdlog::set_level(level);
  spdlog::set_pattern("{\"ts\":\"%Y-%m-%dT%H:%M:%S.%fZ\",\"level\":\"%l\",\"msg\":\"%v\"}",
                      spdlog::pattern_time_type::utc);
  const int code = synod::server::run_server(*resolved);
  // Everything the member owns is stopped and durable by now (the WAL fsyncs every append, the
  // store is flushed at stop). Exit without static destructors: gRPC 1.51's callback threads
  // may still be finishing, and destroying the statics they use under them crashed at exit (a
  // double free in grpc_cq_internal_unref under ASan, 2 in ~80 runs of transport_tests).
  spdlog::shutdown();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace

#ifndef SYNOD_VERSION
#define SYNOD_VERSION "unknown"
#endif
#ifndef SYNOD_GIT_SHA
#define SYNOD_GIT_SHA ""
#endif

// What `synod --version` prints.
std::string version_text() {
  std::string text = std::string("synod version ") + SYNOD_VERSION;
  if (std::string_view(SYNOD_GIT_SHA).size() > 0)
    text += std::string(" (git ") + SYNOD_GIT_SHA + ")";
  text += std::string("\netcd API version: ") + synod::server::kApiVersion;
  text += "\nengines: raft, multipaxos, pbft";
  return text;
}

int main(int argc, char** argv) {
  CLI::App app{"Synod: distributed coordination and storage"};
  app.set_version_flag("--version", version_text());
  app.require_subcommand(1);

  synod::sim::SimOptions opts;
  std::string faults = synod::sim::kSwarm;
  std::string seeds;
  std::vector<std::string> bugs;
  std::string workload = "register";
  std::string history_out;
  bool lease_reads = false;
  std::string sim_engine = "raft";
  CLI::App* sim = app.add_subcommand("sim", "run the deterministic cluster simulator");
  sim->add_option("--engine", sim_engine, "consensus engine: raft, multipaxos or pbft");
  sim->add_option("--byzantine", opts.byzantine,
                  "with --faults byzantine: Byzantine replicas, and the f the replicas tolerate")
      ->check(CLI::Range(1, 6));
  std::string adversary;
  sim->add_option("--adversary", adversary,
                  "duel: hold every leader's traffic until a rival preempts it (FLP), then heal");
  sim->add_option("--duel-rounds", opts.duel_rounds, "rounds the duel plays before it stops")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000}));
  sim->add_option("--seed", opts.seed, "seed of the run (replays it exactly)");
  sim->add_option("--seeds", seeds, "sweep a range of seeds, A..B");
  sim->add_option("--nodes", opts.nodes, "cluster size (hosts, with --shards)")
      ->check(CLI::Range(3, synod::sim::kMaxShardedHosts));
  sim->add_option("--shards", opts.shards,
                  "shard the keys over this many Raft groups (and a metadata group), placed on "
                  "the nodes by a consistent-hash ring")
      ->check(CLI::Range(0, 4096));
  sim->add_option("--replication", opts.replication, "with --shards: replicas per group")
      ->check(CLI::Range(1, 7));
  std::string commit_protocol = "2pc";
  sim->add_option("--commit-protocol", commit_protocol,
                  "bank workload: cross-shard transactions by 2pc (default) or 3pc")
      ->check(CLI::IsMember({"2pc", "3pc"}));
  CLI::Option* keys_option =
      sim->add_option("--keys", opts.keys,
                      "keys the register workload uses, or the bank's accounts (default 3; 16 "
                      "with --shards)")
          ->check(CLI::Range(1, 100000));
  sim->add_option("--faults", faults,
                  "comma list: partition,crash,pause,loss,dup,reorder,latency,drift,topology,"
                  "membership,transfer, or all / none; byzantine (PBFT); swarm (the default): each "
                  "seed draws its own mix, nemesis intensities and BUGGIFY sites");
  sim->add_option("--ops", opts.ops, "client operations in the fault phase")
      ->check(CLI::Range(1, 1000000));
  sim->add_option("--clients", opts.clients, "concurrent clients")->check(CLI::Range(1, 64));
  sim->add_option("--workload", workload,
                  "what clients run: register (get/put/cas, checked for linearizability), lock "
                  "(fenced writes) or semaphore");
  sim->add_option("--permits", opts.permits, "semaphore workload: permits")
      ->check(CLI::Range(1, 16));
  sim->add_option("--watchers", opts.watchers,
                  "watch streams held open and resumed across faults, then checked")
      ->check(CLI::Range(0, 64));
  sim->add_option("--bug", bugs, "plant a known bug (tests only)");
  sim->add_option(
      "--history-out", history_out,
      "write the register workload's client history here (JSON lines, for synod check)");
  sim->add_option("--election-crash", opts.election_crash_probability,
                  "with crash faults, chance of killing a node right after each election")
      ->check(CLI::Range(0.0, 1.0));
  sim->add_option("--election-crash-delay-us", opts.election_crash_max_delay_us,
                  "the election crash lands up to this long after the election")
      ->check(CLI::Range(0, 10'000'000));
  sim->add_option("--election-isolate", opts.election_isolate_probability,
                  "with partition faults, chance of cutting a new leader off right after its "
                  "election")
      ->check(CLI::Range(0.0, 1.0));
  sim->add_option("--fault-gap-us", opts.fault_gap_max_us,
                  "faults are injected every 100 ms to this long")
      ->check(CLI::Range(100'000, 100'000'000));
  sim->add_flag("--buggify", opts.buggify,
                "enable, at random, the fault sites of the simulated disk and network");
  sim->add_option("--window", opts.max_inflight_msgs,
                  "replication window in messages (default: chosen per seed)")
      ->check(CLI::Range(0, 1024));
  sim->add_flag("--lease-reads", lease_reads, "serve reads from the leader lease");
  sim->add_flag("--verbose", opts.verbose, "print elections, faults and heals");
  sim->add_flag("--trace", opts.trace, "print every message and client event");

  auto run_bench = synod::cli::add_bench_command(app);
  auto run_ctl = synod::cli::add_ctl_command(app);
  auto run_check = synod::cli::add_check_command(app);
  auto run_keys = synod::cli::add_keys_command(app);
  auto run_commit = synod::cli::add_commit_command(app);
  synod::server::ServerConfig server_config;
  std::string config_file;
  CLI::App* server = app.add_subcommand("server", "run a cluster member (etcd-compatible flags)");
  add_server_flags(*server, server_config, config_file);
#ifdef SYNOD_BYZANTINE_TEST
  std::string byzantine_modes;
  server->add_option("--byzantine-test", byzantine_modes,
                     "test build only: run as a Byzantine PBFT member (equivocate, lie, alter, "
                     "replay, silent, all)");
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "synod: " << e.what() << "\n";
    return 2;
  }
  if (app.got_subcommand("bench")) return run_bench();
  if (app.got_subcommand("ctl")) return run_ctl();
  if (app.got_subcommand("check")) return run_check();
  if (app.got_subcommand("keys")) return run_keys();
  if (app.got_subcommand("commit")) return run_commit();
#ifdef SYNOD_BYZANTINE_TEST
  if (server->parsed() && !byzantine_modes.empty()) {
    const std::string error = synod::fault::install_byzantine_member(byzantine_modes);
    if (!error.empty()) {
      std::cerr << "synod server: " << error << "\n";
      return 2;
    }
  }
#endif
  if (server->parsed()) return run_server_command(*server, server_config, config_file);
  if (sim->parsed()) {
    std::string error;
    opts.swarm = faults == synod::sim::kSwarm;
    if (auto engine = synod::replica::parse_engine(sim_engine)) {
      opts.engine = *engine;
    } else {
      std::cerr << "synod sim: unknown engine '" << sim_engine
                << "' (known: raft, multipaxos, pbft)\n";
      return 2;
    }
    if (adversary == "duel") {
      // The duel is the only adversary: no other faults.
      opts.duel = true;
      opts.swarm = false;
      faults = "none";
    } else if (!adversary.empty()) {
      std::cerr << "synod sim: unknown adversary '" << adversary << "' (known: duel)\n";
      return 2;
    }
    if (!synod::sim::parse_faults(faults, opts.faults, error)) {
      std::cerr << "synod sim: " << error << "\n";
      return 2;
    }
    if (!synod::sim::parse_workload(workload, opts.workload, error)) {
      std::cerr << "synod sim: " << error << "\n";
      return 2;
    }
    for (const std::string& b : bugs) {
      if (!synod::sim::parse_bug(b, opts, error)) {
        std::cerr << "synod sim: " << error << "\n";
        return 2;
      }
    }
    if (lease_reads) opts.read_mode = synod::raft::ReadMode::kLease;
    opts.three_phase = commit_protocol == "3pc";
    if (opts.trace) opts.verbose = true;
    if (opts.shards > 0 && keys_option->count() == 0) opts.keys = 16;
    if (opts.shards > 0 && opts.faults.contains(synod::sim::Fault::kMembership) &&
        faults.find("all") != std::string::npos) {
      // Sharded, "all" moves replicas by rebalancing instead of the membership cycle.
      opts.faults.erase(synod::sim::Fault::kMembership);
      opts.faults.insert(synod::sim::Fault::kRebalance);
    }
    if (!synod::sim::check_options(opts, error)) {
      std::cerr << "synod sim: " << error << "\n";
      return 2;
    }
    return run_sim(opts, seeds, history_out);
  }
  return 2;
}
