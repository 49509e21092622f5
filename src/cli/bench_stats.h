// synod bench: what one run measured, and how it is reported (text or one JSON object).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace synod::cli::bench {

// Outcomes gathered by one client thread: the latency of every successful request, and failures
// counted by "STATUS_CODE: message". Not thread-safe; each thread owns one and they are merged
// once the threads have stopped.
class Tally {
 public:
  // Distinct error texts kept; the rest are counted under one "other errors" entry.
  static constexpr size_t kMaxErrorKinds = 32;

  void reserve(uint64_t requests);
  void record_ok(std::chrono::nanoseconds latency);
  void record_error(int status_code, std::string_view message);
  void merge(Tally&& other);

  uint64_t ok() const { return latencies_ns_.size(); }
  uint64_t errors() const { return errors_; }
  // Sorts the latencies in place (percentiles need them sorted).
  std::vector<uint64_t>& sorted_latencies_ns();
  const std::map<std::string, uint64_t>& error_counts() const { return error_counts_; }

 private:
  std::vector<uint64_t> latencies_ns_;
  std::map<std::string, uint64_t> error_counts_;
  uint64_t errors_ = 0;
};

struct Summary {
  std::string workload;
  uint64_t requests = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  double duration_s = 0;
  double throughput_rps = 0;  // successful requests per second of the whole run
  double latency_ms_avg = 0;
  double latency_ms_p50 = 0;
  double latency_ms_p90 = 0;
  double latency_ms_p99 = 0;
  double latency_ms_p999 = 0;
  double latency_ms_max = 0;
  std::vector<std::pair<std::string, uint64_t>> error_counts;  // most frequent first
};

// Latency statistics cover successful requests only, as in etcd's benchmark.
Summary summarize(std::string workload, Tally& tally, std::chrono::nanoseconds duration);

// The name of a grpc::StatusCode ("UNAVAILABLE"), or "CODE_<n>" for an unknown one.
std::string status_code_name(int status_code);

void print_text(const Summary& summary, std::ostream& out);
// One JSON object on one line: the summary plus `config` (what was run) under "config".
void print_json(const Summary& summary, const nlohmann::json& config, std::ostream& out);

}  // namespace synod::cli::bench
