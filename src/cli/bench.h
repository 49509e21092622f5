// synod bench: a load generator for the etcd v3 gRPC API (etcd or Synod), after etcd's
// `benchmark` tool: `synod bench put|range|txn-put` with etcd's flag names.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace synod::cli {

// Registers `bench` and its subcommands on `app`. The returned callable, called after
// app.parse() when the `bench` subcommand was parsed, runs the chosen workload and returns the
// process exit code (0 ok, 1 some requests failed, 2 bad flags, 3 an endpoint unreachable).
// The callable owns the parsed flag values; it must not outlive `app`.
std::function<int()> add_bench_command(CLI::App& app);

}  // namespace synod::cli
