/** \file
 * Simulates one training step of a Plan on a machine: the time, where it goes, whether it fits, and its energy.
 * Its parts live in files of their own under src/sim: step_collectives (the network's collectives), stage_times (op
 * times per stage), core_layout_time (a stage on a mesh's cores), pipeline_run (the schedule on the activity engine),
 * gradient_sync_time (buckets and the update), critical_path, step_report (fit and energy); memory_fit.h and
 * search.h are public.
 *
 * Folding: the dp replicas and the tp devices of a stage do identical work, so one device per pipeline stage is
 * simulated; collectives are simulated as flows (network.h) with the links shared as the identical groups share
 * them.
 *
 * Per stage and micro-batch, forward and backward times are sums of op_time() over the stage's nodes plus its
 * tensor-parallel all-reduces (on the critical path, as in Megatron-LM). The pipeline schedule (compiler/schedule.h)
 * then becomes activities of the activity engine (activity_engine.h): every (stage, micro-batch, forward/backward)
 * task holds its device, every value crossing stages holds the link between them, and a task starts when its device
 * is free and its inputs have arrived (activations from the previous stage, gradients from the next). Gradients accumulate across micro-batches; during the last micro-batch's backward pass the
 * data-parallel all-reduce runs in the plan's gradient buckets (compiler/gradient_buckets.h, the runtime's), one
 * after another, each as soon as the backward pass has computed its last gradient, so communication hidden behind
 * compute is not counted twice; the rest is reported as exposed. The optimizer update follows.
 *
 * Critical path: from the step's end (the optimizer of the stage that finishes last, after its exposed gradient
 * all-reduce or its last backward task) back through what each task waited for: the task before it on its stage,
 * its own forward task, or a neighbour's task whose output crossed a link (the send, and any wait for the link).
 *
 * Memory (per device of each stage): parameters (FP32 masters), their gradients, optimizer state, and the saved
 * activations of the micro-batches in flight (pp - stage under 1F1B, at the precision's width). With SRAM (Dojo)
 * everything stays in SRAM when it fits; otherwise parameters, gradients and optimizer state live in the HBM share,
 * and activations stay in SRAM if they fit there, with a copy of the parameters at the precision's width beside them
 * if that fits too (forward and backward read the copy; the update streams from HBM and refreshes it), else the
 * weights stream from HBM. A plan that does not fit is reported with
 * the stage, level, shortfall and largest tensor; it is simulated all the same (its times assume the memory existed).
 * On a mesh of cores the stage's layers are also placed core by core (compiler/place_spatial.h): a stage whose
 * layers no core layout holds, even streaming from HBM, does not fit either, and the report says which layer or
 * total was short. The placement also times the stage's compute on the chip: with its layers in turn on all cores,
 * each op as timed above plus re-spreading each layer's output (and gradient) over the mesh, half of it across the
 * bisection (StageTime::respread_s); side by side, each rectangle runs its layers' ops with its share of the cores
 * and the micro-batch's pieces stream through the rectangles as through a pipeline paced by the slowest one (one
 * piece of fill per further rectangle), the update on all rectangles at once. The trace shows these rectangles as
 * a zoom level below the chip.
 *
 * Energy: each device draws idle power (idle_power_fraction x TDP) plus the rest of its TDP while busy; the rest of
 * the machine's power (tile regulators, hosts, switches: the machine total less its devices' TDP) is drawn all step.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/memory_fit.h"
#include "dojo/sim/network.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

/// A stage's step against its device's roofs (per step, one device of the stage): what its ops compute and move,
/// the time each would take at the device's peak rate alone, and which of them bounds the stage's busy time.
struct StageRoofline {
    double flop = 0;                     ///< all micro-batches and the update
    double memory_bytes = 0;             ///< moved to and from the device's memory (HBM, or a CPU's DRAM)
    double sram_bytes = 0;               ///< moved to and from SRAM (or a CPU's cache)
    double compute_s = 0;                ///< every op at the device's peak FLOP rate for its kind (matrix, vector)
    double memory_s = 0;                 ///< every op's bytes at its level's bandwidth, with the accumulation of
                                         ///< each micro-batch's weight gradients and the refresh of a working copy
    double link_s = 0;                   ///< tensor-parallel all-reduces, re-spreading over a mesh's cores, the
                                         ///< exposed gradient all-reduce and the parameter all-gather
    double busy_s = 0;                   ///< what the stage's device is busy with over the step (compute and links)
    std::string bound;                   ///< "compute", "memory" or "links": the largest of the three roofs
};

struct StageTime {
    int stage = 0;
    std::int64_t nodes = 0;
    double forward_s = 0;                ///< per micro-batch, compute only
    double backward_s = 0;               ///< per micro-batch, compute only (with recompute_s)
    double recompute_s = 0;              ///< per micro-batch, the forward pass again (recompute=full), or its
                                         ///< attention cores again (recompute=selective)
    double tensor_comm_s = 0;            ///< per micro-batch, tensor-parallel all-reduces (forward + backward) the
                                         ///< compute waits for: all of them, or what products do not hide where the
                                         ///< software overlaps them (Device::tensor_comm_overlapped)
    double tensor_comm_total_s = 0;      ///< per micro-batch, the same collectives' whole time on the links
    double optimizer_s = 0;              ///< per step
    double respread_s = 0;               ///< per micro-batch, in forward_s and backward_s: on a mesh whose layers
                                         ///< run in turn, re-spreading each layer's output and gradient over the cores
    double busy_s = 0;                   ///< compute + tensor comm over the step
    double grad_allreduce_s = 0;         ///< data-parallel all-reduce of the stage's gradient buckets, summed (wall
                                         ///< time: stretched where they share the cores with the backward pass)
    double grad_allreduce_exposed_s = 0; ///< the part not hidden behind the last backward pass
    double param_allgather_s = 0;        ///< zero=1: the updated parameters' all-gather after the update
    double param_allgather_exposed_s = 0; ///< the part the step waits for: all of it, or what the next step's first
                                          ///< forward pass does not hide (Device::parameter_gather_overlapped)
    double finish_s = 0;                 ///< when its optimizer update ends
    MemoryUse memory;
    /// On a mesh of cores (Dojo): how compiler/place_spatial.h lays the stage's layers on its chip's cores, e.g.
    /// "12 layers on 12 rectangles of cores, SRAM"; empty on GPUs and CPUs.
    std::string core_placement;
    bool core_fits = true;               ///< every core's working set fits its SRAM (with streaming where needed)
    StageRoofline roofline;
};

struct OpClassTime {
    std::string op;                      ///< op kind name
    std::int64_t nodes = 0;
    double seconds = 0;                  ///< per step on the busiest stage's device, all micro-batches
    double flops = 0;
    std::int64_t memory_bound = 0;       ///< nodes whose memory time exceeds their compute time
};

struct CollectiveReport {
    std::string what;                    ///< "tensor-parallel all-reduce", "gradient all-reduce", "pipeline send"
    std::int64_t count = 0;              ///< per step
    double bytes = 0;                    ///< per occurrence, per device
    std::int64_t participants = 0;
    std::string algorithm;
    double seconds = 0;                  ///< per occurrence
};

/// One interval of the simulated step on a stage's representative device (tensor rank 0 of replica 0; the others
/// are identical), for the trace (sim/trace.h).
struct TimelineEvent {
    std::string name;             ///< "forward 3" (micro-batch 3), "backward 3", "optimizer", "gradient bucket 2",
                                  ///< "send 0->1", or an op's name inside a forward or backward task
    std::string category;         ///< forward, backward, optimizer, op, tensor-parallel, gradient all-reduce, send
    int stage = 0;
    bool communication = false;   ///< on the device's communication stream (NCCL, DMA), not its compute stream
    double start_s = 0;
    double duration_s = 0;
    double bytes = 0;             ///< what a communication event moves, per device
    std::string cores;            ///< on a mesh: the rectangle of cores it runs on ("cores (x,y) w x h"), a zoom
                                  ///< level below the device (category "cores"); empty for the device's streams
};

/// Time on the step's critical path, grouped: a stage's forward or backward compute, its tensor-parallel
/// all-reduces, a pipeline link, the exposed gradient all-reduce, the optimizer.
struct CriticalItem {
    std::string what;                 ///< "stage 3 backward compute", "pipeline send 2->3", ...
    double seconds = 0;               ///< on the path, over the step
    double share = 0;                 ///< of the step time
    std::string why;                  ///< what makes it long, for people
};

struct SimResult {
    std::string model;
    std::string machine;
    std::string software;                ///< the software stack its GPUs run (Topology::software); empty: none
    std::string device;
    std::string precision;               ///< the plan's (compiler::to_string)
    compiler::Strategy strategy;
    std::int64_t global_batch = 0;
    std::int64_t devices_used = 0;
    std::int64_t devices_total = 0;
    double step_s = 0;
    double samples_per_s = 0;
    double model_flops = 0;              ///< per step, whole machine (every replica's forward, backward, update)
    double achieved_flops = 0;           ///< model_flops / step_s
    double utilization = 0;              ///< achieved / (devices used x matrix peak at the precision)
    double pipeline_bubble_s = 0;        ///< the last stage's idle time before its optimizer update
    double exposed_comm_s = 0;           ///< the finishing stage's gradient all-reduce not hidden by compute
    int critical_stage = 0;              ///< the stage that finishes last
    double energy_j = 0;
    double average_power_w = 0;
    bool fits = true;
    std::string fit_report;              ///< empty when it fits
    std::vector<StageTime> stages;
    std::vector<OpClassTime> ops;        ///< by op kind, largest time first
    std::vector<CollectiveReport> collectives;
    std::vector<CriticalItem> critical_path;  ///< walked back from the step's end through what each task waited
                                              ///< for; longest item first
    double simulation_wall_s = 0;        ///< how long simulating took (for the benchmark)
    std::vector<std::int64_t> stage_devices;  ///< [stage]: its representative device's index in the machine
    std::vector<TimelineEvent> timeline;      ///< with record_timeline: every task, bucket and send, by start time;
                                              ///< ops inside the first and last micro-batch's tasks
};

/// Simulates `plan` on `topology` at the plan's precision (its step's rounding nodes are timed as the device runs
/// them: op_time.h). UsageError if the plan needs more devices than the machine has, or tp is larger than the
/// innermost level (a tile, a DGX) holds. `record_timeline` fills SimResult::timeline.
SimResult simulate(const compiler::Plan& plan, const Topology& topology, bool record_timeline = false);

}  // namespace dojo::sim
