// The Prometheus text format as etcd's Go client writes it.
#include "base/metrics.h"

#include <gtest/gtest.h>

namespace synod::metrics {
namespace {

TEST(MetricsFormat, ValuesReadAsGoWritesThem) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(1), "1");
  EXPECT_EQ(format_value(-1), "-1");
  EXPECT_EQ(format_value(20480), "20480");
  EXPECT_EQ(format_value(0.001), "0.001");
  EXPECT_EQ(format_value(0.004052699), "0.004052699");
  EXPECT_EQ(format_value(8.8331e-05), "8.8331e-05");
  EXPECT_EQ(format_value(1048576), "1.048576e+06");
  EXPECT_EQ(format_value(123456), "123456");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(2.5), "2.5");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_value(0.0 / 0.0), "NaN");
}

TEST(MetricsFormat, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_help("x\\y\nz\""), "x\\\\y\\nz\"");
}

TEST(MetricsFormat, FamiliesAndSamples) {
  Exposition e;
  e.family("etcd_server_has_leader", "Whether or not a leader exists.", "gauge");
  e.sample("etcd_server_has_leader", 1);
  e.family("etcd_server_id", "Server ID.", "gauge");
  e.sample("etcd_server_id", {{"server_id", "8e9e05c52164694d"}}, 1);
  EXPECT_EQ(e.take(),
            "# HELP etcd_server_has_leader Whether or not a leader exists.\n"
            "# TYPE etcd_server_has_leader gauge\n"
            "etcd_server_has_leader 1\n"
            "# HELP etcd_server_id Server ID.\n"
            "# TYPE etcd_server_id gauge\n"
            "etcd_server_id{server_id=\"8e9e05c52164694d\"} 1\n");
}

TEST(MetricsHistogram, BucketsAreCumulativeWithSumAndCount) {
  Histogram h(exponential_buckets(0.001, 2, 3));  // 0.001 0.002 0.004
  h.observe(0.0005);
  h.observe(0.001);  // a bound is inclusive
  h.observe(0.003);
  h.observe(10);
  Exposition e;
  e.histogram("d", "A duration.", h);
  EXPECT_EQ(e.take(),
            "# HELP d A duration.\n"
            "# TYPE d histogram\n"
            "d_bucket{le=\"0.001\"} 2\n"
            "d_bucket{le=\"0.002\"} 2\n"
            "d_bucket{le=\"0.004\"} 3\n"
            "d_bucket{le=\"+Inf\"} 4\n"
            "d_sum 10.0045\n"
            "d_count 4\n");
}

TEST(MetricsHistogram, LabelledSeriesPutTheirLabelsBeforeLe) {
  Histogram h(exponential_buckets(0.001, 2, 1));
  h.observe(0.0005);
  Exposition e;
  e.family("rtt", "Round trips.", "histogram");
  e.histogram_samples("rtt", {{"To", "a1"}}, h);
  EXPECT_EQ(e.take(),
            "# HELP rtt Round trips.\n"
            "# TYPE rtt histogram\n"
            "rtt_bucket{To=\"a1\",le=\"0.001\"} 1\n"
            "rtt_bucket{To=\"a1\",le=\"+Inf\"} 1\n"
            "rtt_sum{To=\"a1\"} 0.0005\n"
            "rtt_count{To=\"a1\"} 1\n");
}

TEST(MetricsCounter, Adds) {
  Counter c;
  c.add();
  c.add(41);
  EXPECT_EQ(c.value(), 42u);
}

}  // namespace
}  // namespace synod::metrics
