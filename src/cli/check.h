// synod check: is a recorded history of client operations linearizable? Reads Synod's JSON
// lines, Jepsen's text log or history.edn (check/history_json.h) and checks each key as a register
// with read, write and compare-and-set (check/linearizability.h).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace synod::cli {

// Registers `check` on `app`. The returned callable, called after app.parse() when `check`
// was parsed, runs it and returns the exit code: 0 linearizable, 1 not linearizable, 2 bad
// arguments or a malformed history, 3 unknown (the time or state limit was reached).
std::function<int()> add_check_command(CLI::App& app);

}  // namespace synod::cli
