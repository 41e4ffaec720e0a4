/** \file
 * The functional proof of a Plan, as `dojo plan --verify` reports it: the partitioned step (functional_sim.h:
 * run_partitioned) and, with a core placement that fits, the step run layer by layer on its rectangles (run_placed),
 * each against the unpartitioned step from the same seeded parameters and batch (seeded_inputs: 10 classes,
 * learning rate as SGD's default), compared parameter by parameter.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dojo/compiler/place_spatial.h"
#include "dojo/compiler/plan.h"
#include "dojo/proof/functional_sim.h"

namespace dojo::proof {

/// Two steps' parameters side by side.
struct Comparison {
    bool identical = true;        ///< every parameter bit for bit, and the replicas agreed
    double largest_relative = 0;  ///< |partitioned - whole| / (|whole| + 1e-3), over every parameter element
};
Comparison compare(const StepOutcome& run, const StepOutcome& reference);

/// With a placement: the step run layer by layer on its rectangles.
struct SpatialCheck {
    std::string not_run;  ///< why the placement could not be run layer by layer (empty when it ran)
    Comparison against_whole;
    StepOutcome outcome;
    std::int64_t layers = 0, pieces = 1;
};

struct PlanCheck {
    Comparison against_whole;
    double loss_whole = 0, loss_partitioned = 0;
    StepOutcome outcome;
    bool interleaved = false;  ///< vp > 1: the step ran as pp * vp chunks in the interleaved order
    std::optional<SpatialCheck> spatial;
    double seconds = 0;
};

/// Runs `plan` (of `model` at global batch `batch`, at the plan's precision, with `optimizer`) partitioned, and on `placement` where
/// it fits, against the whole step. UsageError if a step is over 2e10 FLOPs (the reference kernels run at about a
/// GFLOP/s: minutes, not a check), naming the smaller model or batch to try.
PlanCheck check_plan(const compiler::Plan& plan, const std::string& model, std::int64_t batch,
                     const autodiff::OptimizerConfig& optimizer,
                     const std::optional<compiler::SpatialPlacement>& placement);

}  // namespace dojo::proof
