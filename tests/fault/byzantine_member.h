// A Byzantine PBFT member for the fault campaign: `synod-byzantine server --byzantine-test
// MODES ...` is `synod server` whose messages to its peers pass through an adversary first.
// Built for tests only (tests/fault/CMakeLists.txt); the shipped `synod` has no adversary.
#pragma once

#include <string>

namespace synod::fault {

// MODES: a comma list of equivocate, lie, alter, replay, silent (or "all"). Returns an error
// for an unknown mode, else installs the adversary (server::set_outbound_filter_factory).
std::string install_byzantine_member(const std::string& modes);

}  // namespace synod::fault
