/** \file
 * Functional simulation: the runtime executes a partitioned Plan shard by shard, the way the machine would run it,
 * with every transfer a real copy and every collective a real reduction, so that its result can be held against
 * the unpartitioned training step. This is what proves a partitioning right: the plan the simulator times is a plan
 * that runs.
 *
 * A step of a plan with dp replicas, pp stages and m micro-batches per replica (tp = 1: compiler/insert_transfers.h
 * cuts no tensor-parallel programs yet) runs the stage programs of insert_transfers():
 *   for each replica r and micro-batch k (samples (r * m + k) * b .. + b of the global batch, b the micro-batch):
 *     Forward programs of stages 0 .. pp-1, then Backward programs of stages pp-1 .. 0; every value a program
 *     receives is copied from the output of the program that computed it for the same (r, k);
 *   each gradient is summed over the micro-batches in order k = 0 .. m-1, then all-reduced over the replicas in
 *   order r = 0 .. dp-1 and divided by dp * m (the unpartitioned loss is the mean over the global batch, each
 *   micro-batch's the mean over its samples);
 *   each replica's Update programs then run on its own copy of the parameters and optimizer state; a parameter read
 *   on a stage other than its own is copied there from its owner every micro-batch (counted as a transfer).
 * With zero=1 (ZeRO stage 1) each replica owns a contiguous 1/dp of every gradient, parameter and optimizer state:
 * it receives only its share of each mean gradient (a reduce-scatter; the rest is NaN, so a leak would show), keeps
 * only its share of the state, updates its share (the optimizer's ops are elementwise; UsageError otherwise), and
 * the parameters are all-gathered after.
 * State updates of the forward pass (BatchNorm running statistics) take the last micro-batch's value.
 *
 * Equality: a pipeline split alone (dp = m = 1) computes every value exactly as the unpartitioned step (same
 * kernels, same reduction order), so the result is bit-identical; with micro-batches or replicas the batch sums of
 * weight gradients and the loss are taken in another order, equal up to rounding (the tests state tolerances).
 * Kernels are the op table's reference kernels (thread-count independent); numbers are FP32.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/compiler/plan.h"

namespace dojo::runtime {

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
    std::int64_t transfers = 0;                  ///< values copied between stages (each receive of each run)
    double transfer_bytes = 0;
    std::int64_t all_reduces = 0;                ///< gradients all-reduced (zero=1: reduce-scattered) over the replicas
    double all_reduce_bytes = 0;                 ///< per replica
    std::int64_t all_gathers = 0;                ///< zero=1: parameters all-gathered after the sharded update
    double all_gather_bytes = 0;
    bool replicas_agree = true;                  ///< every replica ended with replica 0's parameters, bit for bit
};

/// Runs the whole training graph of `plan` (which must be unpartitioned: dp = tp = pp = m = 1) once, as `dojo train`
/// does: the reference a partitioned run is held against. UsageError for a partitioned plan or wrong inputs.
StepOutcome run_unpartitioned(const compiler::Plan& plan, const StepInputs& inputs);

/// Runs one step of `plan` stage program by stage program (see the file comment); with recompute=1 each backward
/// program recomputes its stage's forward values from the checkpoints. UsageError for tp > 1 or sp (not
/// functionally simulated yet), or inputs that do not match the plan's graph.
StepOutcome run_partitioned(const compiler::Plan& plan, const StepInputs& inputs);

/// Seeded inputs for `plan`'s graph at `global_batch`: parameters uniform in [-0.1, 0.1), states 0, float data
/// inputs uniform in [0, 1), integer inputs (token ids, token labels) whole numbers below the vocabulary (the rows
/// of the smallest embedding table a Gather reads; `classes` where there is none); a float input named "target"
/// (class labels, one-hot) gets one 1 per row along its last axis.
StepInputs seeded_inputs(const compiler::Plan& plan, std::int64_t global_batch, std::int64_t classes,
                         std::uint64_t seed);

}  // namespace dojo::runtime
