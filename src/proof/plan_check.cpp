// The functional proof `dojo plan --verify` reports (plan_check.h).
#include "dojo/proof/plan_check.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "dojo/ir/op.h"
#include "dojo/util/error.h"

namespace dojo::proof {

Comparison compare(const StepOutcome& run, const StepOutcome& reference) {
    Comparison c;
    for (std::size_t p = 0; p < reference.parameters.size(); ++p) {
        for (std::size_t e = 0; e < reference.parameters[p].size(); ++e) {
            const double x = run.parameters[p][e], y = reference.parameters[p][e];
            c.identical = c.identical && x == y;
            c.largest_relative = std::max(c.largest_relative, std::abs(x - y) / (std::abs(y) + 1e-3));
        }
    }
    c.identical = c.identical && run.replicas_agree;
    return c;
}

PlanCheck check_plan(const compiler::Plan& plan, const std::string& model, std::int64_t batch,
                     const autodiff::OptimizerConfig& optimizer,
                     const std::optional<compiler::SpatialPlacement>& placement) {
    const auto started = std::chrono::steady_clock::now();
    const compiler::Plan whole = compiler::make_plan(model, batch, compiler::Strategy{}, optimizer, {}, plan.precision);
    constexpr double kMostFlops = 2e10;
    double flops = 0;
    for (std::uint32_t i = 0; i < whole.step.graph.size(); ++i) {
        flops += whole.live[i] ? ir::cost_of(whole.step.graph, ir::NodeId{i}).flops : 0.0;
    }
    if (flops > kMostFlops) {
        throw UsageError(fmt::format("--verify runs {} at batch {} twice with FP32 reference kernels on this CPU: {:.3g} "
                                     "GFLOP a step, over the {:.3g} it takes in reasonable time; verify a smaller model "
                                     "or batch with the same strategy",
                                     model, batch, flops / 1e9, kMostFlops / 1e9));
    }
    const StepInputs inputs = seeded_inputs(whole, batch, 10, 1);
    const StepOutcome reference = run_unpartitioned(whole, inputs);
    PlanCheck v;
    v.outcome = run_partitioned(plan, inputs);
    v.interleaved = plan.strategy.virtual_stages > 1;
    v.against_whole = compare(v.outcome, reference);
    if (placement && placement->fits()) {
        SpatialCheck s;
        try {
            s.outcome = run_placed(plan, *placement, inputs);
            s.against_whole = compare(s.outcome, reference);
        } catch (const UsageError& e) {  // the partitioned check above stands on its own
            s.not_run = e.what();
        }
        for (const compiler::StagePlacement& stage : placement->stages) {
            s.layers += static_cast<std::int64_t>(stage.layers.size());
        }
        s.pieces = placement->stages.front().pieces;
        v.spatial = std::move(s);
    }
    v.loss_whole = reference.loss;
    v.loss_partitioned = v.outcome.loss;
    v.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return v;
}

}  // namespace dojo::proof
