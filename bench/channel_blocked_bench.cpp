// Fused elementwise groups (runtime/fused_elementwise.h) on plain NCHW buffers against the same groups on
// channel-blocked buffers (runtime/channel_blocked.h), side by side in one process: a BatchNorm's statistics, its
// normalisation with ReLU, and its input gradient on an activation of ResNet-18's layer1 at batch 32
// ([32, 64, 56, 56], 6.4 M elements), and ResNet-18's max-pooling forward and backward (runtime/max_pool.h; 3x3,
// stride 2, pad 1 on the stem's [32, 64, 112, 112]), and CFloat8's roundings of a layer-1 activation (nearest
// cfp8_143 and stochastic cfp8_152: runtime/round_channel_blocked.h against RoundTo's kernel, ir::round_piece); the
// `plain` rows are the peer, the `blocked` rows run in the blocked order. Run:
// `build/bench/channel_blocked_bench` (unset OPENBLAS_CORETYPE; 2 threads by default: OMP_NUM_THREADS).
#include <benchmark/benchmark.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <functional>
#include <random>
#include <vector>

#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/ir/builder.h"
#include "dojo/runtime/fused_elementwise.h"
#include "dojo/runtime/max_pool.h"
#include "dojo/runtime/round_channel_blocked.h"
#include "dojo/runtime/round_to_bf16_copy.h"
#include "dojo/ir/rounding.h"
#include "dojo/numerics/bias.h"

namespace {

using namespace dojo;
using ir::NodeId;

const ir::Shape kActivation{32, 64, 56, 56};
const ir::Shape kChannel{1, 64, 1, 1};

struct Case {
    ir::Graph graph;
    std::vector<NodeId> activations;  // the leaves and outputs of the activation's shape (blocked in `blocked` rows)
    std::vector<NodeId> leaves;
};

// x - mean, kept for the normalisation and the gradient, and the per-channel sum of its squares (the variance).
Case statistics() {
    Case c;
    ir::Graph& g = c.graph;
    const NodeId x = g.add_input("x", {ir::DType::F32, kActivation});
    const NodeId mean = g.add_input("mean", {ir::DType::F32, kChannel});
    const NodeId centred = ir::sub(g, x, mean);
    g.mark_output(centred);
    g.mark_output(ir::reduce_sum(g, ir::mul(g, centred, centred), {0, 2, 3}));
    c.activations = {x, centred};
    c.leaves = {x, mean};
    return c;
}

// relu(centred * scale + shift).
Case normalise_relu() {
    Case c;
    ir::Graph& g = c.graph;
    const NodeId x = g.add_input("x", {ir::DType::F32, kActivation});
    const NodeId scale = g.add_input("scale", {ir::DType::F32, kChannel});
    const NodeId shift = g.add_input("shift", {ir::DType::F32, kChannel});
    const NodeId y = ir::relu(g, ir::add(g, ir::mul(g, x, scale), shift));
    g.mark_output(y);
    c.activations = {x, y};
    c.leaves = {x, scale, shift};
    return c;
}

// The input gradient's shape: the per-channel sum of t = dy * centred, and dx = (dy - t * a - b) * scale.
Case input_gradient() {
    Case c;
    ir::Graph& g = c.graph;
    const NodeId dy = g.add_input("dy", {ir::DType::F32, kActivation});
    const NodeId centred = g.add_input("centred", {ir::DType::F32, kActivation});
    const NodeId a = g.add_input("a", {ir::DType::F32, kChannel});
    const NodeId b = g.add_input("b", {ir::DType::F32, kChannel});
    const NodeId scale = g.add_input("scale", {ir::DType::F32, kChannel});
    const NodeId t = ir::mul(g, dy, centred);
    const NodeId dx = ir::mul(g, ir::sub(g, ir::sub(g, dy, ir::mul(g, t, a)), b), scale);
    g.mark_output(dx);
    g.mark_output(ir::reduce_sum(g, t, {0, 2, 3}));
    c.activations = {dy, centred, dx};
    c.leaves = {dy, centred, a, b, scale};
    return c;
}

enum class Layout { Plain, Blocked };

void run(benchmark::State& state, const std::function<Case()>& make, Layout layout) {
    const Case c = make();
    const std::vector<bool> live(c.graph.size(), true);
    std::vector<bool> kept(c.graph.size(), false);
    for (const NodeId out : c.graph.outputs()) {
        kept[out.index] = true;
    }
    std::vector<compiler::FusionGroup> groups = compiler::find_fusion_groups(c.graph, live, kept);
    if (groups.size() != 1) {
        state.SkipWithError("expected one fused group");
        return;
    }
    std::vector<bool> blocked(c.graph.size(), false);
    for (const NodeId v : c.activations) {
        blocked[v.index] = layout == Layout::Blocked;
    }
    const runtime::FusedElementwise group(c.graph, groups.front(), blocked);
    std::vector<ir::Buffer<float>> values;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::int64_t bytes = 0;
    for (std::uint32_t i = 0; i < c.graph.size(); ++i) {
        const ir::Shape& shape = c.graph.type(NodeId{i}).shape;
        values.emplace_back(shape, std::vector<float>(static_cast<std::size_t>(shape.numel())));
        const bool leaf = c.graph.node(NodeId{i}).op == ir::OpKind::Input;
        if (leaf || kept[i]) {
            bytes += shape.numel() * 4;  // read once or written once
        }
        if (leaf) {
            for (float& v : values.back().data) {
                v = normal(rng);
            }
        }
    }
    group.run(values);  // warm: every page touched
    for (auto _ : state) {
        group.run(values);
    }
    state.SetBytesProcessed(state.iterations() * bytes);
}

// A tensor of `shape` drawn from N(0, 1).
std::vector<float> normal_values(const ir::Shape& shape, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> values(static_cast<std::size_t>(shape.numel()));
    for (float& v : values) {
        v = normal(rng);
    }
    return values;
}

// CFloat8's roundings as the cfp8 policy makes them: activations nearest in cfp8_143, gradients stochastic in
// cfp8_152.
ir::RoundAttrs cfp8_rounding(numerics::Rounding rounding) {
    return {rounding == numerics::Rounding::Stochastic ? numerics::FormatKind::Cfp8_152
                                                       : numerics::FormatKind::Cfp8_143,
            rounding, 0.0, 1, 1};
}

// The max-pooling kernels on random values (the layout does not change which values win, only where they lie);
// `isa` picks the blocked backward's code (Auto: AVX-512 where the CPU has it).
void pool(benchmark::State& state, bool backward, Layout layout, numerics::Isa isa = numerics::Isa::Auto) {
    if (!numerics::isa_available(isa)) {
        state.SkipWithError("this CPU lacks the instruction set");
        return;
    }
    const ir::Shape x_shape{32, 64, 112, 112};
    const ir::Shape y_shape{32, 64, 56, 56};
    const ir::PoolAttrs attrs{{3, 3}, {2, 2}, {1, 1, 1, 1}};
    const std::vector<float> x = normal_values(x_shape, 1);
    const std::vector<float> dy = normal_values(y_shape, 2);
    std::vector<float> y(dy.size());
    std::vector<float> dx(x.size());
    const bool blocked = layout == Layout::Blocked;
    auto once = [&] {
        if (backward) {
            if (blocked) {
                runtime::max_pool_backward_channel_blocked(attrs, x_shape, y_shape, x.data(), dy.data(), dx.data(),
                                                           isa);
            } else {
                runtime::max_pool_backward(attrs, x_shape, y_shape, x.data(), dy.data(), dx.data());
            }
        } else {
            (blocked ? runtime::max_pool_channel_blocked : runtime::max_pool)(attrs, x_shape, y_shape, x.data(),
                                                                              y.data());
        }
    };
    once();  // warm: every page touched
    for (auto _ : state) {
        once();
    }
    state.SetBytesProcessed(state.iterations() * (x_shape.numel() + y_shape.numel() +
                                                  (backward ? x_shape.numel() : 0)) *
                            4);
}

// RoundTo of a [32, 64, 56, 56] activation as the cfp8 policy rounds it: max-abs for the bias, then the rounding.
// How a rounding reaches the BF16 copy a convolution reads: written as FP32 and reordered by oneDNN (the peer), or
// written as the copy (runtime/round_to_bf16_copy.h). Both blocked.
enum class Handover { Fp32ThenReorder, Bf16Copy };

void round_to(benchmark::State& state, numerics::Rounding rounding, Layout layout);

void round_to_bf16(benchmark::State& state, numerics::Rounding rounding, Handover handover) {
    const ir::RoundAttrs attrs = cfp8_rounding(rounding);
    const std::vector<float> x = normal_values(kActivation, 1);
    std::vector<float> y(x.size());
    std::vector<std::uint16_t> copy(x.size());
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    const dnnl::memory::dims dims(kActivation.dims().begin(), kActivation.dims().end());
    const dnnl::memory::desc f32(dims, dnnl::memory::data_type::f32, dnnl::memory::format_tag::aBcd16b);
    const dnnl::memory::desc bf16(dims, dnnl::memory::data_type::bf16, dnnl::memory::format_tag::aBcd16b);
    dnnl::memory from(f32, engine, y.data());
    dnnl::memory to(bf16, engine, copy.data());
    dnnl::reorder reorder(dnnl::reorder::primitive_desc(engine, f32, engine, bf16));
    auto once = [&] {
        const float max_abs = numerics::max_abs(x);
        if (handover == Handover::Bf16Copy) {
            runtime::round_to_bf16_copy(attrs, 1.0, kActivation, true, x.data(), copy.data(), max_abs);
        } else {
            runtime::round_channel_blocked(attrs, 1.0, kActivation, x.data(), y.data(), max_abs);
            reorder.execute(stream, from, to);
            stream.wait();
        }
    };
    once();  // warm: every page touched
    for (auto _ : state) {
        once();
    }
    state.SetBytesProcessed(state.iterations() * kActivation.numel() * 6);
}

void round_to(benchmark::State& state, numerics::Rounding rounding, Layout layout) {
    const ir::RoundAttrs attrs = cfp8_rounding(rounding);
    const std::vector<float> x = normal_values(kActivation, 1);
    std::vector<float> y(x.size());
    auto once = [&] {
        if (layout == Layout::Blocked) {
            runtime::round_channel_blocked(attrs, 1.0, kActivation, x.data(), y.data(), numerics::max_abs(x));
        } else {
            ir::round_piece(attrs, 1.0, x, y, numerics::max_abs(x), 0);
        }
    };
    once();  // warm: every page touched
    for (auto _ : state) {
        once();
    }
    state.SetBytesProcessed(state.iterations() * kActivation.numel() * 8);
}

}  // namespace

BENCHMARK_CAPTURE(run, statistics_plain, statistics, Layout::Plain)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, statistics_blocked, statistics, Layout::Blocked)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, normalise_relu_plain, normalise_relu, Layout::Plain)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, normalise_relu_blocked, normalise_relu, Layout::Blocked)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, input_gradient_plain, input_gradient, Layout::Plain)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, input_gradient_blocked, input_gradient, Layout::Blocked)->Unit(benchmark::kMillisecond);

BENCHMARK_CAPTURE(pool, max_pool_plain, false, Layout::Plain)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(pool, max_pool_blocked, false, Layout::Blocked)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(pool, max_pool_backward_plain, true, Layout::Plain)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(pool, max_pool_backward_blocked, true, Layout::Blocked)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(pool, max_pool_backward_blocked_portable, true, Layout::Blocked, numerics::Isa::Portable)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(round_to, nearest_plain, numerics::Rounding::NearestEven, Layout::Plain)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(round_to, nearest_blocked, numerics::Rounding::NearestEven, Layout::Blocked)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(round_to_bf16, nearest_then_reorder, numerics::Rounding::NearestEven, Handover::Fp32ThenReorder)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(round_to_bf16, nearest_bf16_copy, numerics::Rounding::NearestEven, Handover::Bf16Copy)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(round_to_bf16, stochastic_then_reorder, numerics::Rounding::Stochastic, Handover::Fp32ThenReorder)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(round_to_bf16, stochastic_bf16_copy, numerics::Rounding::Stochastic, Handover::Bf16Copy)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(round_to, stochastic_plain, numerics::Rounding::Stochastic, Layout::Plain)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(round_to, stochastic_blocked, numerics::Rounding::Stochastic, Layout::Blocked)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
