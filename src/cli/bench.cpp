#include "cli/bench.h"

#include <charconv>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/bench_runner.h"
#include "server/tls.h"

namespace synod::cli {

namespace {

using bench::BenchOptions;
using bench::WorkloadKind;

// The flag values as typed, before they are checked and turned into BenchOptions.
struct BenchFlags {
  BenchOptions options;
  std::string endpoints = "127.0.0.1:2379";
  std::string consistency = "l";
  std::string dial_timeout = "5s";
  std::string request_timeout = "10s";
  std::string cacert;  // etcdctl's TLS flags: PEM files
  std::string cert;
  std::string key;
  bool no_progress = false;
  CLI::App* put = nullptr;
  CLI::App* range = nullptr;
  CLI::App* txn_put = nullptr;
};

// "5s", "500ms", "2m", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  double number = 0;
  auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || number < 0) return std::nullopt;
  std::string_view unit(rest, static_cast<size_t>(text.data() + text.size() - rest));
  double ms_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(number * ms_per_unit));
}

// Splits "a:1,http://b:2" into host:port endpoints, noting whether they are https:// ones; an
// empty string on success, else the error.
std::string parse_endpoints(std::string_view list, std::vector<std::string>& out, bool* https) {
  out.clear();
  size_t secure = 0;
  size_t start = 0;
  while (start <= list.size() && out.size() < 1000) {
    size_t comma = std::min(list.find(',', start), list.size());
    std::string_view endpoint = list.substr(start, comma - start);
    start = comma + 1;
    if (endpoint.empty()) continue;
    if (endpoint.starts_with("https://")) {
      endpoint.remove_prefix(8);
      ++secure;
    } else if (endpoint.starts_with("http://")) {
      endpoint.remove_prefix(7);
    }
    if (endpoint.ends_with("/")) endpoint.remove_suffix(1);
    size_t colon = endpoint.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == endpoint.size()) {
      return "--endpoints: '" + std::string(endpoint) + "' is not host:port";
    }
    out.emplace_back(endpoint);
  }
  if (out.empty()) return "--endpoints: no endpoint given";
  if (secure != 0 && secure != out.size()) return "--endpoints: all https:// or none";
  *https = secure != 0;
  return "";
}

// The contents of a PEM file a TLS flag names ("" when the flag was not given).
std::string read_pem(const char* flag, const std::string& path, std::string* error) {
  if (path.empty()) return "";
  return server::read_pem_file(path, flag, error).value_or("");
}

void add_common_flags(CLI::App& bench, BenchFlags& f) {
  BenchOptions& o = f.options;
  bench
      .add_option("--endpoints", f.endpoints,
                  "comma list of host:port, http://host:port or https://host:port")
      ->capture_default_str();
  bench.add_option("--cacert", f.cacert, "with https:// endpoints: the CA certificate (PEM)");
  bench.add_option("--cert", f.cert, "with https:// endpoints: a client certificate (PEM)");
  bench.add_option("--key", f.key, "with https:// endpoints: the client certificate's key (PEM)");
  bench.add_option("--clients", o.clients, "concurrent closed-loop clients")->capture_default_str();
  bench.add_option("--conns", o.conns, "gRPC connections (per endpoint); clients are spread")
      ->capture_default_str();
  bench.add_option("--total", o.total, "requests in the run")->capture_default_str();
  bench.add_flag("--bft", o.bft,
                 "a PBFT cluster through the BFT client (every member asked, f + 1 matching "
                 "MAC'd replies; a serializable range is read unordered with 2f + 1)");
  bench.add_option("--bft-keys", o.bft_keys,
                   "with --bft: the directory of the members' NAME.pub files (synod keys new)");
  bench.add_option("--rate", o.rate_rps, "maximum requests per second (0: unlimited)")
      ->capture_default_str();
  bench
      .add_option("--dial-timeout", f.dial_timeout,
                  "give up when an endpoint does not answer within this (5s, 500ms)")
      ->capture_default_str();
  bench.add_option("--request-timeout", f.request_timeout, "deadline of each request")
      ->capture_default_str();
  bench
      .add_option("--client-threads", o.client_threads,
                  "threads driving the clients (each a gRPC completion queue)")
      ->capture_default_str();
  bench.add_option("--seed", o.seed, "seed of the key choice and the value")->capture_default_str();
  bench.add_flag("--json", o.json, "print the report as one JSON object");
  bench.add_flag("--no-progress", f.no_progress, "no progress lines on stderr");
}

void add_key_flags(CLI::App& sub, BenchOptions& o) {
  sub.add_option("--key-size", o.key_size, "key size in bytes")->capture_default_str();
  sub.add_option("--val-size", o.val_size, "value size in bytes")->capture_default_str();
  sub.add_option("--key-space-size", o.key_space_size, "distinct keys written")
      ->capture_default_str();
  sub.add_flag("--sequential-keys", o.sequential_keys,
               "write keys 0, 1, 2, ... (mod key space) instead of random ones");
}

void add_subcommands(CLI::App& bench, BenchFlags& f) {
  BenchOptions& o = f.options;
  f.put = bench.add_subcommand("put", "benchmark puts");
  add_key_flags(*f.put, o);

  f.range = bench.add_subcommand("range", "benchmark reads of one key or range");
  f.range->add_option("key", o.range_key, "the key to read")->required();
  f.range->add_option("end", o.range_end, "optional end of the range [key, end)");
  f.range->add_option("--consistency", f.consistency, "l: linearizable, s: serializable")
      ->check(CLI::IsMember({"l", "s"}))
      ->capture_default_str();

  f.txn_put = bench.add_subcommand("txn-put", "benchmark txns of puts");
  add_key_flags(*f.txn_put, o);
  f.txn_put->add_option("--txn-ops", o.txn_ops, "puts per txn")->capture_default_str();
}

// Turns the typed flags into options; an empty string on success, else the error.
std::string finish_options(BenchFlags& f) {
  BenchOptions& o = f.options;
  if (f.put->parsed()) o.kind = WorkloadKind::kPut;
  if (f.range->parsed()) o.kind = WorkloadKind::kRange;
  if (f.txn_put->parsed()) o.kind = WorkloadKind::kTxnPut;
  o.serializable = f.consistency == "s";
  o.progress = !f.no_progress;
  std::string error = parse_endpoints(f.endpoints, o.endpoints, &o.tls);
  if (!error.empty()) return error;
  o.tls_ca = read_pem("--cacert", f.cacert, &error);
  o.tls_cert = read_pem("--cert", f.cert, &error);
  o.tls_key = read_pem("--key", f.key, &error);
  if (!error.empty()) return error;
  if (!o.tls && !(f.cacert.empty() && f.cert.empty() && f.key.empty())) {
    return "--cacert, --cert and --key need https:// endpoints";
  }
  if (f.cert.empty() != f.key.empty()) return "--cert and --key go together";
  auto dial = parse_duration(f.dial_timeout);
  auto request = parse_duration(f.request_timeout);
  if (!dial || dial->count() <= 0) return "--dial-timeout: want a duration like 5s or 500ms";
  if (!request || request->count() <= 0) {
    return "--request-timeout: want a duration like 10s or 500ms";
  }
  o.dial_timeout = *dial;
  o.request_timeout = *request;
  return bench::validate(o);
}

}  // namespace

std::function<int()> add_bench_command(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* bench =
      app.add_subcommand("bench", "load generator for the etcd v3 API (etcd or Synod)");
  bench->require_subcommand(1);
  add_common_flags(*bench, *flags);
  add_subcommands(*bench, *flags);
  // Common flags may follow the subcommand too, as with etcd's benchmark.
  for (CLI::App* sub : {flags->put, flags->range, flags->txn_put}) sub->fallthrough();
  return [flags]() {
    std::string error = finish_options(*flags);
    if (!error.empty()) {
      std::cerr << "synod bench: " << error << "\n";
      return bench::kExitBadFlags;
    }
    return bench::run_bench(flags->options, std::cout, std::cerr);
  };
}

}  // namespace synod::cli
