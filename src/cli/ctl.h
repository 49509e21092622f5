// synod ctl: Synod's own client commands, for what etcdctl has no command for: fenced writes
// (fenced-put, lock-token) and counting semaphores (semaphore acquire|release|list|extend).
// Talks to any member's client URL.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace synod::cli {

// Registers `ctl` and its subcommands on `app`. The returned callable, called after
// app.parse() when `ctl` was parsed, runs the command and returns the exit code: 0 done,
// 1 the server refused (the error is printed as etcdctl prints one), 2 bad arguments,
// 3 no endpoint answered.
std::function<int()> add_ctl_command(CLI::App& app);

}  // namespace synod::cli
