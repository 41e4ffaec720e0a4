/** \file
 * Functional simulation: the runtime executes a partitioned Plan shard by shard, the way the machine would run it,
 * with every transfer a real copy and every collective a real reduction, so that its result can be held against
 * the unpartitioned training step. This is what proves a partitioning right: the plan the simulator times is a plan
 * that runs.
 *
 * A step of a plan with dp replicas, pp stages, tp devices per stage and m micro-batches per replica runs the stage
 * programs of insert_transfers() (with tp > 1, each device's: compiler/split_tensor_parallel.h cuts the step into
 * the devices' programs at local shapes, with sequence parallelism where the plan has sp=1):
 *   for each replica r, its micro-batches k (samples (r * m + k) * b .. + b of the global batch, b the micro-batch)
 *     go through the stages' Forward and Backward programs in the order of the pipeline schedule
 *     (compiler/schedule.h, 1F1B: several micro-batches in flight, each with its own values), each program as soon
 *     as what it receives exists; every value a program receives is copied from the output of the program that
 *     computed it for the same (r, k) on the same device; with vp > 1 (interleaved 1F1B) the step is cut into
 *     pp * vp chunks by the same balance as stages (compiler::lay_out with pp * vp stages; chunk c runs on device
 *     c mod pp) and the chunks' programs run in the interleaved order, so the result is that of pp * vp stages
 *     under 1F1B, bit for bit, reached in another order (the simulator times each chunk as 1/vp of its device's
 *     stage);
 *     the tp devices run each program side by side (one thread each) and, at each of its all-reduce points, meet
 *     and take the sum of their values in rank order;
 *   each gradient is summed over the micro-batches in order k = 0 .. m-1, then all-reduced over the replicas in
 *   order r = 0 .. dp-1 and divided by dp * m (the unpartitioned loss is the mean over the global batch, each
 *   micro-batch's the mean over its samples);
 *   each replica's Update programs then run on its own copy of the parameters and optimizer state (each device on
 *   its block); a parameter read on a stage other than its own is copied there from its owner every micro-batch
 *   (counted as a transfer). The result is put back together from replica 0's devices' blocks.
 * With zero=1 (ZeRO stage 1) each replica owns a contiguous 1/dp of every gradient, parameter and optimizer state:
 * it receives only its share of each mean gradient (a reduce-scatter; the rest is NaN, so a leak would show), keeps
 * only its share of the state, updates its share (the optimizer's ops are elementwise; UsageError otherwise), and
 * the parameters are all-gathered after.
 * State updates of the forward pass (BatchNorm running statistics) take the last micro-batch's value.
 *
 * Equality: a pipeline split alone (dp = m = 1) computes every value exactly as the unpartitioned step (same
 * kernels, same reduction order), so the result is bit-identical; with micro-batches, replicas or a tensor-parallel
 * split, sums are taken in another order (the batch sums of weight gradients, the loss, the contractions over a
 * split axis), equal up to rounding (the tests state tolerances).
 * Kernels are the op table's reference kernels (thread-count independent); numbers are FP32.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/compiler/place_spatial.h"
#include "dojo/compiler/plan.h"

namespace dojo::proof {

/// What a step starts from: parameters and optimizer states in the training graph's order, the global batch's data
/// inputs by name (whole tensors, the batch leading), and the learning rate.
struct StepInputs {
    std::vector<std::vector<float>> parameters;
    std::vector<std::vector<float>> states;
    std::map<std::string, std::vector<float>> data;
    float learning_rate = 0.01f;
};

struct StepOutcome {
    std::vector<std::vector<float>> parameters;  ///< after the update (replica 0's)
    std::vector<std::vector<float>> states;
    double loss = 0;                             ///< mean over the global batch
    int pipeline_chunks = 1;                     ///< the stages it ran (pp; pp * vp interleaved; layers, placed)
    std::int64_t transfers = 0;                  ///< values copied between stages (each receive of each run)
    double transfer_bytes = 0;
    /// Gradients all-reduced (zero=1: reduce-scattered) over the replicas, plus the tensor-parallel group's
    /// all-reduces each time one runs (per micro-batch, per replica).
    std::int64_t all_reduces = 0;
    double all_reduce_bytes = 0;                 ///< per replica or device
    std::int64_t all_gathers = 0;                ///< zero=1: parameters all-gathered after the sharded update
    double all_gather_bytes = 0;
    /// Every replica ended with replica 0's parameters, bit for bit, and the devices of a tensor-parallel group
    /// computed the same loss and the same replicated parameters.
    bool replicas_agree = true;
};

/// Runs the whole training graph of `plan` (which must be unpartitioned: dp = tp = pp = m = 1) once, as `dojo train`
/// does: the reference a partitioned run is held against. UsageError for a partitioned plan or wrong inputs.
StepOutcome run_unpartitioned(const compiler::Plan& plan, const StepInputs& inputs);

/// Runs one step of `plan` stage program by stage program (see the file comment); with recompute=1 each backward
/// program recomputes its stage's forward values from the checkpoints. UsageError for inputs that do not match the
/// plan's graph, or a tensor-parallel layout the device programs cannot hold (split_tensor_parallel names the node).
StepOutcome run_partitioned(const compiler::Plan& plan, const StepInputs& inputs);

/// Runs one step of `plan` as `placement` (compiler/place_spatial.h, made from `plan`) lays it on the cores: every
/// placed layer is a program of its own on its rectangle (its forward, backward and update nodes, as the placement
/// assigns them), every activation and gradient between layers is an explicit transfer between rectangles, and each
/// micro-batch streams through the layers in the placement's pieces (the step runs at micro-batches of
/// micro_batch / pieces: plan.model is built again at that size). The layers then run as run_partitioned runs
/// stages (forward layer by layer, backward in reverse, per piece; the update once). How a layer's work is divided
/// among the cores of its rectangle is not executed separately: the rectangle runs it as one program.
/// Recomputation, planned per stage, is not applied (every activation is kept). Equality: bit for bit with one piece
/// and no replicas, as run_partitioned with stages; with pieces, the batch sums are taken piece by piece.
/// UsageError for a placement that does not fit or whose stages stream in different numbers of pieces.
StepOutcome run_placed(const compiler::Plan& plan, const compiler::SpatialPlacement& placement,
                       const StepInputs& inputs);

/// Seeded inputs for `plan`'s graph at `global_batch`: parameters uniform in [-0.1, 0.1), states 0, float data
/// inputs uniform in [0, 1), integer inputs (token ids, token labels) whole numbers below the vocabulary (the rows
/// of the smallest embedding table a Gather reads; `classes` where there is none); a float input named "target"
/// (class labels, one-hot) gets one 1 per row along its last axis.
StepInputs seeded_inputs(const compiler::Plan& plan, std::int64_t global_batch, std::int64_t classes,
                         std::uint64_t seed);

}  // namespace dojo::proof
