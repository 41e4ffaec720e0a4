// Test helpers: a plan's FP32 step laid out and timed at another precision's storage widths and matrix rates. The
// tests that use them check what does not depend on the rounding nodes a step built at that precision adds (stages,
// placement, collectives, pipelining); tests of the rounding nodes themselves build the step at the precision
// (compiler::make_plan's `precision`).
#pragma once

#include <string_view>

#include "dojo/compiler/place_spatial.h"
#include "dojo/compiler/plan.h"
#include "dojo/sim/simulate.h"

namespace dojo::compiler {

inline Plan at_widths(Plan plan, std::string_view precision) {
    plan.precision = parse_precision(precision);
    return plan;
}

inline SpatialPlacement place_spatial(const Plan& plan, const CoreMesh& mesh, const char* precision,
                                      LayoutChoice layout = LayoutChoice::Auto, const NodeCost& node_seconds = {}) {
    return place_spatial(at_widths(plan, precision), mesh, layout, node_seconds);
}

}  // namespace dojo::compiler

namespace dojo::sim {

// `const char*`, not string_view: a literal must match this exactly, not convert to the library's bool.
inline SimResult simulate(const compiler::Plan& plan, const Topology& topology, const char* precision,
                          bool record_timeline = false) {
    return simulate(compiler::at_widths(plan, precision), topology, record_timeline);
}

}  // namespace dojo::sim
