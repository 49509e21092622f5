// The HTML report of `synod check --report`: one self-contained page (inline CSS and SVG, no
// scripts, nothing fetched) with the verdict and, for a history that is not linearizable, the
// failing key's operations on a time line, one row per process: each operation a bar from its
// invocation to its completion (an indeterminate one runs to the right edge, dashed), the
// smallest failing window outlined, and a red line at the return of the operation that no
// linearization reaches. Below it, the window as a table. Pure.
#pragma once

#include <string>
#include <vector>

#include "check/linearizability.h"

namespace synod::check {

struct ReportOptions {
  std::string title = "synod check";
  size_t max_operations = 400;  // operations drawn, nearest the failure first
};

std::string render_report(const std::vector<Operation>& history, const LinearizabilityResult& r,
                          const ReportOptions& options = {});

}  // namespace synod::check
