/** \file
 * The executor: runs a graph step after step on the CPU with every node's buffer allocated once, at
 * construction (first-touch memory is expensive on these machines; nothing is allocated per step).
 *
 * Leaves (Input, Parameter, State) are written by the caller through value(); run() computes every other node in
 * graph order with the op table's kernels; apply() performs a training graph's assignments (new parameter and
 * optimizer-state values become the leaves' values for the next step).
 *
 * The executor decides nothing: the CPU lowering (runtime/exec_plan.h: lower_cpu) chooses every node's kernel,
 * layout, fused group and arena offset, and the executor runs that ExecPlan. What the lowering chooses:
 *
 * Kernels: with Kernels::Fast, Conv2d, its adjoints and MatMul run oneDNN (runtime/onednn_kernels.h: same results up
 * to summation order), max-pooling and its adjoint run vectorised (runtime/max_pool.h: the same bits), and chains of
 * elementwise maps run fused (runtime/fused_elementwise.h: the same values, bit for bit, without storing the
 * intermediates; a lone map or sum of a large tensor runs as a group of one), and a RoundGrad (the identity forward)
 * is its input's buffer, unless the caller reads it (kept, an output or a sync point); a CFloat RoundTo of a value a
 * fused group writes takes the max-abs the group measured while writing it, and a CFloat8 RoundTo only convolutions
 * read (as BF16) writes their BF16 copy of it instead of its FP32 value (runtime/round_to_bf16_copy.h). Everything
 * else, and everything with Kernels::Reference, runs the op table's reference kernels (the definition of each op;
 * results independent of the thread count). With Kernels::Fast an activation that every kernel touching it can take
 * in oneDNN's channel-blocked layout (the convolutions, fused groups that run in the blocked order, max-pooling, a
 * RoundTo no group runs: runtime/round_channel_blocked.h) is stored in that layout, so no reorder runs around its
 * convolutions (runtime/channel_blocked.h; the same values, bit for bit). A group's, a pooling node's and a
 * rounding's tensors are blocked all or none. Such a buffer is never one the caller reads (a leaf, output, kept node
 * or sync point).
 *
 * Memory: one arena per graph, allocated and zeroed at construction, every stored value at a fixed offset in it
 * (runtime/arena_plan.h). With reuse_buffers, a value lives from the position that computes it to its last reader
 * and shares bytes with values whose lifetimes do not overlap (liveness-based reuse, decided by the run order, so
 * every step uses the same places and nothing is allocated while running). Leaves, graph outputs and the nodes named
 * in `keep` hold their bytes for good; any other node's value is only valid until its last consumer has run, and a
 * node no output or kept node depends on is not computed at all (its buffer is empty). The buffers are bound to the
 * arena (ir/storage.h): assigning to value(id).data copies into place and must keep the size.
 *
 * Profiling: with `profile`, run() also measures the wall time of every node and sums it by op kind (profile()), so a
 * user can see where a step's time goes (`dojo train --profile`), and times the oneDNN kernels' reorders apart
 * (plan().onednn->reorder_seconds()). Off by default: the clock reads cost ~50 ns a node.
 */
#pragma once

#include <cstdlib>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dojo/autodiff/training.h"
#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"
#include "dojo/runtime/exec_plan.h"

namespace dojo::runtime {

class FusedElementwise;

/// Where the steps' time went, for one op kind and kernel.
struct OpProfile {
    std::string op;         ///< the op kind; "elementwise" for maps run in fused groups
    std::string kernel;     ///< the lowering's NodeKernel (exec_plan.h: to_string), "fused" for a group's members
    std::size_t nodes = 0;  ///< nodes of this kind in the graph
    std::uint64_t runs = 0;  ///< node executions summed over the steps
    double seconds = 0;
};

class Executor {
public:
    /// Lowers `graph` (which must outlive the executor) with lower_cpu(graph, options) and runs that plan.
    explicit Executor(const ir::Graph& graph, ExecutorOptions options = {});
    /// Runs `plan` (exec_plan.h): allocates its arena once and binds every buffer; leaves start at 0. `options`
    /// gives what the plan was lowered with: its callbacks (sync points, agree_max_abs) and profile.
    Executor(ExecPlan plan, const ExecutorOptions& options);
    ~Executor();
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    /// The buffer of node `id`: write leaves before run(), read any node after it.
    ir::Buffer<float>& value(ir::NodeId id) { return values_[id.index]; }
    const ir::Buffer<float>& value(ir::NodeId id) const { return values_[id.index]; }

    /// Computes every non-leaf node the plan runs, in graph order.
    void run();

    /// For each assignment, copies the value node into the target leaf (after run()).
    void apply(std::span<const autodiff::Assignment> assignments);

    /// What it runs.
    const ExecPlan& plan() const { return plan_; }
    /// Bytes of the arena: every value the executor stores (leaves, kept nodes and the reused ones).
    std::size_t bytes() const { return plan_.memory.arena_bytes; }
    /// The memory plan's lower bound: the most bytes live at one position of run() (bytes() is at least this).
    std::size_t peak_live_bytes() const { return plan_.memory.peak_live_bytes; }

    /// The position in run() at which node `id` is computed (graph order, or its fused group's): sync points
    /// complete in the order of their positions.
    std::uint32_t position(ir::NodeId id) const { return plan_.runs_at[id.index]; }

    /// How many nodes run a fast kernel.
    std::size_t fast_kernel_count() const;
    /// How many values are stored channel-blocked (ExecutorOptions::channel_blocked).
    std::size_t channel_blocked_count() const;
    /// Whether node `id`'s value is stored channel-blocked (runtime/channel_blocked.h), not in the plain layout.
    bool is_channel_blocked(ir::NodeId id) const { return plan_.blocked[id.index]; }
    /// How many RoundTo nodes write their readers' BF16 copy, not their FP32 value (ExecutorOptions::bf16_copies).
    std::size_t bf16_copy_count() const;
    /// How many fused elementwise groups run (runtime/fused_elementwise.h).
    std::size_t fused_group_count() const { return fused_.size(); }

    /// With ExecutorOptions::profile, the time of every run() so far by op kind (and fast/reference), most first;
    /// empty without it.
    std::vector<OpProfile> profile() const;
    /// With ExecutorOptions::profile, [node]: the seconds its kernel took over every run() so far (a fused group's at
    /// the node it runs at; 0 for nodes that run nothing).
    const std::vector<double>& node_seconds() const { return node_seconds_; }
    /// Starts the profile again (after warm-up runs).
    void reset_profile();

private:
    void bind_values();
    void round_shard(ir::NodeId id);
    void run_fast_pool(ir::NodeId id);
    void run_round(ir::NodeId id);  // a RoundTo on a blocked tensor, writing a BF16 copy, or whose max-abs a fused
                                    // group measured

    const ir::Graph& graph_;
    ExecPlan plan_;
    std::vector<ir::Buffer<float>> values_;
    std::vector<std::unique_ptr<FusedElementwise>> fused_;  // [group]: plan_.groups, ready to run
    std::vector<std::uint16_t*> bf16_copy_;                 // [RoundToBf16Copy node]: the copy it writes
    std::function<void(std::size_t)> on_computed_, before_read_;
    std::function<float(float)> agree_max_abs_;
    static constexpr std::size_t kArenaAlignmentBytes = 64;  // a cache line, and what oneDNN prefers
    struct FreeArena {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, FreeArena> arena_;  // plan_.memory.arena_bytes, aligned to kArenaAlignmentBytes
    bool profiling_ = false;
    std::vector<double> node_seconds_;  // [node]: wall time summed over the runs (profiling only)
    std::uint64_t runs_ = 0;
};

}  // namespace dojo::runtime
