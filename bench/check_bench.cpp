// Linearizability checker time on generated linearizable key-value histories.
#include <benchmark/benchmark.h>

#include "check/generate.h"
#include "check/linearizability.h"

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

}  // namespace
