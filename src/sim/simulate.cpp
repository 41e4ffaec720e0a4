// simulate(): the step's parts in order (simulate.h): memory, collectives, op times, core placement, the pipeline
// on the activity engine, the gradient all-reduce, then the report (critical path, fit, energy).
#include "dojo/sim/simulate.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core_layout_time.h"
#include "dojo/sim/cpu_kernel_time.h"
#include "critical_path.h"
#include "dojo/sim/op_time.h"
#include "dojo/util/error.h"
#include "gradient_sync_time.h"
#include "pipeline_run.h"
#include "stage_times.h"
#include "step_collectives.h"
#include "step_report.h"

namespace dojo::sim {
namespace {

void check_fits_machine(const compiler::Strategy& st, const Topology& topology) {
    const Device& device = topology.device;
    if (st.devices() > device.count) {
        throw UsageError("strategy " + st.to_string() + " needs " + std::to_string(st.devices()) + " devices; " +
                         topology.machine + " has " + std::to_string(device.count) + " " + device.kind);
    }
    if (st.tp > topology.levels.front().devices) {
        throw UsageError("tp=" + std::to_string(st.tp) + " is larger than one " + topology.levels.front().kind + " (" +
                         std::to_string(topology.levels.front().devices) + " " + device.kind +
                         "): tensor parallelism stays inside it");
    }
}

// The model's FLOPs per step over the machine, the rates they give and the busiest stage's op classes.
void report_rates(const compiler::Plan& plan, const Device& device, const StageOpTimes& ops, SimResult& r) {
    const compiler::Strategy& st = plan.strategy;
    r.model_flops = (ops.per_microbatch_flops * st.micro_batches + ops.per_step_flops) * st.dp;
    r.achieved_flops = r.model_flops / r.step_s;
    const auto peak = device.matrix_flops.count(r.precision) != 0 ? device.matrix_flops.at(r.precision)
                                                                  : device.matrix_flops.at("fp32");
    r.utilization = r.achieved_flops / (static_cast<double>(r.devices_used) * peak);
    r.samples_per_s = static_cast<double>(plan.global_batch) / r.step_s;
}

std::size_t busiest_stage(const std::vector<StageTime>& stages) {
    std::size_t busiest = 0;
    for (std::size_t s = 0; s < stages.size(); ++s) {
        busiest = stages[s].busy_s > stages[busiest].busy_s ? s : busiest;
    }
    return busiest;
}

}  // namespace

SimResult simulate(const compiler::Plan& plan, const Topology& topology, bool record_timeline) {
    const auto started = std::chrono::steady_clock::now();
    const compiler::Precision precision = plan.precision;
    const compiler::Strategy& st = plan.strategy;
    const Device& device = topology.device;
    check_fits_machine(st, topology);
    SimResult r;
    r.model = plan.model;
    r.machine = topology.machine;
    r.software = topology.software;
    r.device = device.kind;
    r.precision = compiler::to_string(precision);
    r.strategy = st;
    r.global_batch = plan.global_batch;
    r.devices_used = st.devices();
    r.devices_total = device.count;
    for (int s = 0; s < st.pp; ++s) {
        r.stage_devices.push_back(device_index(st, 0, s, 0));
    }
    std::vector<TimelineEvent>* timeline = record_timeline ? &r.timeline : nullptr;

    const std::vector<MemoryUse> memory = plan_memory(plan, device);
    double resident_bytes = 0;  // the busiest stage's: whether a gradient bucket still finds the cache (network.h)
    for (const MemoryUse& use : memory) {
        resident_bytes = std::max(resident_bytes, use.total_bytes());
    }
    // Activations and gradients travel at 16 bits unless the precision is fp32 (the graph's bytes are F32).
    const StepCollectives collectives(plan, topology, resident_bytes, stores_narrow(device, precision) ? 0.5 : 1.0);
    // A CPU host that trains with OpenDojo's runtime runs the ExecPlan its lowering makes of the plan: timed as such.
    const std::optional<runtime::ExecPlan> host = lower_for_host(plan, device);
    StageOpTimes ops = time_stage_ops(plan, device, memory, collectives.tensor_comm_after(), record_timeline,
                                      host ? &*host : nullptr);
    r.stages = std::move(ops.stages);

    // On a mesh of cores, the compiler's core placement (compiler/place_spatial.h) of each stage's layers times the
    // stage's compute on the chip.
    const auto P = static_cast<std::size_t>(st.pp);
    const bool on_mesh = device.mesh_columns > 0 && device.mesh_rows > 0;
    const compiler::CoreMesh mesh = on_mesh ? core_mesh(topology, precision) : compiler::CoreMesh{};
    const compiler::SpatialPlacement placement =
        on_mesh ? compiler::place_spatial(plan, mesh, compiler::LayoutChoice::Auto,
                                          stage_cost(device, precision))
                : compiler::SpatialPlacement{};
    std::vector<std::vector<CoreSpan>> core_spans(P);  // [stage]: per micro-batch
    std::vector<bool> on_rectangles(P, false);          // [stage]: layers side by side
    for (const compiler::StagePlacement& sp : placement.stages) {
        if (sp.fits) {
            const auto s = static_cast<std::size_t>(sp.stage);
            core_spans[s] = time_core_layout(sp, mesh, plan, ops.node_s, r.stages[s]);
            on_rectangles[s] = !sp.temporal && sp.regions.size() > 1;
        }
    }
    add_stage_overheads(plan, device, memory, r.stages);

    const PipelineRun run = run_pipeline(st, r.stages, [&](int from, int to) { return collectives.send_s(from, to); });
    if (timeline != nullptr) {
        record_pipeline(run, r.stages, core_spans, on_rectangles, ops.spans, collectives.sends(), *timeline);
    }
    time_gradient_sync(plan, device, collectives, run, ops.backward_done, r.stages, timeline);
    finish_rooflines(st, r.stages);
    for (std::size_t s = 0; s < P; ++s) {
        if (r.stages[s].finish_s > r.step_s) {
            r.step_s = r.stages[s].finish_s;
            r.critical_stage = static_cast<int>(s);
        }
    }
    const StageTime& critical = r.stages[static_cast<std::size_t>(r.critical_stage)];
    r.exposed_comm_s = critical.grad_allreduce_exposed_s;
    r.critical_path = walk_critical_path(plan, device, r, run, collectives, ops.by_op);
    r.pipeline_bubble_s = std::max(0.0, r.step_s - critical.busy_s - critical.grad_allreduce_exposed_s -
                                            critical.param_allgather_exposed_s);
    report_rates(plan, device, ops, r);
    const std::size_t busiest = busiest_stage(r.stages);
    for (const auto& [name, cls] : ops.by_op[busiest]) {
        r.ops.push_back(cls);
    }
    std::sort(r.ops.begin(), r.ops.end(),
              [](const OpClassTime& a, const OpClassTime& b) { return a.seconds > b.seconds; });
    report_fit(device, placement, r);
    r.collectives = collectives.report(r.stages, busiest);
    r.energy_j = step_energy_j(topology, st, r);
    r.average_power_w = r.energy_j / r.step_s;
    std::stable_sort(r.timeline.begin(), r.timeline.end(),
                     [](const TimelineEvent& a, const TimelineEvent& b) { return a.start_s < b.start_s; });
    r.simulation_wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return r;
}

}  // namespace dojo::sim
