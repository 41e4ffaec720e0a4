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
 * Memory: with reuse_buffers, a node's storage goes back to a pool after its last consumer has run and is handed to
 * the next node of the same element count (liveness-based reuse, decided by the graph order, so every step reuses
 * the same storage in the same way; after the first step nothing is allocated). Leaves, graph outputs and the
 * nodes named in `keep` hold their storage for good; any other node's value is only valid until its last consumer
 * has run. Storage comes in whole per-node vectors, not offsets into one arena: a first step, not a compiler pass.
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

struct ExecutorOptions {
    Kernels kernels = Kernels::Fast;
    bool reuse_buffers = true;
    std::vector<ir::NodeId> keep;  ///< non-leaf, non-output nodes whose values the caller reads after run()
};

class Executor {
public:
    /// Plans buffers for `graph` (which must outlive the executor) and prepares the fast kernels. Leaves start at 0.
    explicit Executor(const ir::Graph& graph, ExecutorOptions options = {});
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

    /// Bytes of storage the executor holds once a step has run (leaves, kept nodes and the reuse pool's peak).
    std::size_t bytes() const;

    /// How many nodes run a fast kernel.
    std::size_t fast_kernel_count() const;

private:
    const ir::Graph& graph_;
    std::vector<ir::Buffer<float>> values_;
    std::unique_ptr<OneDnnKernels> fast_;  // null with Kernels::Reference
    std::vector<std::vector<std::uint32_t>> release_after_;  // [i]: nodes whose last consumer is node i
    std::vector<bool> pooled_;                                // node storage comes from / returns to the pool
    std::vector<std::vector<std::vector<float>>> pool_;       // free storage by size class (index into sizes_)
    std::vector<std::size_t> sizes_;                          // the distinct element counts of pooled nodes
    std::vector<std::uint32_t> size_class_;                   // node -> index into sizes_
    std::size_t peak_pool_bytes_ = 0;
};

}  // namespace dojo::runtime
