/** \file
 * The executor: runs a graph step after step on the CPU with every node's buffer allocated once, at
 * construction (first-touch memory is expensive on these machines; nothing is allocated per step).
 *
 * Leaves (Input, Parameter, State) are written by the caller through value(); run() computes every other node in
 * graph order with the op table's kernels; apply() performs a training graph's assignments (new parameter and
 * optimizer-state values become the leaves' values for the next step).
 *
 * Kernels: with Kernels::Fast, Conv2d, its adjoints and MatMul run oneDNN (runtime/onednn_kernels.h: same results up
 * to summation order); everything else, and everything with Kernels::Reference, runs the op table's reference kernels
 * (the definition of each op; results independent of the thread count).
 *
 * Non-goal for now: liveness-based buffer reuse (one buffer per node).
 */
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "dojo/autodiff/training.h"
#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"

namespace dojo::runtime {

class OneDnnKernels;

enum class Kernels { Fast, Reference };
std::string_view to_string(Kernels kernels);

class Executor {
public:
    /// Allocates a buffer for every node of `graph`, which must outlive the executor, and prepares the fast kernels.
    /// Leaves start at zero.
    explicit Executor(const ir::Graph& graph, Kernels kernels = Kernels::Fast);
    ~Executor();
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    /// The buffer of node `id`: write leaves before run(), read any node after it.
    ir::Buffer<float>& value(ir::NodeId id) { return values_[id.index]; }
    const ir::Buffer<float>& value(ir::NodeId id) const { return values_[id.index]; }

    /// Computes every non-leaf node, in graph order.
    void run();

    /// For each assignment, copies the value node into the target leaf (after run()).
    void apply(std::span<const autodiff::Assignment> assignments);

    /// Bytes held by all buffers (the figure a static memory plan will improve on).
    std::size_t bytes() const;

    /// How many nodes run a fast kernel.
    std::size_t fast_kernel_count() const;

private:
    const ir::Graph& graph_;
    std::vector<ir::Buffer<float>> values_;
    std::unique_ptr<OneDnnKernels> fast_;  // null with Kernels::Reference
};

}  // namespace dojo::runtime
