/** \file
 * Tensor (intra-layer) parallelism over a group of `tp` devices, found by propagating layouts through a training
 * graph (split_tensor_parallel.h turns the layouts into each device's program).
 *
 * Every value is either replicated on all devices of the group or split evenly along one axis. Propagation runs in
 * node order and follows Megatron-LM's scheme without knowing about layers:
 *   - a parameter takes its layout from its first use: the right operand of a MatMul whose left operand is
 *     replicated splits by columns (its last axis), one whose left operand is split along the contraction splits by
 *     rows; an embedding table read by Gather splits by rows (vocabulary-parallel); a parameter added to or
 *     multiplied with a split value splits the same way; anything else (convolutions, norms on replicated values)
 *     stays replicated;
 *   - a MatMul that contracts over the split axis, a ReduceSum over it and a Gather from a row-split table produce
 *     partial sums on every device: an all-reduce of the result (`all_reduces`) makes them replicated again;
 *     LogSoftmax along the split axis all-reduces its row maxima and sums;
 *   - elementwise ops keep a split; a replicated full-size operand is sliced locally for free; layout ops map the
 *     split axis (Reshape keeps it where the number of elements before it is unchanged, as when heads are split);
 *   - where inputs disagree (split along different axes), the node runs replicated and is listed in `conflicts`.
 * A node's work divides by `tp` when its result is split or partial; replicated nodes run in full on every device.
 * With tp = 1 everything is replicated and nothing is communicated.
 *
 * Sequence parallelism (Korthikanti et al. 2022, arXiv 2205.05198; `split_sequence`) goes further for token
 * models: the activations the scheme above leaves replicated between the tensor-parallel regions (residual stream,
 * layer norms, dropout, and their gradients) are split along the tokens instead, each device holding and computing
 * 1/tp of them. Each all-reduce becomes a reduce-scatter after the region and an all-gather before the next, the
 * same bytes on a ring; the all-gathered input of a column-parallel MatMul is a temporary, not kept.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "dojo/ir/graph.h"

namespace dojo::compiler {

struct Layout {
    int split_axis = -1;  ///< -1: replicated on every device of the group; else split evenly along this axis
    bool split() const { return split_axis >= 0; }
    bool operator==(const Layout&) const = default;
};

struct TensorParallel {
    int tp = 1;
    std::vector<Layout> layout;      ///< per node, by index
    std::vector<bool> divided;       ///< per node: its work is shared by the group (split or partial result)
    struct AllReduce {
        ir::NodeId node;             ///< after this node
        double bytes = 0;            ///< of the reduced tensor on each device (F32, in the graph's types)
    };
    std::vector<AllReduce> all_reduces;  ///< in node order
    std::vector<ir::NodeId> conflicts;   ///< nodes run replicated because their inputs' layouts disagree
    std::vector<bool> sequence_split;    ///< per node: split along the tokens by sequence parallelism (else empty)

    /// Bytes of `node`'s value held by one device of the group.
    double bytes_per_device(const ir::Graph& graph, ir::NodeId node) const;
};

/// Lays out every node of `graph` (a training graph, or any graph) over `tp` devices. tp >= 1.
TensorParallel shard_tensor_parallel(const ir::Graph& graph, int tp);

/// Tokens per micro-batch of a token model: the element count of its first integer input of rank 2 ([batch,
/// sequence]); 0 for a model without one (images).
std::int64_t token_count(const ir::Graph& graph);

/// Whether a tensor of `shape` holds one row per token of the graph's token input [batch, sequence]: its leading
/// axes are [batch, sequence] or [batch * sequence]. False for a model without a token input.
bool holds_tokens(const ir::Graph& graph, const ir::Shape& shape);

/// Sequence parallelism on a laid-out `tensor`: every replicated, undivided value computed from the data that
/// holds_tokens is split along the tokens, its bytes and work divided by tp. Parameter-shaped values (weight gradients, optimizer updates) stay as they are.
/// UsageError when tp is 1 or the graph has no token input.
void split_sequence(TensorParallel& tensor, const ir::Graph& graph);

}  // namespace dojo::compiler
