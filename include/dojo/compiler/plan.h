/** \file
 * The Plan: one training step compiled for `dp x tp x pp` devices, which the simulator times (sim/simulate.h) and
 * the functional simulation runs shard by shard (runtime/functional_sim.h). The step comes from the one step builder
 * (build_step.h) that `dojo train` uses.
 *
 * Devices are numbered tensor-parallel rank fastest, then pipeline stage, then data-parallel replica, so a tensor-
 * parallel group sits on neighbouring devices (one chip's neighbours in a tile, one DGX's GPUs).
 *
 * The training graph is built for one micro-batch (global batch / dp / micro_batches samples): forward, loss and
 * backward run once per micro-batch, gradients accumulate, and the optimizer update runs once per step after the
 * data-parallel gradient all-reduce. Pipeline stages split the forward nodes into runs of about equal cost (FLOPs,
 * or the time the simulator's roofline gives them on the target device: Plan::stage_cost); a
 * backward or optimizer node runs on the earliest stage among its non-leaf inputs (the stage of the forward work it
 * differentiates), a parameter on the stage of its first reader. A value read on another stage is a transfer.
 *
 * Data parallel: each stage's gradients are all-reduced over the replicas in buckets (compiler/gradient_buckets.h),
 * cut along the order the backward pass computes them, `bucket_bytes` of FP32 at most; the runtime's data-parallel
 * training (runtime/gradient_sync.h) cuts the same buckets. `gradient_wire_bytes` is what one gradient element costs
 * on the wire: 4 (FP32, the default, as `dojo train`), 2 (BF16) or 1 (cfp8_152), `--grad-compression` in both.
 *
 * Elementwise chains are fused as the runtime fuses them (fusion_groups), and the simulator times each group as one
 * pass over memory.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dojo/autodiff/training.h"
#include "dojo/compiler/build_step.h"
#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/compiler/gradient_buckets.h"
#include "dojo/compiler/tensor_parallel.h"

namespace dojo::compiler {

struct Strategy {
    int dp = 1;               ///< data-parallel replicas
    int tp = 1;               ///< tensor-parallel devices per stage
    int pp = 1;               ///< pipeline stages
    int micro_batches = 1;    ///< per replica per step (1F1B schedule)
    /// Model chunks per pipeline device (vp=N, Megatron-LM's interleaved 1F1B, Narayanan et al. 2021 sec. 2.2.2):
    /// each device runs its stage as vp chunks in the interleaved order, shrinking the bubble vp-fold for vp times
    /// the pipeline sends. Needs pp > 1 and micro_batches a multiple of pp.
    int virtual_stages = 1;
    bool zero = false;        ///< optimizer state sharded over the dp replicas (ZeRO stage 1; compiler/recompute.h)
    bool recompute = false;   ///< activations recomputed in the backward pass (compiler/recompute.h)
    /// With recompute: only attention's score tensors (Q K^T, its scaling and mask, the softmax, attention over V)
    /// are recomputed, Megatron-LM's selective recomputation (`recompute=selective`); else every activation from
    /// checkpoints (`recompute=full`, or `recompute=1`).
    bool selective = false;
    bool sp = false;          ///< sequence parallelism over the tp group (compiler/tensor_parallel.h; tp > 1)
    int devices() const { return dp * tp * pp; }
    /// "dp=4,tp=8,pp=2,mb=16", then ",vp=2", ",sp=1", ",zero=1", ",recompute=1" (full) or ",recompute=selective"
    /// when set
    std::string to_string() const;
    bool operator==(const Strategy&) const = default;
};

/// Parses "dp=4,tp=8,pp=2[,mb=16][,vp=2][,sp=1][,zero=1][,recompute=0|1|full|selective]" (keys in any order, each at
/// most once; missing counts are 1, missing switches 0; recompute=1 is full). UsageError otherwise.
Strategy parse_strategy(std::string_view text);

/// Micro-batches whose activations pipeline stage `stage` holds at its fullest, in units of one micro-batch's
/// activations of the whole stage: under 1F1B min(pp - stage, micro_batches); interleaved (vp > 1), the warm-up of
/// (pp - stage - 1) * 2 + (vp - 1) * pp chunk forwards plus one, each 1/vp of the stage (Megatron-LM's schedule).
double micro_batches_in_flight(const Strategy& strategy, int stage);

/// What pipeline stages balance, per forward node: its cost on one device with its work divided by `share` (tp for
/// nodes whose work the tensor-parallel group divides, else 1). The simulator passes its roofline time on the target
/// device (sim/op_time.h: stage_cost), so memory-bound ops weigh what they take; unset, stages balance FLOPs.
using NodeCost = std::function<double(const ir::Graph& graph, ir::NodeId node, double share)>;

struct Plan {
    std::string model;             ///< the model's name (its spec or file), for reports
    StepFactory rebuild;           ///< builds the same step at another batch size (build_step.h)
    NodeCost stage_cost;           ///< what lay_out balances stages by (empty: FLOPs)
    Strategy strategy;
    /// The step's precision (Step::precision): its RoundTo/RoundGrad nodes are in the graph; the simulator's storage
    /// widths and matrix rates follow it (sim/op_time.h)
    Precision precision = Precision::Fp32;
    std::int64_t global_batch = 0; ///< samples per step over all replicas
    std::int64_t micro_batch = 0;  ///< samples per micro-batch (the graph's batch)
    autodiff::TrainingGraph step;  ///< one micro-batch's forward, backward and the optimizer update
    ir::NodeId last_forward;       ///< the loss: nodes up to it are the forward pass
    TensorParallel tensor;
    std::vector<bool> live;        ///< per node: needed by the loss, a gradient or an update (the rest is skipped)
    std::vector<int> stage;        ///< per node: its pipeline stage; -1 for nodes that are not live
    std::vector<bool> per_step;    ///< per node: runs once per step (the optimizer), not once per micro-batch
    std::vector<bool> saved;       ///< per node: a forward value read by the backward pass (kept until then)
    struct Transfer {
        ir::NodeId node;           ///< the value sent
        int from = 0, to = 0;      ///< stages
        bool forward = true;       ///< read by the forward pass (activations) or by the backward pass (gradients)
        double bytes = 0;          ///< per device per micro-batch
    };
    std::vector<Transfer> transfers;
    std::size_t bucket_bytes = std::size_t{8} << 20;  ///< FP32 bytes per gradient bucket at most
    double gradient_wire_bytes = 4;                    ///< per gradient element on the wire
    std::vector<std::vector<GradientBucket>> gradient_buckets;  ///< [stage]: in the order they complete
    /// The elementwise fusion pass's groups (fuse_elementwise.h), as the runtime forms them: the loss, gradients,
    /// updated values and values sent to another stage are materialized, and with dp > 1 a gradient ends its group
    /// (it is all-reduced as soon as it exists). A group stays within one stage, one rhythm (per micro-batch or per
    /// step) and one tensor-parallel layout; candidates that would cross one are left unfused.
    std::vector<FusionGroup> fusion_groups;
    /// Activation recomputation (recompute.h), when strategy.recompute; otherwise empty.
    struct Recomputation {
        std::vector<bool> checkpoint;          ///< per node: kept from its forward task to its backward task
        std::vector<int> segment;              ///< per node: its segment within its stage (forward nodes), else -1
        std::vector<int> segments;             ///< [stage]: how many; 0 where recomputing saves nothing
        std::vector<double> checkpoint_bytes;  ///< [stage]: per device per micro-batch (F32)
        std::vector<double> segment_bytes;     ///< [stage]: the largest segment's saved values (F32, one micro-batch)
        /// Selective: per node, recomputed in its backward task (an attention core's nodes); otherwise empty.
        std::vector<bool> recomputed;
    };
    Recomputation recomputation;
};

/// How lay_out runs its passes.
struct CompileOptions {
    /// Check the graph (ir::verify) before the passes and the Plan (verify_plan.h) after each; on in debug builds
    /// and in the tests, which pass it explicitly.
#ifdef NDEBUG
    bool verify = false;
#else
    bool verify = true;
#endif
    /// Called after each pass with its name and the Plan so far (`dojo plan --dump-pass`, golden tests).
    std::function<void(std::string_view pass, const Plan& plan)> after_pass;
};

/// One pass of the compile pipeline: a name (the dump's, compiler/dump.h) and what it decides.
struct CompilePass {
    std::string_view name;
    void (*run)(Plan& plan);
};

/// The passes lay_out runs, in order, each reading what the ones before decided:
///   layouts    tensor-parallel layouts and sequence parallelism (tensor_parallel.h)      -> tensor
///   liveness   what the loss, gradients and updates need                                -> live
///   stages     pipeline stages (least largest stage cost, cut where few bytes cross)    -> stage
///   transfers  per-step nodes, values saved for backward, values crossing stages        -> per_step, saved, transfers
///   fusion     elementwise groups as the runtime forms them (fuse_elementwise.h)        -> fusion_groups
///   recompute  activation checkpoints, when strategy.recompute (recompute.h)            -> recomputation
///   buckets    gradient buckets per stage (gradient_buckets.h)                          -> gradient_buckets
const std::vector<CompilePass>& compile_passes();

/// Builds the step for one micro-batch with `build` (build_step.h: the same builder `dojo train` uses) and lays it
/// out for `strategy`. `global_batch` must be a multiple of dp * micro_batches, and pp at most the number of
/// forward nodes; UsageError says what to change.
Plan make_plan(StepFactory build, std::string model, std::int64_t global_batch, const Strategy& strategy,
               NodeCost stage_cost = {}, const CompileOptions& options = {});

/// The same for a catalog spec or an .onnx file at `precision` (make_policy's, seed 0: the step `dojo train` runs)
/// with `optimizer`.
Plan make_plan(std::string_view model, std::int64_t global_batch, const Strategy& strategy,
               const autodiff::OptimizerConfig& optimizer, NodeCost stage_cost = {},
               Precision precision = Precision::Fp32);

/// Per node of `graph`: a value computed from fills, constants and one-element inputs only (a LayerNorm's 1/n, an
/// attention scale, the optimizer's step size from the learning rate): every device computes it for itself, so a
/// stage that reads one computed on another stage receives nothing (no transfer).
std::vector<bool> computed_locally(const ir::Graph& graph);

/// Cuts each stage's gradients into buckets of at most `bucket_bytes` (sets plan.bucket_bytes); lay_out does it
/// with plan.bucket_bytes. UsageError for a size below 4 bytes.
void bucket_gradients(Plan& plan, std::size_t bucket_bytes);

/// Lays `plan`'s training graph out again for `strategy` by running compile_passes() in order, reusing the graph:
/// strategies with the same micro-batch size share one build. UsageError if the micro-batch size would change.
void lay_out(Plan& plan, const Strategy& strategy, const CompileOptions& options = {});

}  // namespace dojo::compiler
