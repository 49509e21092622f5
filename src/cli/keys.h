// `synod keys`: PBFT member keys (src/server/pbft_keys.h).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace synod::cli {

// Registers `keys` on `app`; the returned function runs it once parsed.
std::function<int()> add_keys_command(CLI::App& app);

}  // namespace synod::cli
