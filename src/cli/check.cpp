#include "cli/check.h"

#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>

#include "check/history_json.h"
#include "check/linearizability.h"
#include "check/models.h"
#include "check/report.h"

namespace synod::cli {

namespace {

struct CheckArgs {
  std::string file;
  std::string format = "synod";
  std::string model = "register";
  std::string report;
  bool independent = false;
  double time_limit_s = 60;
  uint64_t max_states = check::CheckOptions{}.max_states;
};

int run_check(const CheckArgs& a) {
  const std::optional<check::HistoryFormat> format = check::parse_history_format(a.format);
  if (!format) {
    std::cerr << "synod check: unknown format '" << a.format
              << "' (known: synod, jepsen-log, edn)\n";
    return 2;
  }
  std::ifstream in(a.file);
  if (!in) {
    std::cerr << "synod check: cannot open " << a.file << "\n";
    return 2;
  }
  const std::optional<check::ObjectModel> model = check::parse_object_model(a.model);
  if (!model) {
    std::cerr << "synod check: unknown model '" << a.model
              << "' (known: register, mutex, set, list, kv)\n";
    return 2;
  }
  std::vector<check::Operation> history;
  check::HistoryStats stats;
  if (auto error = check::read_history(in, *format, history, &stats, *model, a.independent)) {
    std::cerr << "synod check: " << a.file << ": " << *error << "\n";
    return 2;
  }
  uint64_t ok = 0, fail = 0, info = 0;
  for (const check::Operation& op : history) {
    ok += op.outcome == check::Outcome::kOk;
    fail += op.outcome == check::Outcome::kFail;
    info += op.outcome == check::Outcome::kInfo;
  }
  std::cout << "history   " << history.size() << " operations (" << ok << " ok, " << fail
            << " fail, " << info << " info), " << stats.processes << " processes, " << stats.keys
            << " keys\n";
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(a.time_limit_s));
  check::CheckOptions opts;
  opts.max_states = a.max_states;
  opts.stop = [deadline] { return std::chrono::steady_clock::now() >= deadline; };
  const check::LinearizabilityResult r = check::check_history(history, *model, opts);
  const double took_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!a.report.empty()) {
    check::ReportOptions ro;
    ro.title = "synod check: " + a.file;
    std::ofstream out(a.report);
    out << check::render_report(history, r, ro);
    if (!out) {
      std::cerr << "synod check: cannot write " << a.report << "\n";
      return 2;
    }
  }
  std::cout << "verdict   " << check::to_string(r.verdict) << " (" << r.states_explored
            << " states, " << std::fixed << std::setprecision(3) << took_s << " s)\n";
  if (r.verdict == check::Verdict::kLinearizable) return 0;
  std::cout << r.explanation;
  if (r.verdict == check::Verdict::kUnknown) return 3;
  std::cout << "smallest failing window (key " << r.key << "):\n";
  for (const check::Operation& op : r.failing_window) {
    std::cout << "  " << check::to_string(op) << "\n";
  }
  return 1;
}

}  // namespace

std::function<int()> add_check_command(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check", "check a history of client operations (JSON lines) for linearizability");
  cmd->add_option("history", args->file, "the history file, JSON lines (docs/check.md)")
      ->required();
  cmd->add_option(
      "--model", args->model,
      "register (read, write, cas per key), mutex (acquire with fencing tokens, "
      "fenced write, read), set (add, read), list (append, read) or kv (get, put, append on "
      "strings per key, as Porcupine's kv model)");
  cmd->add_option("--format", args->format,
                  "synod (JSON lines), jepsen-log (Jepsen's text log, as Porcupine's etcd "
                  "histories) or edn (Jepsen's history.edn)");
  cmd->add_option(
      "--report", args->report,
      "write a self-contained HTML report here (the failing operations on a time line)");
  cmd->add_flag("--independent", args->independent,
                "values are Jepsen's independent-key tuples [key value]");
  cmd->add_option("--time-limit", args->time_limit_s,
                  "seconds before giving up with verdict unknown (exit 3)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-states", args->max_states,
                  "configurations one search may memoize before giving up (bounds memory)")
      ->check(CLI::PositiveNumber);
  return [args] { return run_check(*args); };
}

}  // namespace synod::cli
