/** \file
 * Fast CPU kernels from oneDNN (Debian's libdnnl 2.6) for the ops that dominate a training step: Conv2d with both
 * adjoints and MatMul. They are created once per node when an executor is built (primitive creation is slow; running
 * one is not) and run on the executor's buffers in place, in the IR's plain row-major layouts (NCHW, OIHW / GOIHW);
 * convolutions run in the blocked layouts oneDNN picks for them, reordered from and to the plain buffers through
 * scratch storage shared by all kernels.
 *
 * Contract: a fast kernel computes what the op's reference kernel computes (ir/op.h) up to summation order: oneDNN
 * blocks and vectorises the reductions, so results differ from the reference in the last bits, not more. They are
 * deterministic for a given thread count. A node the fast path cannot take (e.g. a MatMul whose batch dimensions
 * broadcast in a way oneDNN does not support) simply runs its reference kernel.
 */
#pragma once

#include <memory>
#include <vector>

#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"

namespace dojo::runtime {

class OneDnnKernels {
public:
    /// Prepares a kernel for every node of `graph` the fast path supports and `live` marks (indexed by node).
    OneDnnKernels(const ir::Graph& graph, const std::vector<bool>& live);
    ~OneDnnKernels();
    OneDnnKernels(const OneDnnKernels&) = delete;
    OneDnnKernels& operator=(const OneDnnKernels&) = delete;

    /// Whether node `id` has a fast kernel.
    bool has(ir::NodeId id) const;
    /// Marks the start of a step (an Executor::run): leaves may have changed, so no reordered copy is reused.
    void begin_step();
    /// Runs node `id`'s fast kernel on `values` (indexed by node), writing values[id].
    void run(ir::NodeId id, std::vector<ir::Buffer<float>>& values) const;
    /// How many nodes have a fast kernel.
    std::size_t count() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dojo::runtime
