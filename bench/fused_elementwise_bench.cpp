// Fused elementwise groups (runtime/fused_elementwise.h) against the same ops run one at a time, side by side in one
// process: the chains a lowered BatchNorm, ReLU and BF16 rounding leave in ResNet-18's training step, on an
// activation of ResNet-18's layer1 at batch 32 ([32, 64, 56, 56], 6.4 M elements). Each row reports the bytes the
// group must move (its external inputs read once, its exported values written once) per second; the `unfused`
// rows are the peer. Run: `build/bench/fused_elementwise_bench` (unset OPENBLAS_CORETYPE; 2 threads by default:
// OMP_NUM_THREADS).
#include <benchmark/benchmark.h>

#include <functional>
#include <random>
#include <vector>

#include "dojo/ir/builder.h"
#include "dojo/runtime/executor.h"

namespace {

using namespace dojo;
using ir::NodeId;

const ir::Shape kActivation{32, 64, 56, 56};
const ir::Shape kChannel{1, 64, 1, 1};

struct Case {
    ir::Graph graph;
    std::vector<NodeId> leaves;
    std::int64_t bytes_moved = 0;  // externals read + outputs written, in bytes
};

ir::RoundAttrs bf16_nearest() { return ir::RoundAttrs{}; }

// What a BatchNorm's forward starts with: the convolution's output through RoundGrad (the gradient's rounding),
// summed per channel for the mean.
Case round_grad_and_channel_sum() {
    Case c;
    ir::Graph& g = c.graph;
    const NodeId x = g.add_input("x", {ir::DType::F32, kActivation});
    const NodeId step = g.add_input("step", {ir::DType::F32, ir::Shape{}});
    const NodeId copy = ir::round_grad(g, x, step, bf16_nearest());
    g.mark_output(copy);
    g.mark_output(ir::reduce_sum(g, copy, {0, 2, 3}));
    c.leaves = {x, step};
    c.bytes_moved = 2 * kActivation.numel() * 4;
    return c;
}

// The normalisation: relu(x * scale + shift), kept for ReLU's gradient, and its BF16 rounding for the next conv.
Case normalise_relu_round() {
    Case c;
    ir::Graph& g = c.graph;
    const NodeId x = g.add_input("x", {ir::DType::F32, kActivation});
    const NodeId scale = g.add_input("scale", {ir::DType::F32, kChannel});
    const NodeId shift = g.add_input("shift", {ir::DType::F32, kChannel});
    const NodeId step = g.add_input("step", {ir::DType::F32, ir::Shape{}});
    const NodeId y = ir::relu(g, ir::add(g, ir::mul(g, x, scale), shift));
    g.mark_output(y);
    g.mark_output(ir::round_to(g, y, step, bf16_nearest()));
    c.leaves = {x, scale, shift, step};
    c.bytes_moved = 3 * kActivation.numel() * 4;
    return c;
}

// ReLU's gradient and the shift's gradient (its per-channel sum).
Case relu_gradient_and_channel_sum() {
    Case c;
    ir::Graph& g = c.graph;
    const NodeId y = g.add_input("y", {ir::DType::F32, kActivation});
    const NodeId dy = g.add_input("dy", {ir::DType::F32, kActivation});
    const NodeId dx = ir::mul(g, ir::step(g, y), dy);
    g.mark_output(dx);
    g.mark_output(ir::reduce_sum(g, dx, {0, 2, 3}));
    c.leaves = {y, dy};
    c.bytes_moved = 3 * kActivation.numel() * 4;
    return c;
}

void run(benchmark::State& state, const std::function<Case()>& make, bool fused) {
    const Case c = make();
    runtime::ExecutorOptions options;
    options.fuse_elementwise = fused;
    runtime::Executor executor(c.graph, options);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const NodeId leaf : c.leaves) {
        for (float& v : executor.value(leaf).data) {
            v = normal(rng);
        }
    }
    executor.run();  // warm: every page touched
    for (auto _ : state) {
        executor.run();
    }
    state.SetBytesProcessed(state.iterations() * c.bytes_moved);
}

}  // namespace

BENCHMARK_CAPTURE(run, round_grad_sum_fused, round_grad_and_channel_sum, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, round_grad_sum_unfused, round_grad_and_channel_sum, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, normalise_relu_round_fused, normalise_relu_round, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, normalise_relu_round_unfused, normalise_relu_round, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, relu_grad_sum_fused, relu_gradient_and_channel_sum, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run, relu_grad_sum_unfused, relu_gradient_and_channel_sum, false)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
