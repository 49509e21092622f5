// Linearizability checker time on generated linearizable key-value histories, and on the
// simulator's own register histories.
#include <benchmark/benchmark.h>

#include <map>
#include <sstream>
#include <string>
#include <utility>

#include "check/generate.h"
#include "check/linearizability.h"
#include "sim/simulation.h"

namespace {

void BM_CheckKv(benchmark::State& state) {
  synod::check::GenerateOptions o;
  o.ops = static_cast<size_t>(state.range(0));
  o.clients = 20;
  o.keys = 10;
  const auto history = synod::check::generate_linearizable(o);
  uint64_t states = 0;
  for (auto _ : state) {
    auto r = synod::check::check_kv(history);
    if (r.verdict != synod::check::Verdict::kLinearizable) state.SkipWithError("not linearizable");
    states = r.states_explored;
  }
  state.counters["states"] = static_cast<double>(states);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CheckKv)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// The register history of `synod sim --seed S --nodes 5 --faults all --ops N --clients 20`,
// run once per process.
const std::vector<synod::check::Operation>& sim_history(uint64_t seed, int ops) {
  static std::map<std::pair<uint64_t, int>, std::vector<synod::check::Operation>> cache;
  auto [it, inserted] = cache.try_emplace({seed, ops});
  if (inserted) {
    synod::sim::SimOptions o;
    o.seed = seed;
    o.nodes = 5;
    o.ops = ops;
    o.clients = 20;
    std::string error;
    synod::sim::parse_faults("all", o.faults, error);
    std::ostringstream log;
    it->second = synod::sim::run_simulation(o, log).history;
  }
  return it->second;
}

// Checked as the simulator checks it (its budget of 500,000 configurations per key).
void BM_CheckSimHistory(benchmark::State& state) {
  const auto& history =
      sim_history(static_cast<uint64_t>(state.range(0)), static_cast<int>(state.range(1)));
  synod::check::CheckOptions opts;
  opts.max_states = 500'000;
  uint64_t states = 0;
  for (auto _ : state) {
    auto r = synod::check::check_kv(history, opts);
    if (r.verdict != synod::check::Verdict::kLinearizable)
      state.SkipWithError(r.explanation.c_str());
    states = r.states_explored;
  }
  uint64_t indeterminate = 0;
  for (const auto& op : history) indeterminate += op.outcome == synod::check::Outcome::kInfo;
  state.counters["ops"] = static_cast<double>(history.size());
  state.counters["info"] = static_cast<double>(indeterminate);
  state.counters["states"] = static_cast<double>(states);
}
BENCHMARK(BM_CheckSimHistory)
    ->ArgsProduct({benchmark::CreateDenseRange(930'000, 930'040, 1), {5'000}})
    ->ArgsProduct({benchmark::CreateDenseRange(930'000, 930'004, 1), {20'000}})
    ->ArgNames({"seed", "ops"})
    ->Unit(benchmark::kMillisecond);

}  // namespace
