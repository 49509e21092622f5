#include "check/report.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace synod::check {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A short label for a bar: the operation without its id, client and times.
std::string label(const Operation& op) {
  const std::string full = to_string(op);
  const size_t close = full.find("] ");
  return close == std::string::npos ? full : full.substr(close + 2);
}

const char* kStyle = R"(body{font-family:sans-serif;margin:24px;color:#222}
h1{font-size:20px}.verdict{font-size:18px;font-weight:bold}
.bad{color:#b00020}.good{color:#1b5e20}.unknown{color:#8a6d00}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}
table{border-collapse:collapse;margin-top:12px}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
.op rect{fill:#90caf9;stroke:#1e88e5}.op.info rect{fill:#fff3c4;stroke:#c9a400;stroke-dasharray:4 3}
.op.window rect{stroke:#b00020;stroke-width:3}.op.failed rect{fill:#ef9a9a}
.op text{font-size:11px;font-family:monospace}.lane{font-size:12px}
)";

}  // namespace

std::string render_report(const std::vector<Operation>& history, const LinearizabilityResult& r,
                          const ReportOptions& o) {
  std::ostringstream html;
  html << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" << escape(o.title)
       << "</title><style>" << kStyle << "</style></head><body>";
  html << "<h1>" << escape(o.title) << "</h1>";
  const char* cls = r.verdict == Verdict::kLinearizable      ? "good"
                    : r.verdict == Verdict::kNotLinearizable ? "bad"
                                                             : "unknown";
  html << "<p class=\"verdict " << cls << "\" id=\"verdict\">" << to_string(r.verdict) << "</p>";
  html << "<p>" << history.size() << " operations; " << r.states_explored
       << " configurations explored.</p>";
  if (!r.explanation.empty())
    html << "<pre id=\"explanation\">" << escape(r.explanation) << "</pre>";
  if (r.verdict != Verdict::kNotLinearizable) {
    html << "</body></html>\n";
    return html.str();
  }

  // The failing key's operations, those nearest the failure in time first.
  std::set<uint64_t> window;
  for (const Operation& op : r.failing_window) window.insert(op.id);
  const Operation* failed = nullptr;
  std::vector<const Operation*> ops;
  for (const Operation& op : history) {
    if (op.key != r.key) continue;
    ops.push_back(&op);
    if (op.id == r.failed_id) failed = &op;
  }
  const uint64_t focus = failed != nullptr ? failed->complete_time : 0;
  auto distance = [&](const Operation* op) {
    if (window.contains(op->id)) return uint64_t{0};
    const uint64_t end = op->outcome == Outcome::kInfo ? UINT64_MAX : op->complete_time;
    if (op->invoke_time <= focus && focus <= end) return uint64_t{0};
    return op->invoke_time > focus ? op->invoke_time - focus : focus - end;
  };
  std::stable_sort(ops.begin(), ops.end(), [&](const Operation* a, const Operation* b) {
    return distance(a) < distance(b);
  });
  if (ops.size() > o.max_operations) ops.resize(o.max_operations);

  uint64_t lo = UINT64_MAX, hi = 0;
  std::map<uint32_t, int> lane;  // client -> row
  for (const Operation* op : ops) {
    lo = std::min(lo, op->invoke_time);
    hi = std::max({hi, op->invoke_time, op->outcome == Outcome::kInfo ? 0 : op->complete_time});
    lane.emplace(op->client, 0);
  }
  int row = 0;
  for (auto& [client, y] : lane) y = row++;
  const double width = 1000, left = 90, lane_h = 34;
  const double span = hi > lo ? static_cast<double>(hi - lo) : 1;
  auto x = [&](uint64_t t) { return left + (static_cast<double>(t - lo) / span) * (width - 20); };
  const double height = 30 + lane_h * static_cast<double>(lane.size());

  html << "<h2>Key " << escape(r.key) << ": the time line</h2>";
  html << "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << left + width
       << "\" height=\"" << height << "\">";
  for (const auto& [client, y] : lane) {
    html << "<text class=\"lane\" x=\"4\" y=\"" << 30 + lane_h * y + 16 << "\">process " << client
         << "</text>";
  }
  for (const Operation* op : ops) {
    const bool info = op->outcome == Outcome::kInfo;
    const double x0 = x(op->invoke_time);
    const double x1 = info ? left + width - 10 : std::max(x(op->complete_time), x0 + 3);
    const double y = 30 + lane_h * lane[op->client];
    html << "<g class=\"op" << (info ? " info" : "") << (window.contains(op->id) ? " window" : "")
         << (op == failed ? " failed" : "") << "\" data-id=\"" << op->id << "\"><title>"
         << escape(to_string(*op)) << "</title><rect x=\"" << x0 << "\" y=\"" << y << "\" width=\""
         << x1 - x0 << "\" height=\"22\" rx=\"3\"/><text x=\"" << x0 + 3 << "\" y=\"" << y + 15
         << "\">" << escape(label(*op)) << "</text></g>";
  }
  if (failed != nullptr) {
    const double fx = x(failed->complete_time);
    html << "<line id=\"no-linearization\" x1=\"" << fx << "\" y1=\"12\" x2=\"" << fx << "\" y2=\""
         << height << "\" stroke=\"#b00020\" stroke-width=\"2\"/><text x=\"" << fx - 4
         << "\" y=\"12\" text-anchor=\"end\" fill=\"#b00020\" font-size=\"12\">no linearization "
            "reaches here</text>";
  }
  html << "</svg>";
  if (ops.size() == o.max_operations) {
    html << "<p>Showing the " << o.max_operations << " operations of key " << escape(r.key)
         << " nearest the failure.</p>";
  }
  html << "<h2>The smallest failing window</h2><table id=\"window\"><tr><th>id</th><th>process"
          "</th><th>invoked</th><th>completed</th><th>operation</th><th>outcome</th></tr>";
  for (const Operation& op : r.failing_window) {
    html << "<tr" << (op.id == r.failed_id ? " class=\"bad\"" : "") << "><td>" << op.id
         << "</td><td>" << op.client << "</td><td>" << op.invoke_time << "</td><td>"
         << (op.outcome == Outcome::kInfo ? std::string("?") : std::to_string(op.complete_time))
         << "</td><td>" << escape(label(op)) << "</td><td>" << to_string(op.outcome)
         << "</td></tr>";
  }
  html << "</table></body></html>\n";
  return html.str();
}

}  // namespace synod::check
