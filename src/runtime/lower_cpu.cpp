// The CPU lowering (exec_plan.h): every decision the executor runs by, step by step.
#include <algorithm>
#include <numeric>
#include <optional>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/elementwise.h"
#include "dojo/ir/reduce.h"
#include "dojo/ir/rounding.h"
#include "dojo/numerics/bias.h"
#include "dojo/runtime/channel_blocked.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/runtime/fused_elementwise.h"
#include "dojo/runtime/onednn_kernels.h"
#include "dojo/runtime/round_to_bf16_copy.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"
#include "lower_cpu_steps.h"

namespace dojo::runtime {
namespace {

using compiler::FusionGroup;

// The shortest row a lone sum or map runs fused (as the fusion pass's rows: long enough to vectorise).
constexpr std::int64_t kMinFusedRow = 16;
constexpr std::size_t kArenaAlignmentBytes = 64;  // a cache line, and what oneDNN prefers

bool fast_and_reusing(const ExecutorOptions& o) { return o.kernels == Kernels::Fast && o.reuse_buffers; }

// Live nodes: those some output or kept node depends on, and the leaves (bound by the caller whether or not
// anything reads them). Autodiff's rules also build gradients nobody asked for (a convolution's gradient towards
// the model's input); with reuse_buffers they are neither computed nor stored.
void mark_live(ExecPlan& p, const ExecutorOptions& options) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    p.kept.assign(n, false);
    for (const ir::NodeId id : graph.outputs()) {
        p.kept[id.index] = true;
    }
    for (const ir::NodeId id : options.keep) {
        p.kept[id.index] = true;
    }
    p.live.assign(n, !options.reuse_buffers);
    for (std::uint32_t i = n; i-- > 0;) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        p.live[i] = p.live[i] || p.kept[i] || ir::is_bound_leaf(node.op);
        if (p.live[i]) {
            for (const ir::NodeId input : node.inputs) {
                p.live[input.index] = true;
            }
        }
    }
}

// A node the fusion pass left alone that still runs best as a group of one: a sum of a buffer no group computes
// (a BatchNorm's mean of a convolution's output: the same bits as ReduceSum's kernel, and a kernel that reads the
// buffer channel-blocked too), or a lone elementwise map the pass would admit (two gradients added where a residual
// branch forks). Returns its externals, or nothing.
std::optional<std::vector<ir::NodeId>> lone_group(const ir::Graph& graph, std::uint32_t i) {
    const ir::Node& node = graph.node(ir::NodeId{i});
    const ir::Shape& pass_shape =
        node.op == ir::OpKind::ReduceSum ? graph.type(node.inputs[0]).shape : node.type.shape;
    if (node.type.dtype != ir::DType::F32 || pass_shape.numel() < compiler::kFusionMinElements) {
        return std::nullopt;
    }
    std::vector<ir::NodeId> externals;
    std::vector<const ir::Shape*> shapes;
    for (const ir::NodeId input : node.inputs) {
        if (std::find(externals.begin(), externals.end(), input) == externals.end()) {
            externals.push_back(input);
            shapes.push_back(&graph.type(input).shape);
        }
    }
    if (node.op == ir::OpKind::ReduceSum) {
        const ir::Shape sums_into = ir::reduce_kept_shape(graph, ir::NodeId{i});
        const ir::BroadcastRows rows(graph.type(node.inputs[0]).shape, {&sums_into});
        if (graph.type(node.inputs[0]).dtype != ir::DType::F32 || rows.inner_stride(0) != 0 ||
            rows.row_length() < kMinFusedRow) {
            return std::nullopt;
        }
    } else if (!ir::is_elementwise_map(node.op) ||
               ir::BroadcastRows(node.type.shape, shapes).row_length() < kMinFusedRow ||
               std::any_of(externals.begin(), externals.end(),
                           [&](ir::NodeId e) { return graph.type(e).dtype != ir::DType::F32; })) {
        return std::nullopt;
    }
    return externals;
}

// The compiled Plan's fusion groups (compiler/plan.h), as this lowering runs them: a member the caller reads (kept,
// a sync point) is exported; a sync point must end its group (the Plan's groups close at gradients when dp > 1).
std::vector<FusionGroup> adopt_plan_groups(const ExecPlan& p, const std::vector<FusionGroup>& planned,
                                           const std::vector<bool>& closing) {
    std::vector<FusionGroup> groups = planned;
    for (FusionGroup& group : groups) {
        for (std::size_t k = 0; k < group.members.size(); ++k) {
            const std::uint32_t i = group.members[k].index;
            DOJO_CHECK(p.live[i]) << "the Plan fuses node " << i << ", which the lowering does not compute";
            DOJO_CHECK(!closing[i] || k + 1 == group.members.size())
                << "sync point " << i << " is inside one of the Plan's fused groups, not at its end";
            group.exported[k] = group.exported[k] || p.kept[i];
        }
    }
    return groups;
}

// Fused elementwise groups (fast kernels only): a group runs where its last member is; members nobody outside the
// group reads are never stored. `closing`: the sync points, each ending its group. `planned`: the compiled Plan's
// groups, or null to form them here as the compile pipeline's fusion pass would.
void form_groups(ExecPlan& p, const ExecutorOptions& options, const std::vector<bool>& closing,
                 const std::vector<FusionGroup>* planned) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    p.runs_at.resize(n);
    std::iota(p.runs_at.begin(), p.runs_at.end(), 0u);
    p.group_at.assign(n, -1);
    p.member_of.assign(n, -1);
    p.stored = p.live;
    if (!fast_and_reusing(options) || !options.fuse_elementwise) {
        return;
    }
    p.groups = planned != nullptr ? adopt_plan_groups(p, *planned, closing)
                                  : compiler::find_fusion_groups(graph, p.live, p.kept, closing);
    for (std::size_t g = 0; g < p.groups.size(); ++g) {
        const FusionGroup& group = p.groups[g];
        const std::uint32_t at = group.members.back().index;
        for (std::size_t k = 0; k < group.members.size(); ++k) {
            p.runs_at[group.members[k].index] = at;
            p.stored[group.members[k].index] = group.exported[k];
            p.member_of[group.members[k].index] = static_cast<int>(g);
        }
        p.group_at[at] = static_cast<int>(g);
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!p.live[i] || p.member_of[i] >= 0) {
            continue;
        }
        if (auto externals = lone_group(graph, i)) {
            p.member_of[i] = p.group_at[i] = static_cast<int>(p.groups.size());
            p.groups.push_back(FusionGroup{{ir::NodeId{i}}, {true}, std::move(*externals)});
        }
    }
}

// RoundGrad's forward is the identity (its gradient is what rounds): with the fast kernels its value is its input's
// buffer, no copy and no bytes of its own, unless the caller reads it (kept, an output, a sync point).
void alias_round_grads(ExecPlan& p, const ExecutorOptions& options, const std::vector<bool>& closing,
                       std::vector<bool>& aliased) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    aliased.assign(n, false);
    p.source.resize(n);
    std::iota(p.source.begin(), p.source.end(), 0u);
    if (!fast_and_reusing(options)) {
        return;
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        const std::uint32_t input = node.inputs.empty() ? i : node.inputs[0].index;
        if (p.live[i] && node.op == ir::OpKind::RoundGrad && !p.kept[i] && !closing[i] &&
            (p.stored[input] || aliased[input])) {
            aliased[i] = true;
            p.stored[i] = false;
            p.source[i] = p.source[input];
        }
    }
}

// An update's value computed into its target leaf's buffer (ExecutorOptions::in_place_updates): where a fused group
// computes it, every reader of the leaf's buffer outside the group runs before the group, and no member after it in
// the group reads the leaf (a block's members run in order: a later one would see the new values). It then owns no
// bytes: its value is the leaf's buffer.
void update_in_place(ExecPlan& p, const ExecutorOptions& options, const std::vector<bool>& closing,
                     const std::vector<bool>& aliased) {
    if (!fast_and_reusing(options) || !options.fuse_elementwise || options.in_place_updates.empty()) {
        return;
    }
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    std::vector<std::vector<std::uint32_t>> readers(n);  // [buffer owner]: the computed nodes that read it
    for (std::uint32_t i = 0; i < n; ++i) {
        if (p.live[i] && !ir::is_leaf(graph.node(ir::NodeId{i}).op) && !aliased[i]) {
            for (const ir::NodeId u : graph.node(ir::NodeId{i}).inputs) {
                readers[p.source[u.index]].push_back(i);
            }
        }
    }
    std::vector<bool> taken(n, false);  // leaves already written in place
    for (const autodiff::Assignment& a : options.in_place_updates) {
        const std::uint32_t v = a.value.index, t = a.target.index;
        if (!p.live[v] || !p.stored[v] || closing[v] || p.member_of[v] < 0 || p.source[v] != v || taken[t] ||
            !ir::is_bound_leaf(graph.node(a.target).op) || graph.type(a.value) != graph.type(a.target) ||
            graph.node(a.value).op == ir::OpKind::ReduceSum) {
            continue;
        }
        const FusionGroup& group = p.groups[static_cast<std::size_t>(p.member_of[v])];
        const auto position = [&](std::uint32_t i) {
            return std::find(group.members.begin(), group.members.end(), ir::NodeId{i}) - group.members.begin();
        };
        const std::uint32_t at = group.members.back().index;
        const bool safe = std::all_of(readers[t].begin(), readers[t].end(), [&](std::uint32_t r) {
            return p.member_of[r] == p.member_of[v] ? position(r) <= position(v) : p.runs_at[r] < at;
        });
        if (safe) {
            taken[t] = true;
            p.stored[v] = false;
            p.source[v] = t;
        }
    }
}

// The memory plan: every stored value at a fixed offset in one arena. With reuse_buffers, a value that is not a
// leaf, an output or kept lives from the position that computes it to its last reader; others live all run long.
void plan_values(ExecPlan& p, const ExecutorOptions& options, const std::vector<bool>& aliased) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    std::vector<std::uint32_t> last_use(n, 0);  // the position after which a stored value is no longer read
    for (std::uint32_t i = 0; i < n; ++i) {
        last_use[i] = std::max(last_use[i], p.runs_at[i]);
        if (p.live[i]) {
            for (const ir::NodeId input : graph.node(ir::NodeId{i}).inputs) {
                last_use[input.index] = std::max(last_use[input.index], p.runs_at[i]);
            }
        }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        if (aliased[i]) {  // the buffer lives while the alias is read
            last_use[p.source[i]] = std::max(last_use[p.source[i]], last_use[i]);
        }
    }
    std::vector<Lifetime> lifetimes(n);
    p.value_bytes.assign(n, 0);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        if (!p.stored[i]) {
            continue;  // never computed, or fused away: no bytes
        }
        const bool reused = options.reuse_buffers && !ir::is_bound_leaf(node.op) && !p.kept[i];
        lifetimes[i] = reused ? Lifetime{p.runs_at[i], last_use[i], 0} : Lifetime{0, n, 0};
        lifetimes[i].bytes = p.value_bytes[i] = static_cast<std::size_t>(node.type.shape.numel()) * sizeof(float);
    }
    p.memory = plan_arena(lifetimes, kArenaAlignmentBytes);
}

// Sync points: where each is computed, and the first position that reads it.
void place_sync_points(ExecPlan& p, const ExecutorOptions& options) {
    if (options.sync_points.empty()) {
        return;
    }
    DOJO_CHECK(options.on_computed && options.before_read) << "sync points need both callbacks";
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    p.computed_at.resize(n);
    p.read_first_at.resize(n);
    std::vector<std::uint32_t> first_read(n, n);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (p.live[i]) {
            for (const ir::NodeId input : graph.node(ir::NodeId{i}).inputs) {
                first_read[input.index] = std::min(first_read[input.index], p.runs_at[i]);
            }
        }
    }
    for (std::size_t k = 0; k < options.sync_points.size(); ++k) {
        const std::uint32_t id = options.sync_points[k].index;
        if (!p.live[id]) {
            continue;  // not computed: no callback
        }
        DOJO_CHECK(p.stored[id] && first_read[id] > p.runs_at[id])
            << "sync point " << id << " is not stored, or read where it is computed";
        p.computed_at[p.runs_at[id]].push_back(k);
        if (first_read[id] < n) {  // else only an output
            p.read_first_at[first_read[id]].push_back(k);
        }
    }
}


// The fast kernels: vectorised max-pooling, oneDNN's primitives (prepared now) and the channel-blocked layouts.
std::vector<bool> choose_fast_kernels(ExecPlan& p, const ExecutorOptions& options, const std::vector<bool>& closing,
                                      const std::vector<bool>& aliased, const std::vector<bool>& rounds_shard) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    p.blocked.assign(n, false);
    std::vector<bool> fast_pool(n, false);
    if (options.kernels != Kernels::Fast) {
        return fast_pool;
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        if (p.live[i] && (node.op == ir::OpKind::MaxPool2d || node.op == ir::OpKind::MaxPool2dBackward)) {
            const ir::Shape& x = graph.type(node.inputs[0]).shape;
            fast_pool[i] = x[2] * x[3] < (std::int64_t{1} << 31);  // runtime/max_pool.h: 32-bit plane indices
        }
    }
    p.onednn = std::make_shared<OneDnnKernels>(graph, p.live);
    if (options.channel_blocked && options.reuse_buffers) {
        std::vector<bool> pinned = p.kept;  // values the caller reads or rewrites: plain
        for (std::uint32_t i = 0; i < n; ++i) {
            pinned[i] = pinned[i] || closing[i] || rounds_shard[i];
        }
        choose_channel_blocked(p, pinned, aliased, fast_pool, rounds_shard);
    }
    p.onednn->use_blocked(p.blocked);  // its scratch is allocated here, at construction, in either case
    return fast_pool;
}

// A CFloat8 or BF16-nearest rounding that only oneDNN kernels read, all through one BF16 copy in its buffer's layout,
// writes that copy (runtime/round_to_bf16_copy.h): no FP32 value, no reorder. Not one the caller reads, a group runs
// or a shard rounds, nor one an alias or another kernel reads; and only with reuse_buffers (without it every value
// stays readable after run()).
std::vector<bool> choose_bf16_copies(const ExecPlan& p, const ExecutorOptions& options,
                                     const std::vector<bool>& closing, const std::vector<bool>& aliased,
                                     const std::vector<bool>& rounds_shard) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    std::vector<bool> copies(n, false);
    if (!p.onednn || !options.bf16_copies || !options.reuse_buffers) {
        return copies;
    }
    std::vector<bool> read_elsewhere(n, false);  // by a node that is not a oneDNN kernel
    for (std::uint32_t i = 0; i < n; ++i) {
        if (p.live[i] && (!p.onednn->has(ir::NodeId{i}) || aliased[i])) {
            for (const ir::NodeId input : graph.node(ir::NodeId{i}).inputs) {
                read_elsewhere[input.index] = true;
            }
        }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        copies[i] = p.live[i] && node.op == ir::OpKind::RoundTo && p.member_of[i] < 0 && !p.kept[i] && !closing[i] &&
                    !read_elsewhere[i] && !rounds_shard[i] &&
                    rounds_exactly_into_bf16(std::get<ir::RoundAttrs>(node.attrs)) &&
                    p.onednn->bf16_copy(ir::NodeId{i}) != nullptr;
    }
    return copies;
}

// A CFloat rounding of a value a fused group writes takes its max-abs from the group, which measures it as it
// writes it, instead of reading the tensor once more.
void take_max_abs_from_groups(ExecPlan& p, const std::vector<bool>& rounds_shard) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    p.max_abs_from.assign(n, -1);
    p.max_abs_of.assign(n, 0);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        if (!p.live[i] || node.op != ir::OpKind::RoundTo || p.member_of[i] >= 0 || rounds_shard[i] ||
            !numerics::traits(std::get<ir::RoundAttrs>(node.attrs).format).configurable_bias) {
            continue;
        }
        const std::uint32_t v = p.source[node.inputs[0].index];
        if (p.member_of[v] >= 0 && graph.node(ir::NodeId{v}).op != ir::OpKind::ReduceSum) {
            p.max_abs_from[i] = p.member_of[v];
            p.max_abs_of[i] = v;
        }
    }
}

// Every node's kernel, from the decisions above (they exclude one another: oneDNN takes only convolutions and
// products, the pooling kernel only pooling, the rounding kernels only RoundTo nodes no group runs, the tiled copy
// only transposes).
void name_kernels(ExecPlan& p, const std::vector<bool>& aliased, const std::vector<bool>& fast_pool,
                  const std::vector<bool>& copies, const std::vector<bool>& rounds_shard) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    p.kernel.assign(n, NodeKernel::None);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::NodeId id{i};
        const bool round = graph.node(id).op == ir::OpKind::RoundTo;
        NodeKernel& k = p.kernel[i];
        if (!p.live[i] || ir::is_bound_leaf(graph.node(id).op)) {
            k = NodeKernel::None;
        } else if (p.runs_at[i] != i && p.group_at[i] < 0) {
            k = NodeKernel::FusedMember;
        } else if (aliased[i]) {
            k = NodeKernel::Alias;
        } else if (p.group_at[i] >= 0) {
            k = NodeKernel::FusedGroup;
        } else if (rounds_shard[i]) {
            k = NodeKernel::RoundShard;
        } else if (p.onednn && p.onednn->has(id)) {
            k = p.onednn->reads_bf16(id) ? NodeKernel::OneDnnBf16 : NodeKernel::OneDnn;
        } else if (fast_pool[i]) {
            k = NodeKernel::VectorisedPool;
        } else if (p.kernels == Kernels::Fast && graph.node(id).op == ir::OpKind::Transpose && !p.blocked[i]) {
            k = NodeKernel::TiledTranspose;  // a copy: the reference kernel's values in a cache-friendly order
        } else if (round && copies[i]) {
            k = NodeKernel::RoundToBf16Copy;
        } else if (round && p.blocked[i]) {
            k = NodeKernel::RoundBlocked;
        } else if (round && p.max_abs_from[i] >= 0) {
            k = NodeKernel::RoundGroupMaxAbs;
        } else {
            k = NodeKernel::Reference;
        }
    }
}

// Every step of the lowering, in order; `planned` as form_groups'.
ExecPlan lower(const ir::Graph& graph, const ExecutorOptions& options, const std::vector<FusionGroup>* planned) {
    ExecPlan p;
    p.graph = &graph;
    p.kernels = options.kernels;
    p.shard_index = options.shard_index;
    mark_live(p, options);
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    std::vector<bool> closing(n, false);  // the sync points: each ends its group
    for (const ir::NodeId id : options.sync_points) {
        DOJO_CHECK(p.live[id.index] && !ir::is_bound_leaf(graph.node(id).op))
            << "sync point " << id.index << " must be a computed node something reads";
        closing[id.index] = true;
    }
    form_groups(p, options, closing, planned);
    std::vector<bool> aliased;
    alias_round_grads(p, options, closing, aliased);
    update_in_place(p, options, closing, aliased);
    plan_values(p, options, aliased);
    place_sync_points(p, options);
    const std::vector<bool> rounds_shard = mark_sharded_rounding(p, options);
    const std::vector<bool> fast_pool = choose_fast_kernels(p, options, closing, aliased, rounds_shard);
    const std::vector<bool> copies = choose_bf16_copies(p, options, closing, aliased, rounds_shard);
    take_max_abs_from_groups(p, rounds_shard);
    name_kernels(p, aliased, fast_pool, copies, rounds_shard);
    return p;
}

}  // namespace

ExecPlan lower_cpu(const ir::Graph& graph, const ExecutorOptions& options) { return lower(graph, options, nullptr); }

bool runs_on_cpu_runtime(const compiler::Strategy& s) {
    return s.tp == 1 && s.pp == 1 && s.micro_batches == 1 && !s.recompute && !s.zero;
}

ExecPlan lower_cpu(const compiler::Plan& plan, const ExecutorOptions& options) {
    const compiler::Strategy& s = plan.strategy;
    if (!runs_on_cpu_runtime(s)) {
        throw UsageError("the CPU runtime runs data-parallel plans (dp=N); " + s.to_string() +
                         " partitions the step further: `dojo plan --verify` runs such plans functionally");
    }
    return lower(plan.step.graph, options, &plan.fusion_groups);
}

std::string_view to_string(Kernels kernels) { return kernels == Kernels::Fast ? "fast" : "reference"; }

bool reorder_skipped(const ExecPlan& plan, ir::NodeId value, bool into_shared_copy) {
    return into_shared_copy && plan.kernel[value.index] == NodeKernel::RoundToBf16Copy;
}

std::string_view to_string(NodeKernel kernel) {
    switch (kernel) {
    case NodeKernel::None: return "none";
    case NodeKernel::Reference: return "reference";
    case NodeKernel::OneDnn: return "onednn";
    case NodeKernel::OneDnnBf16: return "onednn-bf16";
    case NodeKernel::FusedGroup: return "fused";
    case NodeKernel::FusedMember: return "fused-member";
    case NodeKernel::Alias: return "alias";
    case NodeKernel::VectorisedPool: return "vectorised";
    case NodeKernel::TiledTranspose: return "tiled";
    case NodeKernel::RoundBlocked: return "blocked";
    case NodeKernel::RoundToBf16Copy: return "to-bf16-copy";
    case NodeKernel::RoundGroupMaxAbs: return "group-max-abs";
    case NodeKernel::RoundShard: return "shard";
    }
    return "?";
}

}  // namespace dojo::runtime
