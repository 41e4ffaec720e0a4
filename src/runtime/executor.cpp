#include "dojo/runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include "dojo/ir/interpreter.h"
#include "dojo/ir/rounding.h"
#include "dojo/numerics/bias.h"
#include "dojo/runtime/fused_elementwise.h"
#include "dojo/runtime/max_pool.h"
#include "dojo/runtime/transpose.h"
#include "dojo/runtime/onednn_kernels.h"
#include "dojo/runtime/round_channel_blocked.h"
#include "dojo/runtime/round_to_bf16_copy.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"

namespace dojo::runtime {

Executor::Executor(const ir::Graph& graph, ExecutorOptions options) : Executor(lower_cpu(graph, options), options) {}

Executor::Executor(ExecPlan plan, const ExecutorOptions& options) : graph_(*plan.graph), plan_(std::move(plan)) {
    bind_values();
    on_computed_ = options.on_computed;
    before_read_ = options.before_read;
    agree_max_abs_ = options.agree_max_abs;
    profiling_ = options.profile;
    if (profiling_) {
        node_seconds_.assign(graph_.size(), 0.0);
        if (plan_.onednn) {
            plan_.onednn->time_reorders();
        }
    }
    for (const compiler::FusionGroup& group : plan_.groups) {
        fused_.push_back(std::make_unique<FusedElementwise>(graph_, group, plan_.blocked));
    }
    bf16_copy_.assign(graph_.size(), nullptr);
    for (std::uint32_t i = 0; i < graph_.size(); ++i) {
        if (plan_.kernel[i] == NodeKernel::RoundToBf16Copy) {
            bf16_copy_[i] = plan_.onednn->bf16_copy(ir::NodeId{i});
        }
        if (plan_.max_abs_from[i] >= 0) {
            fused_[static_cast<std::size_t>(plan_.max_abs_from[i])]->track_max_abs(ir::NodeId{plan_.max_abs_of[i]});
        }
    }
}

// The arena, allocated and zeroed once (leaves start at 0; every page is touched here), and every node's buffer
// bound to its place in it; an alias shares its source's buffer.
void Executor::bind_values() {
    const std::uint32_t n = static_cast<std::uint32_t>(graph_.size());
    const std::size_t arena_bytes = plan_.memory.arena_bytes;
    arena_.reset(static_cast<float*>(std::aligned_alloc(kArenaAlignmentBytes,
                                                        std::max(arena_bytes, kArenaAlignmentBytes))));
    if (!arena_) {
        throw Error("cannot allocate the executor's arena of " + std::to_string(arena_bytes) + " bytes");
    }
    std::memset(arena_.get(), 0, arena_bytes);
    values_.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Shape& shape = graph_.node(ir::NodeId{i}).type.shape;
        float* at = arena_.get() + plan_.memory.offset_bytes[i] / sizeof(float);
        ir::Buffer<float>& value = values_.emplace_back(ir::Buffer<float>(shape, std::vector<float>{}));
        if (plan_.value_bytes[i] > 0) {
            value.data = ir::Storage<float>::bound_to(at, plan_.value_bytes[i] / sizeof(float));
        } else if (plan_.source[i] != i) {  // an alias or an update in place: its source comes first, bound already
            ir::Storage<float>& from = values_[plan_.source[i]].data;
            value.data = ir::Storage<float>::bound_to(from.data(), from.size());
        }
    }
}

Executor::~Executor() = default;

void Executor::run_round(ir::NodeId id) {
    const ir::Node& node = graph_.node(id);
    const ir::RoundAttrs& attrs = std::get<ir::RoundAttrs>(node.attrs);
    const ir::Storage<float>& in = values_[node.inputs[0].index].data;
    ir::Storage<float>& out = values_[id.index].data;
    const int group = plan_.max_abs_from[id.index];
    const float whole_max_abs =
        group >= 0 ? fused_[static_cast<std::size_t>(group)]->max_abs(ir::NodeId{plan_.max_abs_of[id.index]})
        : numerics::traits(attrs.format).configurable_bias ? numerics::max_abs(in)
                                                           : 0.0f;
    const double step = static_cast<double>(values_[node.inputs[1].index].data[0]);
    if (bf16_copy_[id.index] != nullptr &&
        round_to_bf16_copy(attrs, step, node.type.shape, plan_.blocked[id.index], in.data(), bf16_copy_[id.index],
                           whole_max_abs)) {
        plan_.onednn->bf16_copy_written(id);
        return;
    }
    if (plan_.blocked[id.index]) {  // its input is blocked too (choose_channel_blocked)
        round_channel_blocked(attrs, step, node.type.shape, in.data(), out.data(), whole_max_abs);
    } else {
        ir::round_piece(attrs, step, in, out, whole_max_abs, 0);  // RoundTo's kernel, its max-abs known
    }
}

void Executor::round_shard(ir::NodeId id) {
    const ir::Node& node = graph_.node(id);
    const ir::Storage<float>& in = values_[node.inputs[0].index].data;
    ir::Storage<float>& out = values_[id.index].data;
    const ir::RoundAttrs& attrs = std::get<ir::RoundAttrs>(node.attrs);
    const float whole_max_abs =
        numerics::traits(attrs.format).configurable_bias ? agree_max_abs_(numerics::max_abs(in)) : 0.0f;
    const double step = static_cast<double>(values_[node.inputs[1].index].data[0]);
    ir::round_piece(attrs, step, in, out, whole_max_abs, plan_.shard_index * out.size());
}

void Executor::run_fast_pool(ir::NodeId id) {
    const ir::Node& node = graph_.node(id);
    const ir::PoolAttrs& attrs = std::get<ir::PoolAttrs>(node.attrs);
    const ir::Buffer<float>& x = values_[node.inputs[0].index];
    float* out = values_[id.index].data.data();
    const bool blocked = plan_.blocked[id.index];  // its inputs' buffers are too (choose_channel_blocked)
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

void Executor::run() {
    ++runs_;
    if (plan_.onednn) {
        plan_.onednn->begin_step();
    }
    for (std::uint32_t i = 0; i < graph_.size(); ++i) {
        const ir::NodeId id{i};
        const NodeKernel kernel = plan_.kernel[i];
        if (kernel == NodeKernel::None || kernel == NodeKernel::FusedMember) {
            continue;  // a leaf, dead, or computed by its group
        }
        if (!plan_.read_first_at.empty()) {
            for (const std::size_t k : plan_.read_first_at[i]) {
                before_read_(k);
            }
        }
        if (kernel == NodeKernel::Alias) {
            continue;  // its value is its input's buffer
        }
        const auto start = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
        switch (kernel) {
        case NodeKernel::FusedGroup:
            fused_[static_cast<std::size_t>(plan_.group_at[i])]->run(values_);
            break;
        case NodeKernel::RoundShard:
            round_shard(id);
            break;
        case NodeKernel::OneDnn:
        case NodeKernel::OneDnnBf16:
            plan_.onednn->run(id, values_);
            break;
        case NodeKernel::VectorisedPool:
            run_fast_pool(id);
            break;
        case NodeKernel::TiledTranspose: {
            const ir::Node& node = graph_.node(id);
            const ir::Buffer<float>& x = values_[node.inputs[0].index];
            transpose_tiled(x.shape, std::get<ir::TransposeAttrs>(node.attrs).perm, x.data.data(),
                            values_[id.index].data.data());
            break;
        }
        case NodeKernel::RoundBlocked:
        case NodeKernel::RoundToBf16Copy:
        case NodeKernel::RoundGroupMaxAbs:
            run_round(id);
            break;
        default:
            ir::evaluate_node(graph_, id, values_);
        }
        if (profiling_) {
            node_seconds_[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        if (!plan_.computed_at.empty()) {
            for (const std::size_t k : plan_.computed_at[i]) {
                on_computed_(k);
            }
        }
    }
}

std::size_t Executor::channel_blocked_count() const {
    return static_cast<std::size_t>(std::count(plan_.blocked.begin(), plan_.blocked.end(), true));
}

std::size_t Executor::fast_kernel_count() const { return plan_.onednn ? plan_.onednn->count() : 0; }

std::size_t Executor::bf16_copy_count() const {
    return static_cast<std::size_t>(std::count(plan_.kernel.begin(), plan_.kernel.end(), NodeKernel::RoundToBf16Copy));
}

void Executor::reset_profile() {
    std::fill(node_seconds_.begin(), node_seconds_.end(), 0.0);
    runs_ = 0;
}

std::vector<OpProfile> Executor::profile() const {
    std::map<std::pair<std::string, std::string>, OpProfile> by_kind;
    for (std::uint32_t i = 0; i < node_seconds_.size(); ++i) {
        const ir::OpKind op = graph_.node(ir::NodeId{i}).op;
        if (ir::is_bound_leaf(op) || !plan_.live[i]) {
            continue;
        }
        const NodeKernel k = plan_.kernel[i];
        const bool fused = k == NodeKernel::FusedGroup || k == NodeKernel::FusedMember;
        const std::string kernel = fused ? "fused" : std::string(to_string(k));
        const std::string name = fused ? "elementwise" : std::string(ir::to_string(op));
        OpProfile& p = by_kind[{name, kernel}];
        p.op = name;
        p.kernel = kernel;
        p.nodes += 1;
        if (k == NodeKernel::FusedMember) {
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
        ir::Storage<float>& to = values_[a.target.index].data;
        if (from.data() != to.data()) {  // else computed in place (ExecutorOptions::in_place_updates)
            std::copy(from.begin(), from.end(), to.begin());
        }
    }
}

}  // namespace dojo::runtime
