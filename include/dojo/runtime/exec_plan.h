/** \file
 * The CPU lowering: lower_cpu() decides how the executor (runtime/executor.h) runs a compiled Plan's step (or any
 * graph) on this CPU, node by node, and writes every decision into an ExecPlan; the executor then allocates the
 * plan's arena and runs what it says, deciding nothing itself. `dump_exec_plan` prints the decisions (`dojo plan
 * --dump-pass exec-plan`, golden tests).
 *
 * What lower_cpu decides, in order, each from the ones before:
 *   liveness      a node runs if an output, a kept node or a sync point depends on it (leaves are always bound)
 *   fusion        chains of elementwise maps as groups: a Plan's own fusion groups (compiler/plan.h, the compile
 *                 pipeline's fusion pass), or for a bare graph the same pass's groups formed here; plus lone maps and row sums of large tensors as groups of one; a group runs at its last
 *                 member, and members nobody outside the group reads are not stored
 *   aliases       a RoundGrad (the identity forward) is its input's buffer unless the caller reads it
 *   in place      an update's new value that a fused group computes is written straight into its leaf's buffer
 *                 (ExecutorOptions::in_place_updates) where nothing reads the leaf's old value after the group
 *   memory        every stored value at a fixed arena offset, sharing bytes with values whose lifetimes (from the
 *                 position that computes them to their last reader) do not overlap (runtime/arena_plan.h)
 *   sync points   where each is computed and first read (the caller's callbacks run there)
 *   shard rounding  data parallel: roundings that must see the global batch's tensor
 *   kernels       oneDNN for convolutions and matrix products (prepared here: primitive creation is slow),
 *                 vectorised max-pooling, channel-blocked layouts where every kernel touching a buffer takes them
 *                 (runtime/channel_blocked.h), CFloat8 roundings writing their readers' BF16 copy
 *                 (runtime/round_to_bf16_copy.h), CFloat roundings taking the max-abs their producer's group measured
 * Every fast choice computes what the reference kernel computes (same bits, or up to summation order for oneDNN:
 * runtime/onednn_kernels.h). With Kernels::Reference every computed node runs its reference kernel.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dojo/autodiff/training.h"
#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/compiler/plan.h"
#include "dojo/ir/graph.h"
#include "dojo/runtime/arena_plan.h"

namespace dojo::runtime {

class OneDnnKernels;

enum class Kernels { Fast, Reference };
std::string_view to_string(Kernels kernels);

struct ExecutorOptions {
    Kernels kernels = Kernels::Fast;
    bool reuse_buffers = true;
    std::vector<ir::NodeId> keep;  ///< non-leaf, non-output nodes whose values the caller reads after run()
    bool profile = false;          ///< time every node (Executor::profile())
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
    /// the frontend builds: the batch leads every activation and activation gradient); the lowering follows it
    /// through the graph (transposes must keep dimension 0 first, reshapes whole samples per row) and throws
    /// dojo::Error naming the node if a rounded tensor derives from the batch but does not lead with it.
    /// Updates the caller applies after run() (Executor::apply). Where a fused group computes an update's value, every
    /// other reader of its target leaf runs before that group and no later member of the group reads the leaf, the
    /// value is computed into the leaf's own buffer: the same values, no copy in apply() and no bytes of its own.
    /// Precondition: the caller applies every listed update after each run (the leaf holds the new value then).
    std::vector<autodiff::Assignment> in_place_updates{};
    std::vector<ir::NodeId> batch_shard_inputs{};
    std::uint64_t shard_index = 0;
    std::function<float(float)> agree_max_abs{};
};

/// How the executor computes one node.
enum class NodeKernel : std::uint8_t {
    None,              ///< a leaf (bound by the caller), or a node nothing needs: not run
    Reference,         ///< the op table's reference kernel (ir/op.h)
    OneDnn,            ///< oneDNN, FP32 operands (runtime/onednn_kernels.h)
    OneDnnBf16,        ///< oneDNN reading its operands as BF16 (every operand on a BF16 grid)
    FusedGroup,        ///< the last member of a fused group: the group runs here (runtime/fused_elementwise.h)
    FusedMember,       ///< an earlier member: computed by its group
    Alias,             ///< a RoundGrad whose value is its input's buffer: nothing runs
    VectorisedPool,    ///< max-pooling or its adjoint (runtime/max_pool.h)
    RoundBlocked,      ///< a RoundTo on a channel-blocked tensor (runtime/round_channel_blocked.h)
    RoundToBf16Copy,   ///< a CFloat8 RoundTo writing its readers' BF16 copy (runtime/round_to_bf16_copy.h)
    RoundGroupMaxAbs,  ///< a CFloat RoundTo taking its input's max-abs from the fused group that wrote it
    RoundShard,        ///< a RoundTo of a batch-sharded tensor, rounding as the global batch (data parallel)
    TiledTranspose,    ///< a Transpose copied in tiles (runtime/transpose.h)
};
std::string_view to_string(NodeKernel kernel);

/// Everything the executor needs to run a graph, decided. Indexed by node unless said otherwise.
struct ExecPlan {
    const ir::Graph* graph = nullptr;
    Kernels kernels = Kernels::Fast;
    std::vector<NodeKernel> kernel;
    std::vector<bool> live;                  ///< computed (or bound, for leaves)
    std::vector<bool> kept;                  ///< outputs and ExecutorOptions::keep
    std::vector<std::uint32_t> runs_at;      ///< the position in run() that computes it (a group's last member's)
    std::vector<int> member_of;              ///< its fused group, or -1
    std::vector<int> group_at;               ///< [position]: the fused group that runs there, or -1
    std::vector<compiler::FusionGroup> groups;
    std::vector<bool> stored;                ///< owns bytes in the arena
    std::vector<std::uint32_t> source;       ///< the node whose buffer holds its value (itself, or an alias's input)
    std::vector<bool> blocked;               ///< its buffer is channel-blocked
    std::vector<int> max_abs_from;           ///< [RoundGroupMaxAbs node]: the group measuring its input's max-abs
    std::vector<std::uint32_t> max_abs_of;   ///< [RoundGroupMaxAbs node]: that input's buffer's node
    std::vector<std::size_t> value_bytes;    ///< bytes it owns in the arena (0: none)
    ArenaPlan memory;                        ///< offsets by node, arena size, lower bound
    std::vector<std::vector<std::size_t>> computed_at;    ///< [position]: sync points computed there
    std::vector<std::vector<std::size_t>> read_first_at;  ///< [position]: sync points first read there
    std::uint64_t shard_index = 0;
    /// The oneDNN primitives prepared for the OneDnn/OneDnnBf16 nodes and the layouts chosen; null with Reference.
    std::shared_ptr<OneDnnKernels> onednn;
};

/// Lowers `graph` (which must outlive the plan) for this CPU with `options` (their callbacks are the executor's).
/// dojo::Error for a batch-sharded rounding of a tensor that does not lead with the batch (ExecutorOptions).
ExecPlan lower_cpu(const ir::Graph& graph, const ExecutorOptions& options);

/// Whether the CPU runtime runs plans of `strategy`: data parallel only (no tp, pp, micro-batches, recomputation or
/// ZeRO).
bool runs_on_cpu_runtime(const compiler::Strategy& strategy);

/// Lowers the step of a compiled data-parallel `plan` (which must outlive the ExecPlan) for one of its dp ranks:
/// its graph with the Plan's fusion groups, so that the groups `dojo train` runs are the ones `dojo sim` times.
/// With dp > 1 the gradients must be `options.sync_points` (the Plan's groups end at them). UsageError for a plan
/// with tp, pp, micro-batches, recomputation or ZeRO (the CPU runtime runs none of them; proof/functional_sim.h
/// runs such plans); errors as the graph overload's otherwise.
ExecPlan lower_cpu(const compiler::Plan& plan, const ExecutorOptions& options);

/// Whether a oneDNN kernel's reorder of `value` (OneDnnKernels::reorders) does not run in `plan`'s step: one into a
/// shared copy (`into_shared_copy`) that the value's producer writes itself (NodeKernel::RoundToBf16Copy).
bool reorder_skipped(const ExecPlan& plan, ir::NodeId value, bool into_shared_copy);

/// The plan as text: a header (kernels, arena bytes and the lower bound, counts by kernel), then one line per
/// computed node in run order (its kernel, layout, fused group, arena offset and bytes), then the fused groups.
std::string dump_exec_plan(const ExecPlan& plan);

}  // namespace dojo::runtime
