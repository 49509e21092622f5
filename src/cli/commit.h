// `synod commit`: the classic runs of atomic commitment (src/sim/commit_runs.h): 2PC blocks when
// its coordinator crashes after the votes, 3PC terminates; under a partition 3PC decides both
// ways.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace synod::cli {

// Registers `commit` on `app`; the returned function runs it once parsed.
std::function<int()> add_commit_command(CLI::App& app);

}  // namespace synod::cli
