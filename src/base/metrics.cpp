#include "base/metrics.h"

#include <charconv>
#include <cmath>

#include "base/assert.h"

namespace synod::metrics {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  SYNOD_ASSERT(bounds_.size() <= kMaxBuckets);
  for (size_t i = 1; i < bounds_.size(); ++i) SYNOD_ASSERT(bounds_[i - 1] < bounds_[i]);
}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative() const {
  std::vector<uint64_t> out;
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out.push_back(total);
  }
  return out;
}

std::vector<double> exponential_buckets(double start, double factor, size_t count) {
  std::vector<double> out;
  double b = start;
  for (size_t i = 0; i < count; ++i) {
    out.push_back(b);
    b *= factor;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Go's 'g' with precision -1: the shortest digits that read back exactly, in %e form when
  // the exponent is < -4 or >= 6, else in %f form.
  char digits[32];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v, std::chars_format::scientific);
  SYNOD_ASSERT(ec == std::errc());
  const std::string sci(digits, end);
  const size_t e = sci.find('e');
  const int exponent = std::stoi(sci.substr(e + 1));
  std::string mantissa = sci.substr(0, e);
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string ds;  // the significant digits
  for (char c : mantissa) {
    if (c != '.') ds += c;
  }
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 6) {
    out += ds.substr(0, 1);
    if (ds.size() > 1) out += "." + ds.substr(1);
    out += 'e';
    out += exponent < 0 ? '-' : '+';
    const int a = std::abs(exponent);
    if (a < 10) out += '0';
    out += std::to_string(a);
    return out;
  }
  if (exponent < 0) {
    out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + ds;
  } else if (static_cast<size_t>(exponent) + 1 >= ds.size()) {
    out += ds + std::string(static_cast<size_t>(exponent) + 1 - ds.size(), '0');
  } else {
    out += ds.substr(0, static_cast<size_t>(exponent) + 1) + "." +
           ds.substr(static_cast<size_t>(exponent) + 1);
  }
  return out;
}

namespace {

// \ and newlines escaped, and " too in label values.
std::string escape(std::string_view v, bool quotes) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  return escape(v, /*quotes=*/true);
}

std::string escape_help(std::string_view v) {
  return escape(v, /*quotes=*/false);
}

void Exposition::family(std::string_view name, std::string_view help, std::string_view type) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Exposition::sample(std::string_view name, const Labels& labels, double value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_ += ',';
      out_ += labels[i].first;
      out_ += "=\"";
      out_ += escape_label_value(labels[i].second);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void Exposition::histogram(std::string_view name, std::string_view help, const Histogram& h) {
  family(name, help, "histogram");
  histogram_samples(name, {}, h);
}

void Exposition::histogram_samples(std::string_view name, const Labels& labels,
                                   const Histogram& h) {
  const std::vector<uint64_t> counts = h.cumulative();
  const std::string bucket = std::string(name) + "_bucket";
  auto with_le = [&](std::string le) {
    Labels l = labels;
    l.emplace_back("le", std::move(le));
    return l;
  };
  for (size_t i = 0; i < h.bounds().size(); ++i) {
    sample(bucket, with_le(format_value(h.bounds()[i])), static_cast<double>(counts[i]));
  }
  sample(bucket, with_le("+Inf"), static_cast<double>(counts.back()));
  sample(std::string(name) + "_sum", labels, h.sum());
  sample(std::string(name) + "_count", labels, static_cast<double>(counts.back()));
}

}  // namespace synod::metrics
