// Per pipeline stage, the time of its nodes on one device (op_time.h), and what a stage adds to them per step
// (recomputation, ZeRO, a working copy's refresh, gradient accumulation): a part of simulate() in its own file.
// Private to src/sim.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/sim/memory_fit.h"
#include "dojo/sim/simulate.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

// One op (or fused group) of a stage's forward or backward task, in order, for the timeline.
struct OpSpan {
    std::string name;
    double seconds = 0;
    double comm_s = 0;  // its tensor-parallel all-reduce, after it
    bool forward = true;
};

struct StageOpTimes {
    std::vector<StageTime> stages;                    // forward_s, backward_s, tensor_comm_s, optimizer_s, nodes
    std::vector<std::map<std::string, OpClassTime>> by_op;  // [stage]: by op kind, all micro-batches
    std::vector<std::vector<OpSpan>> spans;           // [stage]: with record_timeline
    std::vector<double> node_s;                       // [node]: its time per run (a group's at its last member)
    std::vector<double> backward_done;                // [node]: its stage's backward compute up to and with it
    double per_microbatch_flops = 0;                  // all stages, whole tensor-parallel group
    double per_step_flops = 0;
};

// The bandwidth of a memory level; a machine without HBM (a bare tile) streams from SRAM (and does not fit).
double level_bandwidth(const Device& device, const std::string& level);
// Whether data at that level streams from SRAM (the level, or a machine without HBM).
bool in_sram(const Device& device, const std::string& level);

// Times every live node of `plan` on its stage's device: at the level its data lives in (`memory`), its work
// divided over the tensor-parallel group where the plan divides it, fused groups as one pass at their last member,
// each followed by its tensor-parallel all-reduce (`tensor_comm_after`, per node). With `host` (the ExecPlan a CPU
// host running OpenDojo's runtime makes of the plan: cpu_kernel_time.h) each node is timed as the kernel that runs
// it, and the update's apply joins the optimizer's time.
StageOpTimes time_stage_ops(const compiler::Plan& plan, const Device& device,
                            const std::vector<MemoryUse>& memory,
                            const std::map<std::uint32_t, double>& tensor_comm_after, bool record_timeline,
                            const runtime::ExecPlan* host = nullptr);

// What each stage adds to its ops per step: recomputation runs the stage's forward pass (and its tensor-parallel
// all-reduces) again in each backward task; ZeRO stage 1 updates 1/dp of the parameters; an update that refreshes
// a working copy reads the new weights once more; gradients accumulate over micro-batches (read, add, write once
// per micro-batch after the first).
void add_stage_overheads(const compiler::Plan& plan, const Device& device, const std::vector<MemoryUse>& memory,
                         std::vector<StageTime>& stages);

// Completes each stage's roofline (time_stage_ops summed its ops' FLOP, bytes and roof times) once the step is
// timed: its link time (tensor-parallel all-reduces and a mesh's re-spreading for every micro-batch, the exposed
// gradient all-reduce, the parameter all-gather), its busy time and the roof that bounds it.
void finish_rooflines(const compiler::Strategy& strategy, std::vector<StageTime>& stages);

}  // namespace dojo::sim
