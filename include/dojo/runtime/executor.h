/** \file
 * The executor: runs a graph step after step on the CPU with every node's buffer allocated once, at
 * construction (first-touch memory is expensive on these machines; nothing is allocated per step).
 *
 * Leaves (Input, Parameter, State) are written by the caller through value(); run() computes every other node in
 * graph order with the op table's kernels; apply() performs a training graph's assignments (new parameter and
 * optimizer-state values become the leaves' values for the next step).
 *
 * Non-goals for now: liveness-based buffer reuse (one buffer per node), fast kernels (reference kernels run).
 */
#pragma once

#include <span>
#include <vector>

#include "dojo/autodiff/training.h"
#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"

namespace dojo::runtime {

class Executor {
public:
    /// Allocates a buffer for every node of `graph`, which must outlive the executor. Leaves start at zero.
    explicit Executor(const ir::Graph& graph);

    /// The buffer of node `id`: write leaves before run(), read any node after it.
    ir::Buffer<float>& value(ir::NodeId id) { return values_[id.index]; }
    const ir::Buffer<float>& value(ir::NodeId id) const { return values_[id.index]; }

    /// Computes every non-leaf node, in graph order.
    void run();

    /// For each assignment, copies the value node into the target leaf (after run()).
    void apply(std::span<const autodiff::Assignment> assignments);

    /// Bytes held by all buffers (the figure a static memory plan will improve on).
    std::size_t bytes() const;

private:
    const ir::Graph& graph_;
    std::vector<ir::Buffer<float>> values_;
};

}  // namespace dojo::runtime
