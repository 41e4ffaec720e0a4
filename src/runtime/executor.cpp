#include "dojo/runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/elementwise.h"
#include "dojo/ir/interpreter.h"
#include "dojo/ir/reduce.h"
#include "dojo/ir/rounding.h"
#include "dojo/numerics/bias.h"
#include "dojo/runtime/channel_blocked.h"
#include "dojo/runtime/fused_elementwise.h"
#include "dojo/runtime/max_pool.h"
#include "dojo/runtime/onednn_kernels.h"
#include "dojo/runtime/round_channel_blocked.h"
#include "dojo/runtime/round_to_bf16_copy.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"

namespace dojo::runtime {

namespace {

// The shortest row a lone sum or map runs fused (as the fusion pass's rows: long enough to vectorise).
constexpr std::int64_t kMinFusedRow = 16;

// Whether `node`'s tensor leads with the batch, given which of its inputs do (`leads`, by node): its outermost
// dimension is whole samples' rows, so that each rank holds one contiguous block of the global tensor. A transpose
// must keep the outermost dimension; a reshape must keep whole samples per row; a matrix product leads if its left
// operand does; any other op leads if an input that leads has the same outermost extent (elementwise maps,
// convolutions, pooling, reductions over inner axes).
bool lead_with_batch(const ir::Graph& graph, const ir::Node& node, const std::vector<bool>& leads,
                     std::int64_t local_batch) {
    const ir::Shape& out = node.type.shape;
    if (out.rank() == 0) {
        return false;
    }
    const auto leading = [&](ir::NodeId input) { return static_cast<bool>(leads[input.index]); };
    switch (node.op) {
    case ir::OpKind::Transpose:
        return leading(node.inputs[0]) && std::get<ir::TransposeAttrs>(node.attrs).perm.at(0) == 0;
    case ir::OpKind::Reshape:
        return leading(node.inputs[0]) && local_batch > 0 && out.dims()[0] % local_batch == 0;
    case ir::OpKind::MatMul:
        return leading(node.inputs[0]) && graph.type(node.inputs[0]).shape.dims()[0] == out.dims()[0];
    default:
        for (const ir::NodeId input : node.inputs) {
            const ir::Shape& in = graph.type(input).shape;
            if (leading(input) && in.rank() > 0 && in.dims()[0] == out.dims()[0]) {
                return true;
            }
        }
        return false;
    }
}

}  // namespace

std::string_view to_string(Kernels kernels) { return kernels == Kernels::Fast ? "fast" : "reference"; }

Executor::Executor(const ir::Graph& graph, ExecutorOptions options)
    : graph_(graph) {
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    std::vector<bool> kept(n, false);
    for (const ir::NodeId id : graph.outputs()) {
        kept[id.index] = true;
    }
    for (const ir::NodeId id : options.keep) {
        kept[id.index] = true;
    }
    // Live nodes: those some output or kept node depends on, and the leaves (bound by the caller whether or not
    // anything reads them). Autodiff's rules also build gradients nobody asked for (a convolution's gradient towards
    // the model's input); with reuse_buffers they are neither computed nor stored.
    live_.assign(n, !options.reuse_buffers);
    for (std::uint32_t i = n; i-- > 0;) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        live_[i] = live_[i] || kept[i] || ir::is_bound_leaf(node.op);
        if (live_[i]) {
            for (const ir::NodeId input : node.inputs) {
                live_[input.index] = true;
            }
        }
    }

    // Fused elementwise groups (fast kernels only): a group runs where its last member is; members nobody outside
    // the group reads are never stored.
    runs_at_.resize(n);
    std::iota(runs_at_.begin(), runs_at_.end(), 0u);
    group_at_.assign(n, -1);
    stored_ = live_;
    std::vector<bool> closing(n, false);
    for (const ir::NodeId id : options.sync_points) {
        DOJO_CHECK(live_[id.index] && !ir::is_bound_leaf(graph.node(id).op))
            << "sync point " << id.index << " must be a computed node something reads";
        closing[id.index] = true;
    }
    std::vector<FusionGroup> groups;
    std::vector<int> member_of(n, -1);  // [node]: the fused group it is a member of, or -1
    if (options.kernels == Kernels::Fast && options.reuse_buffers && options.fuse_elementwise) {
        groups = compiler::find_fusion_groups(graph, live_, kept, closing);
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const FusionGroup& group = groups[g];
            const std::uint32_t at = group.members.back().index;
            for (std::size_t k = 0; k < group.members.size(); ++k) {
                runs_at_[group.members[k].index] = at;
                stored_[group.members[k].index] = group.exported[k];
                member_of[group.members[k].index] = static_cast<int>(g);
            }
            group_at_[at] = static_cast<int>(g);
        }
        // A sum of a buffer no group computes runs as a group of its own where it sums rows, as the fusion pass
        // admits sums (a BatchNorm's mean of a convolution's output, say): the same bits as ReduceSum's kernel,
        // and a kernel that reads the buffer in the channel-blocked layout too. So does a lone elementwise map
        // the pass would admit (two gradients added where a residual branch forks, say).
        for (std::uint32_t i = 0; i < n; ++i) {
            const ir::Node& node = graph.node(ir::NodeId{i});
            const ir::Shape& pass_shape =
                node.op == ir::OpKind::ReduceSum ? graph.type(node.inputs[0]).shape : node.type.shape;
            if (!live_[i] || member_of[i] >= 0 || node.type.dtype != ir::DType::F32 ||
                pass_shape.numel() < compiler::kFusionMinElements) {
                continue;
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
                    continue;
                }
            } else if (!ir::is_elementwise_map(node.op) ||
                       ir::BroadcastRows(node.type.shape, shapes).row_length() < kMinFusedRow ||
                       std::any_of(externals.begin(), externals.end(),
                                   [&](ir::NodeId e) { return graph.type(e).dtype != ir::DType::F32; })) {
                continue;
            }
            member_of[i] = group_at_[i] = static_cast<int>(groups.size());
            groups.push_back(FusionGroup{{ir::NodeId{i}}, {true}, std::move(externals)});
        }
    }

    // RoundGrad's forward is the identity (its gradient is what rounds): with the fast kernels its value is its
    // input's buffer, no copy and no bytes of its own, unless the caller reads it (kept, an output, a sync point).
    // source[i]: the node whose buffer holds node i's value.
    aliased_.assign(n, false);
    std::vector<std::uint32_t> source(n);
    std::iota(source.begin(), source.end(), 0u);
    if (options.kernels == Kernels::Fast && options.reuse_buffers) {
        for (std::uint32_t i = 0; i < n; ++i) {
            const ir::Node& node = graph.node(ir::NodeId{i});
            const std::uint32_t input = node.inputs.empty() ? i : node.inputs[0].index;
            if (live_[i] && node.op == ir::OpKind::RoundGrad && !kept[i] && !closing[i] &&
                (stored_[input] || aliased_[input])) {
                aliased_[i] = true;
                stored_[i] = false;
                source[i] = source[input];
            }
        }
    }

    // The memory plan: every stored value at a fixed offset in one arena. With reuse_buffers, a value that is not a
    // leaf, an output or kept lives from the position that computes it to its last reader; others live all run long.
    std::vector<std::uint32_t> last_use(n, 0);  // the position after which a stored value is no longer read
    for (std::uint32_t i = 0; i < n; ++i) {
        last_use[i] = std::max(last_use[i], runs_at_[i]);
        if (live_[i]) {
            for (const ir::NodeId input : graph.node(ir::NodeId{i}).inputs) {
                last_use[input.index] = std::max(last_use[input.index], runs_at_[i]);
            }
        }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        if (aliased_[i]) {  // the buffer lives while the alias is read
            last_use[source[i]] = std::max(last_use[source[i]], last_use[i]);
        }
    }
    std::vector<Lifetime> lifetimes(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        if (!stored_[i]) {
            continue;  // never computed, or fused away: no bytes
        }
        const bool reused = options.reuse_buffers && !ir::is_bound_leaf(node.op) && !kept[i];
        lifetimes[i] = reused ? Lifetime{runs_at_[i], last_use[i], 0} : Lifetime{0, n, 0};
        lifetimes[i].bytes = static_cast<std::size_t>(node.type.shape.numel()) * sizeof(float);
    }
    plan_ = plan_arena(lifetimes, kArenaAlignmentBytes);
    arena_.reset(static_cast<float*>(std::aligned_alloc(kArenaAlignmentBytes,
                                                        std::max(plan_.arena_bytes, kArenaAlignmentBytes))));
    if (!arena_) {
        throw Error("cannot allocate the executor's arena of " + std::to_string(plan_.arena_bytes) + " bytes");
    }
    std::memset(arena_.get(), 0, plan_.arena_bytes);  // leaves start at 0; every page is touched once, here
    values_.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Shape& shape = graph.node(ir::NodeId{i}).type.shape;
        float* at = arena_.get() + plan_.offset_bytes[i] / sizeof(float);
        ir::Buffer<float>& value = values_.emplace_back(ir::Buffer<float>(shape, std::vector<float>{}));
        if (lifetimes[i].bytes > 0) {
            value.data = ir::Storage<float>::bound_to(at, lifetimes[i].bytes / sizeof(float));
        } else if (aliased_[i]) {  // its source comes first in graph order: bound already
            ir::Storage<float>& from = values_[source[i]].data;
            value.data = ir::Storage<float>::bound_to(from.data(), from.size());
        }
    }

    // Sync points: where each is computed, and the first position that reads it.
    if (!options.sync_points.empty()) {
        DOJO_CHECK(options.on_computed && options.before_read) << "sync points need both callbacks";
        on_computed_ = options.on_computed;
        before_read_ = options.before_read;
        computed_at_.resize(n);
        read_first_at_.resize(n);
        std::vector<std::uint32_t> first_read(n, n);
        for (std::uint32_t i = 0; i < n; ++i) {
            if (!live_[i]) {
                continue;
            }
            for (const ir::NodeId input : graph.node(ir::NodeId{i}).inputs) {
                first_read[input.index] = std::min(first_read[input.index], runs_at_[i]);
            }
        }
        for (std::size_t k = 0; k < options.sync_points.size(); ++k) {
            const std::uint32_t id = options.sync_points[k].index;
            if (!live_[id]) {
                continue;  // not computed: no callback
            }
            DOJO_CHECK(stored_[id] && first_read[id] > runs_at_[id])
                << "sync point " << id << " is not stored, or read where it is computed";
            computed_at_[runs_at_[id]].push_back(k);
            if (first_read[id] < n) {  // else only an output
                read_first_at_[first_read[id]].push_back(k);
            }
        }
    }
    mark_sharded_rounding(options);
    profiling_ = options.profile;
    if (profiling_) {
        node_seconds_.assign(n, 0.0);
    }
    blocked_.assign(n, false);
    if (options.kernels == Kernels::Fast) {
        fast_pool_.assign(n, false);
        for (std::uint32_t i = 0; i < n; ++i) {
            const ir::Node& node = graph.node(ir::NodeId{i});
            if (live_[i] && (node.op == ir::OpKind::MaxPool2d || node.op == ir::OpKind::MaxPool2dBackward)) {
                const ir::Shape& x = graph.type(node.inputs[0]).shape;
                fast_pool_[i] = x[2] * x[3] < (std::int64_t{1} << 31);  // runtime/max_pool.h: 32-bit plane indices
            }
        }
        fast_ = std::make_unique<OneDnnKernels>(graph, live_);
        if (options.channel_blocked && options.reuse_buffers) {
            std::vector<bool> pinned = kept;  // values the caller reads or rewrites: plain
            for (std::uint32_t i = 0; i < n; ++i) {
                pinned[i] = pinned[i] || closing[i] || (!rounds_shard_.empty() && rounds_shard_[i]);
            }
            choose_channel_blocked(pinned, source, groups, member_of);
        }
        fast_->use_blocked(blocked_);  // its scratch is allocated here, at construction, in either case
    }
    for (FusionGroup& group : groups) {
        fused_.push_back(std::make_unique<FusedElementwise>(graph, std::move(group), blocked_));
    }
    // A CFloat8 rounding that only oneDNN kernels read, all through one BF16 copy in its buffer's layout, writes that
    // copy (runtime/round_to_bf16_copy.h): no FP32 value, no reorder. Not one the caller reads, a group runs or a
    // shard rounds, nor one an alias or another kernel reads; and only with reuse_buffers (without it every value stays
    // readable after run()).
    bf16_copy_.assign(n, nullptr);
    if (fast_ && options.bf16_copies && options.reuse_buffers) {
        std::vector<bool> read_elsewhere(n, false);  // by a node that is not a oneDNN kernel
        for (std::uint32_t i = 0; i < n; ++i) {
            if (live_[i] && (!fast_->has(ir::NodeId{i}) || aliased_[i])) {
                for (const ir::NodeId input : graph.node(ir::NodeId{i}).inputs) {
                    read_elsewhere[input.index] = true;
                }
            }
        }
        for (std::uint32_t i = 0; i < n; ++i) {
            const ir::Node& node = graph.node(ir::NodeId{i});
            if (live_[i] && node.op == ir::OpKind::RoundTo && member_of[i] < 0 && !kept[i] && !closing[i] &&
                !read_elsewhere[i] && (rounds_shard_.empty() || !rounds_shard_[i]) &&
                rounds_exactly_into_bf16(std::get<ir::RoundAttrs>(node.attrs))) {
                bf16_copy_[i] = fast_->bf16_copy(ir::NodeId{i});
            }
        }
    }
    // A CFloat rounding of a value a fused group writes takes its max-abs from the group, which measures it as it
    // writes it, instead of reading the tensor once more.
    max_abs_from_.assign(n, -1);
    max_abs_of_.assign(n, 0);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        if (!live_[i] || node.op != ir::OpKind::RoundTo || member_of[i] >= 0 ||
            (!rounds_shard_.empty() && rounds_shard_[i]) ||
            !numerics::traits(std::get<ir::RoundAttrs>(node.attrs).format).configurable_bias) {
            continue;
        }
        const std::uint32_t v = source[node.inputs[0].index];
        if (member_of[v] >= 0 && graph.node(ir::NodeId{v}).op != ir::OpKind::ReduceSum) {
            fused_[static_cast<std::size_t>(member_of[v])]->track_max_abs(ir::NodeId{v});
            max_abs_from_[i] = member_of[v];
            max_abs_of_[i] = v;
        }
    }
}

void Executor::run_fast_pool(ir::NodeId id) {
    const ir::Node& node = graph_.node(id);
    const ir::PoolAttrs& attrs = std::get<ir::PoolAttrs>(node.attrs);
    const ir::Buffer<float>& x = values_[node.inputs[0].index];
    float* out = values_[id.index].data.data();
    const bool blocked = blocked_[id.index];  // its inputs' buffers are too (choose_channel_blocked)
    if (node.op == ir::OpKind::MaxPool2d) {
        (blocked ? max_pool_channel_blocked : max_pool)(attrs, x.shape, node.type.shape, x.data.data(), out);
    } else {
        const ir::Buffer<float>& dy = values_[node.inputs[1].index];
        if (blocked) {
            max_pool_backward_channel_blocked(attrs, x.shape, dy.shape, x.data.data(), dy.data.data(), out);
        } else {
            max_pool_backward(attrs, x.shape, dy.shape, x.data.data(), dy.data.data(), out);
        }
    }
}

void Executor::run_round(ir::NodeId id) {
    const ir::Node& node = graph_.node(id);
    const ir::RoundAttrs& attrs = std::get<ir::RoundAttrs>(node.attrs);
    const ir::Storage<float>& in = values_[node.inputs[0].index].data;
    ir::Storage<float>& out = values_[id.index].data;
    const int group = max_abs_from_[id.index];
    const float whole_max_abs =
        group >= 0 ? fused_[static_cast<std::size_t>(group)]->max_abs(ir::NodeId{max_abs_of_[id.index]})
        : numerics::traits(attrs.format).configurable_bias ? numerics::max_abs(in)
                                                           : 0.0f;
    const double step = static_cast<double>(values_[node.inputs[1].index].data[0]);
    if (bf16_copy_[id.index] != nullptr &&
        round_to_bf16_copy(attrs, step, node.type.shape, blocked_[id.index], in.data(), bf16_copy_[id.index],
                           whole_max_abs)) {
        fast_->bf16_copy_written(id);
        return;
    }
    if (blocked_[id.index]) {  // its input is blocked too (choose_channel_blocked)
        round_channel_blocked(attrs, step, node.type.shape, in.data(), out.data(), whole_max_abs);
    } else {
        ir::round_piece(attrs, step, in, out, whole_max_abs, 0);  // RoundTo's kernel, its max-abs known
    }
}

Executor::~Executor() = default;

void Executor::choose_channel_blocked(const std::vector<bool>& pinned, const std::vector<std::uint32_t>& source,
                                      const std::vector<FusionGroup>& groups, const std::vector<int>& member_of) {
    const std::uint32_t n = static_cast<std::uint32_t>(graph_.size());
    using Fit = OneDnnKernels::BlockedFit;
    // A buffer (its owner's: aliases share it) may be blocked where its writer and every reader can take it so: a
    // convolution running in the blocked layout, or a fused group that can run in the blocked order...
    std::vector<bool> fits(n, false);
    std::vector<bool> convolved(n, false);  // ...and it pays where a convolution touches it (below)
    // ...or a node whose kernel runs in either layout, its tensors all in the same one: the fast max-pooling, and a
    // RoundTo (runtime/round_channel_blocked.h) that no group runs and no shard rounds.
    auto layout_free = [&](std::uint32_t i) {
        const ir::Node& node = graph_.node(ir::NodeId{i});
        if (!live_[i] || aliased_[i] || !can_store_channel_blocked(node.type.shape)) {
            return false;
        }
        return fast_pool_[i] || (node.op == ir::OpKind::RoundTo && member_of[i] < 0 &&
                                 (rounds_shard_.empty() || !rounds_shard_[i]));
    };
    for (std::uint32_t v = 0; v < n; ++v) {
        const ir::Node& node = graph_.node(ir::NodeId{v});
        if (!stored_[v] || aliased_[v] || pinned[v] || ir::is_bound_leaf(node.op) ||
            !can_store_channel_blocked(node.type.shape)) {
            continue;
        }
        if (member_of[v] >= 0) {  // an exported member
            const FusionGroup& group = groups[static_cast<std::size_t>(member_of[v])];
            fits[v] = FusedElementwise::can_be_blocked(graph_, group, ir::NodeId{v}) &&
                      FusedElementwise::can_run_blocked(graph_, group);
        } else if (fast_->has(ir::NodeId{v})) {
            fits[v] = convolved[v] = fast_->blocked_fit(ir::NodeId{v}) == Fit::Fits;
        } else if (layout_free(v)) {
            fits[v] = true;
        }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph_.node(ir::NodeId{i});
        if (!live_[i] || aliased_[i] || ir::is_bound_leaf(node.op)) {
            continue;  // not run (an alias's readers read its owner's buffer: they are checked as its readers)
        }
        for (const ir::NodeId u : node.inputs) {
            const std::uint32_t v = source[u.index];
            if (!fits[v] || (member_of[i] >= 0 && member_of[u.index] == member_of[i])) {
                continue;  // already out, or read inside its own group
            }
            if (member_of[i] >= 0) {  // an external of a group
                const FusionGroup& group = groups[static_cast<std::size_t>(member_of[i])];
                fits[v] = FusedElementwise::can_be_blocked(graph_, group, u) &&
                          FusedElementwise::can_run_blocked(graph_, group);
            } else if (fast_->has(ir::NodeId{i}) && fast_->blocked_fit(u) == Fit::Fits) {
                convolved[v] = true;
            } else if (!layout_free(i)) {
                fits[v] = false;  // a reference kernel: plain layouts only
            }
        }
    }
    // A group's buffers of its shape are blocked all or none (it runs in one order), and so are a layout-free
    // node's tensors: one that cannot be keeps the others plain, which may keep another group's plain in turn.
    // Units [0, groups) are the groups, the rest the layout-free nodes.
    std::vector<std::uint32_t> free_nodes;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (layout_free(i)) {
            free_nodes.push_back(i);
        }
    }
    const std::size_t units = groups.size() + free_nodes.size();
    auto each_buffer = [&](std::size_t g, auto&& f) {
        if (g >= groups.size()) {
            const std::uint32_t i = free_nodes[g - groups.size()];
            const ir::Node& node = graph_.node(ir::NodeId{i});
            f(i);  // never an alias: its own buffer
            for (std::size_t k = 0; k < node.inputs.size(); ++k) {
                if (node.op != ir::OpKind::RoundTo || k == 0) {  // not a rounding's step: a scalar
                    f(source[node.inputs[k].index]);
                }
            }
            return;
        }
        const FusionGroup& group = groups[g];
        for (std::size_t k = 0; k < group.members.size(); ++k) {
            if (group.exported[k] && FusedElementwise::can_be_blocked(graph_, group, group.members[k])) {
                f(source[group.members[k].index]);
            }
        }
        for (const ir::NodeId e : group.externals) {
            if (FusedElementwise::can_be_blocked(graph_, group, e)) {
                f(source[e.index]);
            }
        }
    };
    // Sets `flag` on all of a group's buffers where some have it and `spreads` from one of them, to a fixed point.
    auto spread = [&](std::vector<bool>& flag, bool to, auto&& spreads) {
        for (bool changed = true; changed;) {
            changed = false;
            for (std::size_t g = 0; g < units; ++g) {
                bool all = true;
                bool any = false;
                each_buffer(g, [&](std::uint32_t v) {
                    all = all && flag[v] == to;
                    any = any || spreads(v);
                });
                if (any && !all) {
                    each_buffer(g, [&](std::uint32_t v) { flag[v] = to; });
                    changed = true;
                }
            }
        }
    };
    spread(fits, false, [&](std::uint32_t v) { return !fits[v]; });
    // It pays where a convolution touches the buffer, or a group that touches one a convolution touches (x - mean,
    // which a BatchNorm's groups pass between them, say: blocked, its groups run wholly in the blocked order).
    // Spread to a fixed point, so that a group's buffers are blocked all or none.
    spread(convolved, true, [&](std::uint32_t v) { return fits[v] && convolved[v]; });
    for (std::uint32_t i = 0; i < n; ++i) {
        blocked_[i] = fits[source[i]] && convolved[source[i]];
    }
}

void Executor::mark_sharded_rounding(const ExecutorOptions& options) {
    if (options.batch_shard_inputs.empty()) {
        return;
    }
    DOJO_CHECK(static_cast<bool>(options.agree_max_abs)) << "batch shard inputs need agree_max_abs";
    const std::uint32_t n = static_cast<std::uint32_t>(graph_.size());
    // Which tensors lead with the batch (their rows split into the ranks' contiguous blocks, so a rank's tensor is
    // one contiguous piece of the global one), and which merely depend on it (a weight gradient: summed over it).
    std::vector<bool> from_batch(n, false);
    std::vector<bool> leads(n, false);
    std::int64_t local_batch = 0;
    for (const ir::NodeId id : options.batch_shard_inputs) {
        DOJO_CHECK(graph_.node(id).op == ir::OpKind::Input && graph_.type(id).shape.rank() > 0)
            << "batch shard input " << id.index << " must be an Input with a batch dimension";
        from_batch[id.index] = leads[id.index] = true;
        local_batch = graph_.type(id).shape.dims()[0];
    }
    rounds_shard_.assign(n, false);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph_.node(ir::NodeId{i});
        if (node.inputs.empty()) {
            continue;
        }
        for (const ir::NodeId input : node.inputs) {
            from_batch[i] = from_batch[i] || from_batch[input.index];
        }
        leads[i] = leads[i] || lead_with_batch(graph_, node, leads, local_batch);
        if (node.op != ir::OpKind::RoundTo || !from_batch[i] || !live_[i] ||
            !ir::rounding_sees_whole_tensor(std::get<ir::RoundAttrs>(node.attrs))) {
            continue;
        }
        if (!leads[i]) {
            throw Error("node " + std::to_string(i) + " (" + node.name + ") rounds a tensor of shape " +
                        node.type.shape.to_string() + " that derives from the batch but does not lead with it, " +
                        "so the ranks' shards of it are not contiguous pieces of one process's tensor; round each " +
                        "rank's shard on its own instead (dojo train --rounding-scope rank)");
        }
        rounds_shard_[i] = true;
    }
    shard_index_ = options.shard_index;
    agree_max_abs_ = options.agree_max_abs;
}

void Executor::round_shard(ir::NodeId id) {
    const ir::Node& node = graph_.node(id);
    const ir::Storage<float>& in = values_[node.inputs[0].index].data;
    ir::Storage<float>& out = values_[id.index].data;
    const ir::RoundAttrs& attrs = std::get<ir::RoundAttrs>(node.attrs);
    const float whole_max_abs =
        numerics::traits(attrs.format).configurable_bias ? agree_max_abs_(numerics::max_abs(in)) : 0.0f;
    const double step = static_cast<double>(values_[node.inputs[1].index].data[0]);
    ir::round_piece(attrs, step, in, out, whole_max_abs, shard_index_ * out.size());
}

void Executor::run() {
    ++runs_;
    if (fast_) {
        fast_->begin_step();
    }
    for (std::uint32_t i = 0; i < graph_.size(); ++i) {
        const ir::NodeId id{i};
        if (!live_[i] || (runs_at_[i] != i && group_at_[i] < 0)) {
            continue;  // dead, or a fused member that runs with its group
        }
        if (!read_first_at_.empty()) {
            for (const std::size_t k : read_first_at_[i]) {
                before_read_(k);
            }
        }
        if (aliased_[i]) {
            continue;  // its value is its input's buffer
        }
        const auto start = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
        if (group_at_[i] >= 0) {
            const FusedElementwise& group = *fused_[static_cast<std::size_t>(group_at_[i])];
            group.run(values_);
        } else {
            if (!rounds_shard_.empty() && rounds_shard_[i]) {
                round_shard(id);
            } else if (fast_ && fast_->has(id)) {
                fast_->run(id, values_);
            } else if (!fast_pool_.empty() && fast_pool_[i]) {
                run_fast_pool(id);
            } else if (graph_.node(id).op == ir::OpKind::RoundTo &&
                       (blocked_[i] || max_abs_from_[i] >= 0 || bf16_copy_[i] != nullptr)) {
                run_round(id);
            } else {
                ir::evaluate_node(graph_, id, values_);  // leaves are skipped: their values are bound
            }
        }
        if (profiling_) {
            node_seconds_[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        if (!computed_at_.empty()) {
            for (const std::size_t k : computed_at_[i]) {
                on_computed_(k);
            }
        }
    }
}

std::size_t Executor::channel_blocked_count() const {
    return static_cast<std::size_t>(std::count(blocked_.begin(), blocked_.end(), true));
}

std::size_t Executor::fast_kernel_count() const { return fast_ ? fast_->count() : 0; }

std::size_t Executor::bf16_copy_count() const {
    return static_cast<std::size_t>(std::count_if(bf16_copy_.begin(), bf16_copy_.end(),
                                                  [](const std::uint16_t* copy) { return copy != nullptr; }));
}

std::vector<OpProfile> Executor::profile() const {
    std::map<std::pair<std::string, std::string>, OpProfile> by_kind;
    for (std::uint32_t i = 0; i < node_seconds_.size(); ++i) {
        const ir::OpKind op = graph_.node(ir::NodeId{i}).op;
        if (ir::is_bound_leaf(op) || !live_[i]) {
            continue;
        }
        const bool fused = runs_at_[i] != i || group_at_[i] >= 0;
        const std::string kernel = fused                                   ? "fused"
                                   : aliased_[i]                                ? "alias"
                                   : !fast_pool_.empty() && fast_pool_[i]       ? "vectorised"
                                   : bf16_copy_[i] != nullptr                   ? "to-bf16-copy"
                                   : blocked_[i] && op == ir::OpKind::RoundTo   ? "blocked"
                                   : fast_ && fast_->reads_bf16(ir::NodeId{i}) ? "onednn-bf16"
                                   : fast_ && fast_->has(ir::NodeId{i})        ? "onednn"
                                                                                : "reference";
        const std::string name = fused ? "elementwise" : std::string(ir::to_string(op));
        OpProfile& p = by_kind[{name, kernel}];
        p.op = name;
        p.kernel = kernel;
        p.nodes += 1;
        if (fused && group_at_[i] < 0) {
            continue;  // the group's time is counted at the node it runs at
        }
        p.runs += runs_;
        p.seconds += node_seconds_[i];
    }
    std::vector<OpProfile> out;
    for (const auto& [key, p] : by_kind) {
        out.push_back(p);
    }
    std::sort(out.begin(), out.end(), [](const OpProfile& a, const OpProfile& b) { return a.seconds > b.seconds; });
    return out;
}

void Executor::apply(std::span<const autodiff::Assignment> assignments) {
    for (const autodiff::Assignment& a : assignments) {
        const ir::Storage<float>& from = values_[a.value.index].data;
        std::copy(from.begin(), from.end(), values_[a.target.index].data.begin());
    }
}

std::size_t Executor::bytes() const { return plan_.arena_bytes; }

}  // namespace dojo::runtime
