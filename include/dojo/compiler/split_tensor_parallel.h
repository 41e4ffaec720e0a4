/** \file
 * split_tensor_parallel: the program each device of a tensor-parallel group runs, from the layouts of
 * compiler/tensor_parallel.h, so that a runtime can execute a tensor-parallel plan device by device with real
 * all-reduces (runtime/functional_sim.h) and check the layouts the simulator times.
 *
 * Each device's graph holds every live node of the training graph at its local shape: a value split along an axis
 * holds 1/tp of it (rank r the r-th contiguous block), a replicated value all of it. Leaves are that device's block
 * of the training leaf (`Leaf::split_axis`). Where a split computation reads a replicated value whole, the device
 * slices its block out (a Slice node, no communication); attributes that carry shapes (Reshape, BroadcastTo, Fill,
 * Slice along an untouched split axis) take the local shape. After each node TensorParallel::all_reduces lists (a
 * contraction over the split axis: partial sums), the device's value is summed over the group before anything reads
 * it (`all_reduce_after`, in node order; every device has the same list).
 *
 * LogSoftmax along a split last axis (Megatron's vocabulary-parallel cross-entropy) is computed stably without a max
 * all-reduce: each device's log-sum-exp of its block is placed in its slot of a [..., tp] tensor that the group
 * sums, whose own log-sum-exp is the whole axis's.
 *
 * A Gather from a table split by rows (a vocabulary-parallel embedding) looks up, on each device, the ids its rows
 * hold (ids remapped and masked through constant tables, zeros elsewhere; the layouts then all-reduce it), and its
 * adjoint adds only those rows' gradients.
 *
 * A value split along an axis that a Slice later cuts into g equal parts (a fused QKV projection cut into q, k and v)
 * is held as Megatron lays it out, as the layouts assume: each device holds its block of each part
 * (`Leaf::groups`), so its slice of part p is its block of p; the values whose split axes line up with it (its bias,
 * weight, gradients, optimizer state) are held the same way.
 *
 * Sequence parallelism (sp=1, TensorParallel::sequence_split): a value split along the tokens is held as a block of
 * its leading axis (the micro-batch's samples lead every token-holding value; any contiguous share of the tokens
 * gives the same per-token values). Such a node reads the blocks of its inputs (of a replicated, all-reduced input:
 * its block, i.e. a reduce-scatter); a node that needs a sequence-split value whole reads its all-gather (the blocks
 * each placed at their rows in zeros and summed over the group, exact); a ReduceSum over the tokens (a layer norm's
 * weight gradient) sums its block and all-reduces.
 *
 * Every node added to a device's graph (slices, all-gathers, the split log-softmax's helpers) names as its origin the
 * training-graph node it serves (the reader; an all-gather is made once per stage that reads the value, by its first
 * reader there), so that pipeline stages can be cut from the device's graph by the origins' stages
 * (compiler/insert_transfers.h) and only blocks of sequence-split values travel between stages.
 *
 * What it cannot split is a UsageError naming the node: convolutions or pooling of split values, constants along a
 * split axis, slices along a split axis other than into equal parts, a leading axis of a sequence-split value that
 * tp does not divide, and the nodes TensorParallel::conflicts lists.
 * Preconditions: lay_out has run. The plan may have any pp, dp and micro-batches: a device's program is the whole
 * training step at its local shapes, cut into stages afterwards.
 */
#pragma once

#include <vector>

#include "dojo/compiler/plan.h"

namespace dojo::compiler {

struct DeviceProgram {
    int rank = 0;
    ir::Graph graph;
    std::vector<ir::NodeId> origin;            ///< [node of `graph`]: the training-graph node it is or serves
    std::vector<ir::NodeId> local;             ///< [training node]: its node in `graph` (invalid where not live)
    struct Leaf {
        ir::NodeId here;                       ///< a Parameter, State or Input leaf of `graph`
        ir::NodeId training;                   ///< the training-graph leaf whose block it holds
        int split_axis = -1;                   ///< -1: all of it
        std::int64_t groups = 1;               ///< the axis holds this many equal parts; the block is its share of each
    };
    std::vector<Leaf> leaves;
    std::vector<ir::NodeId> all_reduce_after;  ///< nodes of `graph` summed over the group once computed
};

/// One program per rank 0 .. tp - 1.
std::vector<DeviceProgram> split_tensor_parallel(const Plan& plan);

/// The split axis of training-graph leaf `leaf` on the devices (-1: replicated): a parameter's layout, or for an
/// optimizer state the layout of the value the update assigns to it.
int leaf_split_axis(const Plan& plan, ir::NodeId leaf);

}  // namespace dojo::compiler
