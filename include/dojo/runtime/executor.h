/** \file
 * The executor: runs a graph step after step on the CPU with every node's buffer allocated once, at
 * construction (first-touch memory is expensive on these machines; nothing is allocated per step).
 *
 * Leaves (Input, Parameter, State) are written by the caller through value(); run() computes every other node in
 * graph order with the op table's kernels; apply() performs a training graph's assignments (new parameter and
 * optimizer-state values become the leaves' values for the next step).
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
 * user can see where a step's time goes (`dojo train --profile`). Off by default: the clock reads cost ~50 ns a node.
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
#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"
#include "dojo/runtime/arena_plan.h"

namespace dojo::runtime {

class OneDnnKernels;
class FusedElementwise;

enum class Kernels { Fast, Reference };
std::string_view to_string(Kernels kernels);

struct ExecutorOptions {
    Kernels kernels = Kernels::Fast;
    bool reuse_buffers = true;
    std::vector<ir::NodeId> keep;  ///< non-leaf, non-output nodes whose values the caller reads after run()
    bool profile = false;          ///< time every node (profile())
    bool fuse_elementwise = true;  ///< with Fast kernels and reuse_buffers: run chains of maps fused (same values)
    /// With Fast kernels and reuse_buffers: store activations the convolutions run on in their channel-blocked layout
    /// where every kernel touching them can (runtime/channel_blocked.h; same values, no reorders)
    bool channel_blocked = true;
    /// With Fast kernels and reuse_buffers: a CFloat8 RoundTo whose every reader is a oneDNN kernel reading it as one
    /// BF16 copy in the value's own layout writes that copy itself, not its FP32 value (runtime/round_to_bf16_copy.h;
    /// the same bits, no reorder)
    bool bf16_copies = true;
    /// Nodes the caller works on between their computation and their first reader, inside run() (data-parallel
    /// training all-reduces the gradients there). Each is stored, ends any fused group it is in, and run() calls
    /// on_computed(k) as soon as sync_points[k] has its value and before_read(k) just before the first node that
    /// reads it (the caller may rewrite the value then; not called for one only an output). A sync point no output
    /// needs is not computed and gets no callback. Both callbacks must be set if any sync point is.
    std::vector<ir::NodeId> sync_points{};
    std::function<void(std::size_t)> on_computed{};
    std::function<void(std::size_t)> before_read{};
    /// Data parallel: the Input leaves that hold this rank's shard of a batch split over ranks. Every RoundTo whose
    /// tensor derives from them and whose rounding sees the whole tensor (a CFloat bias, stochastic draws:
    /// ir/rounding.h) then rounds as one process holding the global batch would: with the max-abs that
    /// agree_max_abs(local max-abs) returns (the maximum over the ranks, a collective every rank reaches in the same
    /// order) and at global element indices, this rank's tensor being elements [shard_index * n, shard_index * n + n)
    /// of the global one. That holds when the batch is each such tensor's outermost dimension (true of the models
    /// the frontend builds: the batch leads every activation and activation gradient); the constructor follows it
    /// through the graph (transposes must keep dimension 0 first, reshapes whole samples per row) and throws
    /// dojo::Error naming the node if a rounded tensor derives from the batch but does not lead with it.
    std::vector<ir::NodeId> batch_shard_inputs{};
    std::uint64_t shard_index = 0;
    std::function<float(float)> agree_max_abs{};
};

/// Where the steps' time went, for one op kind and kernel.
struct OpProfile {
    std::string op;         ///< the op kind; "elementwise" for maps run in fused groups
    std::string kernel;     ///< "onednn", "onednn-bf16" (operands read as BF16), "vectorised", "fused", "alias" (a
                            ///< RoundGrad that is its input's buffer), "blocked" (a RoundTo on a channel-blocked
                            ///< tensor), "to-bf16-copy" (a RoundTo writing its readers' BF16 copy) or "reference"
    std::size_t nodes = 0;  ///< nodes of this kind in the graph
    std::uint64_t runs = 0;  ///< node executions summed over the steps
    double seconds = 0;
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

    /// Bytes of the arena: every value the executor stores (leaves, kept nodes and the reused ones).
    std::size_t bytes() const;
    /// The memory plan's lower bound: the most bytes live at one position of run() (bytes() is at least this).
    std::size_t peak_live_bytes() const { return plan_.peak_live_bytes; }

    /// The position in run() at which node `id` is computed (graph order, or its fused group's): sync points
    /// complete in the order of their positions.
    std::uint32_t position(ir::NodeId id) const { return runs_at_[id.index]; }

    /// How many nodes run a fast kernel.
    std::size_t fast_kernel_count() const;
    /// How many values are stored channel-blocked (ExecutorOptions::channel_blocked).
    std::size_t channel_blocked_count() const;
    /// Whether node `id`'s value is stored channel-blocked (runtime/channel_blocked.h), not in the plain layout.
    bool is_channel_blocked(ir::NodeId id) const { return blocked_[id.index]; }
    /// How many RoundTo nodes write their readers' BF16 copy, not their FP32 value (ExecutorOptions::bf16_copies).
    std::size_t bf16_copy_count() const;
    /// How many fused elementwise groups run (runtime/fused_elementwise.h).
    std::size_t fused_group_count() const { return fused_.size(); }

    /// With ExecutorOptions::profile, the time of every run() so far by op kind (and fast/reference), most first;
    /// empty without it.
    std::vector<OpProfile> profile() const;

private:
    void mark_sharded_rounding(const ExecutorOptions& options);
    void round_shard(ir::NodeId id);
    void run_fast_pool(ir::NodeId id);
    void run_round(ir::NodeId id);  // a RoundTo on a blocked tensor, writing a BF16 copy, or whose max-abs a fused
                                    // group measured
    void choose_channel_blocked(const std::vector<bool>& pinned, const std::vector<std::uint32_t>& source,
                                const std::vector<compiler::FusionGroup>& groups, const std::vector<int>& member_of);

    const ir::Graph& graph_;
    std::vector<ir::Buffer<float>> values_;
    std::unique_ptr<OneDnnKernels> fast_;  // null with Kernels::Reference
    std::vector<int> max_abs_from_;            // [RoundTo node]: the fused group that measures its input's max-abs
    std::vector<std::uint32_t> max_abs_of_;    // [RoundTo node]: that input's buffer's node (a member of the group)
    std::vector<std::uint16_t*> bf16_copy_;    // [RoundTo node]: its readers' BF16 copy it writes, or null
    std::vector<bool> fast_pool_;          // [node]: runs runtime/max_pool.h (Kernels::Fast); empty otherwise
    std::vector<std::unique_ptr<FusedElementwise>> fused_;
    std::vector<std::uint32_t> runs_at_;  // [node]: the position in run() where its value is computed
    std::vector<int> group_at_;           // [node]: the fused group that runs at this position, or -1
    std::vector<bool> stored_;            // [node]: live, and not a fused member only its group reads, nor an alias
    std::vector<bool> aliased_;           // [node]: a RoundGrad whose value is its input's buffer (nothing to run)
    std::vector<bool> blocked_;           // [node]: its buffer is channel-blocked
    std::vector<bool> live_;                                  // some output or kept node depends on the node
    std::vector<std::vector<std::size_t>> computed_at_;   // [position]: sync points computed there
    std::vector<std::vector<std::size_t>> read_first_at_;  // [position]: sync points first read there
    std::function<void(std::size_t)> on_computed_, before_read_;
    std::vector<bool> rounds_shard_;  // [node]: a RoundTo of a batch-sharded tensor (ExecutorOptions::agree_max_abs)
    std::uint64_t shard_index_ = 0;
    std::function<float(float)> agree_max_abs_;
    static constexpr std::size_t kArenaAlignmentBytes = 64;  // a cache line, and what oneDNN prefers
    struct FreeArena {
        void operator()(float* p) const { std::free(p); }
    };
    ArenaPlan plan_;
    std::unique_ptr<float, FreeArena> arena_;  // plan_.arena_bytes, aligned to kArenaAlignmentBytes
    bool profiling_ = false;
    std::vector<double> node_seconds_;  // [node]: wall time summed over the runs (profiling only)
    std::uint64_t runs_ = 0;
};

}  // namespace dojo::runtime
