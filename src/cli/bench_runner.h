// synod bench: drives one workload against etcd v3 gRPC endpoints (etcd or Synod) and reports.
//
// Load comes from `clients` closed-loop clients (each keeps one request outstanding, as in etcd's
// benchmark tool) multiplexed on `client_threads` gRPC completion queues, so 64+ outstanding
// requests need no more than one or two threads. Clients are spread over `conns` connections; each
// connection holds one gRPC channel per endpoint and a client sends its successive requests to the
// endpoints in turn, like clientv3's round-robin balancer (followers forward writes to the leader).
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace synod::cli::bench {

enum class WorkloadKind { kPut, kRange, kTxnPut };

const char* workload_name(WorkloadKind kind);

struct BenchOptions {
  WorkloadKind kind = WorkloadKind::kPut;
  std::vector<std::string> endpoints;  // host:port, already stripped of http:// or https://
  bool tls = false;                    // https:// endpoints
  std::string tls_ca;                  // PEM contents; empty: the system's roots
  std::string tls_cert;                // a client certificate, or empty
  std::string tls_key;
  uint32_t clients = 1;
  uint32_t conns = 1;
  uint64_t total = 10000;
  uint32_t key_size = 8;
  uint32_t val_size = 8;
  uint64_t key_space_size = 1;
  bool sequential_keys = false;
  std::string range_key;      // range: the key (required)
  std::string range_end;      // range: optional end of [key, end)
  bool serializable = false;  // range: --consistency s
  uint32_t txn_ops = 1;
  double rate_rps = 0;  // 0: unlimited
  std::chrono::milliseconds dial_timeout{5000};
  std::chrono::milliseconds request_timeout{10000};
  uint32_t client_threads = 1;
  uint64_t seed = 1;
  bool json = false;
  bool progress = true;
  // A PBFT cluster through the BFT client (src/cli/bft_client.h): every request to every
  // member, f + 1 matching replies (2f + 1 for a serializable range, read unordered). Each
  // client is a thread of its own.
  bool bft = false;
  std::string bft_keys;  // the members' NAME.pub files
};

// Exit codes of a run.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRequestErrors = 1;  // the run completed, some requests failed
inline constexpr int kExitBadFlags = 2;
inline constexpr int kExitUnreachable = 3;  // an endpoint did not answer within dial_timeout

// Checks flag combinations; returns an empty string or a one-line error naming the problem.
std::string validate(const BenchOptions& options);

// Runs the workload: the report goes to `out`, progress and errors to `err`.
// Precondition: validate(options) is empty.
int run_bench(const BenchOptions& options, std::ostream& out, std::ostream& err);
// The same, through the BFT client (options.bft).
int run_bft_bench(const BenchOptions& options, std::ostream& out, std::ostream& err);
// What was run, for the JSON report.
nlohmann::json bench_config(const BenchOptions& options);

}  // namespace synod::cli::bench
