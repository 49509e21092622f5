// Metrics in Prometheus's text exposition format (version 0.0.4): lock-free counters and
// histograms that any thread may update, and a writer that renders families of samples as a
// scraper (Prometheus, etcd's own tooling) reads them. Values are rendered as Go's
// strconv.FormatFloat(v, 'g', -1, 64) renders them, so Synod's output reads like etcd's.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace synod::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A histogram of observations in seconds (or any unit) with fixed upper bounds. Counts are
// kept per bucket and summed into Prometheus's cumulative buckets when rendered.
class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 24;
  // `bounds`: increasing upper bounds (at most kMaxBuckets); +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts, one per bound, then the total (the +Inf bucket).
  std::vector<uint64_t> cumulative() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::array<std::atomic<uint64_t>, kMaxBuckets + 1> counts_{};
  std::atomic<double> sum_{0};
};

// start, start * factor, ... (`count` bounds): etcd's fsync and commit histograms use
// exponential_buckets(0.001, 2, 14).
std::vector<double> exponential_buckets(double start, double factor, size_t count);

// The text format, one family at a time: family() writes HELP and TYPE, the samples follow.
class Exposition {
 public:
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  // A whole histogram family: HELP, TYPE, the _bucket, _sum and _count samples.
  void histogram(std::string_view name, std::string_view help, const Histogram& h);
  // One labelled series of a histogram family announced with family(name, help, "histogram").
  void histogram_samples(std::string_view name, const Labels& labels, const Histogram& h);
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Go's %g with the shortest representation that reads back exactly; +Inf, -Inf, NaN.
std::string format_value(double v);
// A label value with \, " and newlines escaped as the format asks.
std::string escape_label_value(std::string_view v);
// HELP text with \ and newlines escaped.
std::string escape_help(std::string_view v);

}  // namespace synod::metrics
