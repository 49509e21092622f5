#include "cli/bench_stats.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <iomanip>

namespace synod::cli::bench {

namespace {

constexpr double kNsPerMs = 1e6;

// Nearest-rank percentile of sorted latencies, in ms. `sorted` must not be empty.
double percentile_ms(const std::vector<uint64_t>& sorted, double percent) {
  assert(!sorted.empty());
  assert(percent > 0 && percent <= 100);
  auto rank = static_cast<size_t>(std::ceil(percent / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / kNsPerMs;
}

// Rounds to 3 decimals so the JSON carries what the text shows.
double round3(double value) {
  return std::round(value * 1000.0) / 1000.0;
}

}  // namespace

void Tally::reserve(uint64_t requests) {
  latencies_ns_.reserve(requests);
}

void Tally::record_ok(std::chrono::nanoseconds latency) {
  assert(latency.count() >= 0);
  latencies_ns_.push_back(static_cast<uint64_t>(latency.count()));
}

void Tally::record_error(int status_code, std::string_view message) {
  ++errors_;
  std::string key = status_code_name(status_code) + ": " + std::string(message);
  auto it = error_counts_.find(key);
  if (it != error_counts_.end()) {
    ++it->second;
  } else if (error_counts_.size() < kMaxErrorKinds) {
    error_counts_.emplace(std::move(key), 1);
  } else {
    ++error_counts_["(other errors)"];
  }
}

void Tally::merge(Tally&& other) {
  latencies_ns_.insert(latencies_ns_.end(), other.latencies_ns_.begin(), other.latencies_ns_.end());
  for (auto& [text, count] : other.error_counts_) error_counts_[text] += count;
  errors_ += other.errors_;
  other = Tally{};
}

std::vector<uint64_t>& Tally::sorted_latencies_ns() {
  std::sort(latencies_ns_.begin(), latencies_ns_.end());
  return latencies_ns_;
}

Summary summarize(std::string workload, Tally& tally, std::chrono::nanoseconds duration) {
  Summary s;
  s.workload = std::move(workload);
  s.ok = tally.ok();
  s.errors = tally.errors();
  s.requests = s.ok + s.errors;
  s.duration_s = std::chrono::duration<double>(duration).count();
  s.throughput_rps = s.duration_s > 0 ? static_cast<double>(s.ok) / s.duration_s : 0;
  const std::vector<uint64_t>& sorted = tally.sorted_latencies_ns();
  if (!sorted.empty()) {
    long double sum_ns = 0;
    for (uint64_t ns : sorted) sum_ns += static_cast<long double>(ns);
    s.latency_ms_avg =
        static_cast<double>(sum_ns / static_cast<long double>(sorted.size())) / kNsPerMs;
    s.latency_ms_p50 = percentile_ms(sorted, 50);
    s.latency_ms_p90 = percentile_ms(sorted, 90);
    s.latency_ms_p99 = percentile_ms(sorted, 99);
    s.latency_ms_p999 = percentile_ms(sorted, 99.9);
    s.latency_ms_max = static_cast<double>(sorted.back()) / kNsPerMs;
  }
  s.error_counts.assign(tally.error_counts().begin(), tally.error_counts().end());
  std::stable_sort(s.error_counts.begin(), s.error_counts.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return s;
}

std::string status_code_name(int status_code) {
  static constexpr std::array<const char*, 17> kNames = {"OK",
                                                         "CANCELLED",
                                                         "UNKNOWN",
                                                         "INVALID_ARGUMENT",
                                                         "DEADLINE_EXCEEDED",
                                                         "NOT_FOUND",
                                                         "ALREADY_EXISTS",
                                                         "PERMISSION_DENIED",
                                                         "RESOURCE_EXHAUSTED",
                                                         "FAILED_PRECONDITION",
                                                         "ABORTED",
                                                         "OUT_OF_RANGE",
                                                         "UNIMPLEMENTED",
                                                         "INTERNAL",
                                                         "UNAVAILABLE",
                                                         "DATA_LOSS",
                                                         "UNAUTHENTICATED"};
  if (status_code >= 0 && static_cast<size_t>(status_code) < kNames.size()) {
    return kNames[static_cast<size_t>(status_code)];
  }
  return "CODE_" + std::to_string(status_code);
}

void print_text(const Summary& s, std::ostream& out) {
  std::ios_base::fmtflags saved = out.flags();
  out << std::fixed << std::setprecision(3);
  out << "Summary (" << s.workload << "):\n"
      << "  total:      " << s.requests << " requests (" << s.ok << " ok, " << s.errors
      << " errors)\n"
      << "  duration:   " << s.duration_s << " s\n"
      << "  throughput: " << std::setprecision(1) << s.throughput_rps << " req/s\n"
      << std::setprecision(3) << "  latency ms: avg " << s.latency_ms_avg << "  p50 "
      << s.latency_ms_p50 << "  p90 " << s.latency_ms_p90 << "  p99 " << s.latency_ms_p99
      << "  p99.9 " << s.latency_ms_p999 << "  max " << s.latency_ms_max << "\n";
  if (!s.error_counts.empty()) {
    out << "Errors:\n";
    for (const auto& [text, count] : s.error_counts) out << "  " << count << "x " << text << "\n";
  }
  out.flags(saved);
}

void print_json(const Summary& s, const nlohmann::json& config, std::ostream& out) {
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [text, count] : s.error_counts) errors[text] = count;
  nlohmann::json j = {
      {"workload", s.workload},
      {"requests", s.requests},
      {"ok", s.ok},
      {"errors", s.errors},
      {"duration_s", round3(s.duration_s)},
      {"throughput_rps", std::round(s.throughput_rps * 10.0) / 10.0},
      {"latency_ms",
       {{"avg", round3(s.latency_ms_avg)},
        {"p50", round3(s.latency_ms_p50)},
        {"p90", round3(s.latency_ms_p90)},
        {"p99", round3(s.latency_ms_p99)},
        {"p99.9", round3(s.latency_ms_p999)},
        {"max", round3(s.latency_ms_max)}}},
      {"error_counts", errors},
      {"config", config},
  };
  // Keys and error texts may hold arbitrary bytes: replace invalid UTF-8 rather than throw.
  out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace synod::cli::bench
