// Calibration of a machine description of a CPU host that trains (machines/lib/hosts.toml, kind dev-vm-rank): the
// rates of the runtime's own kernels on this machine, each from one op (or a chain of them) on shapes of its own run
// by the executor as `dojo train` runs it (runtime/exec_plan.h chooses the kernel); sim/cpu_kernel_time.h times a
// step's kernels at these rates. Nothing the simulator is later checked against: whole training steps are measured
// separately (bench/sim_vs_measured.py, its steps part).
//
//   cpu_calibration [--threads N]      (default 2: the threads dojo train uses on the development VM)
//
// Prints one JSON line per measurement and, last, {"fit": {...}} with:
//   matmul_fp32_gflop_s     oneDNN's FP32 matrix product, 1024 x 1024 x 1024, the best of 5 runs
//   matmul_bf16_gflop_s     the same with BF16-rounded operands (read as BF16 where the CPU multiplies BF16)
//   matmul_small_{fp32,bf16}_efficiency
//                           a [64, 512] . [512, 512] product's rate as a share of the 1024^3 one's, the kernels alone
//   fused_gb_s              a fused elementwise group (relu(x) * y + z), bytes read and written per second, on
//                           tensors of 64 MiB each (beyond any cache)
//   fused_in_cache_gb_s     the same on 256 KiB tensors (in the core's private cache)
//   reference_gb_s          reference kernels that move data: attention's two transposes, bytes per second
//   node_overhead_us        the time of one node that does almost nothing (an Add of 16 elements), reference
//   matrix_call_overhead_us the time of a oneDNN product of 16 x 16 x 16: a call's fixed cost
//   parallel_kernel_overhead_us  a kernel across the cores on a small tensor, less its bytes at the in-cache rate
//   fused_map_ns, fused_divide_ns, fused_{exp,log,tanh,erf,sigmoid}_ns
//                           what one more member of a fused group costs per element, the cores together: the
//                           slope between chains of 1 and 9 maps (Add/Mul; Div/Sqrt; each libm function on its own)
//                           over 64 Ki elements in cache
//   pool_tiled_forward_ns, pool_tiled_backward_ns
//                           max-pooling by 2x2 windows at stride 2, [8, 32, 48, 48], per vector step of the kernel
//                           (16 outputs of a row; runtime::MaxPoolKernel::Tiled2x2)
//   pool_window_{forward,backward}_ns, pool_window_plain_{forward,backward}_ns
//                           the other max-pooling kernels per window position (outputs x window size), 3x3 windows
//                           at stride 2 with padding 1 over [8, 32, 48, 48]: channel-blocked, and plain
//   transpose_tiles_ns, transpose_tiles_small_ns
//                           a transpose of a matrix's two axes per element (square tiles): [512, 768] on the
//                           threads, [48, 1000] on one thread (too small to share)
//   round_bf16_ns, round_cfp8_ns, round_cfp8_stochastic_ns
//                           a RoundTo of its own (not fused) per element, 4 Mi elements: BF16 nearest-even,
//                           CFloat8 1-4-3 nearest-even with its bias chosen from the tensor's max-abs, and CFloat8
//                           1-5-2 with stochastic rounding (the cfp8 policy's output gradients)
//   round_bf16_small_ns, round_cfp8_small_ns, round_cfp8_stochastic_small_ns
//                           the same over 16 Ki elements, which the rounding does on one thread
//   fused_sum_ns            a ReduceSum member of a fused group (sums of rows) per element summed, less a map's
//   conv_{forward,backward_data,backward_filter}_{fp32,bf16}_{32,128,512}px_efficiency
//                           the same kernels' rate over 32, 128 and 512 output pixels (over the batch: [8, 192, P, P],
//                           P = 2, 4, 8) as a share of their rate over 1,152 (P = 12), each kernel timed alone
//   conv_{forward,backward_data,backward_filter}_{fp32,bf16}_gflop_s
//                           oneDNN's convolutions as the runtime runs them: 3x3, pad 1, [8, 96, 12, 12] with 96
//                           filters, each direction on its own; bf16 with BF16-rounded operands (reported: at
//                           working sizes they run at the products' rate, which the model uses)
//   small_node_us           a reference Mul of 64 elements by a scalar (a per-channel statistic's arithmetic)
//   reference_{reduce_sum,log_softmax,slice,reshape}_gb_s
//                           reference kernels, bytes per second (inputs read, output written): a sum over
//                           the last axis of [64, 96, 80], LogSoftmax over rows of [1536, 96], a third of the last axis
//                           of [16, 100, 576], a reshape of [64, 96, 80] to [64, 7680]
//   reference_map_gb_s      a reference elementwise map too small to fuse (an Add), bytes per second beyond a node's
//                           fixed cost: the slope between 256 and 4,032 elements
//   copy_gb_s               a copy of 64 MiB into another buffer (the executor's apply of an update), bytes read and
//                           written per second
//   clock_ghz               the core's running clock: a chain of dependent integer adds, one a cycle (a VM reports its
//                           TSC's rate, not the clock the core runs at)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dojo/ir/builder.h"
#include "dojo/ir/op.h"
#include "dojo/ir/rounding.h"
#include "dojo/runtime/executor.h"
#include "dojo/runtime/max_pool.h"

namespace {

using dojo::ir::DType;
using dojo::ir::Graph;
using dojo::ir::NodeId;
using dojo::ir::Shape;

// The graph's inputs in [0.5, 1.5), then one warm-up run.
void fill_and_warm_up(const Graph& graph, dojo::runtime::Executor& executor) {
    for (const NodeId id : graph.inputs()) {
        for (float& v : executor.value(id).data) {
            v = 0.5f + static_cast<float>(std::rand() % 1000) / 1000.0f;
        }
    }
    executor.run();
}

// Best seconds of `runs` runs of the executor on `graph` (after fill_and_warm_up). Unfused: every node its own kernel
// (what a step's unfused nodes and reference kernels cost).
enum class Fusion { Fused, Unfused };
double best_run(const Graph& graph, int runs, Fusion fusion = Fusion::Fused) {
    dojo::runtime::ExecutorOptions options;
    options.fuse_elementwise = fusion == Fusion::Fused;
    dojo::runtime::Executor executor(graph, options);
    fill_and_warm_up(graph, executor);
    double best = 1e30;
    for (int r = 0; r < runs; ++r) {
        const auto start = std::chrono::steady_clock::now();
        executor.run();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
}

// Adds [m, k] . [k, n] to `g`, the operands BF16-rounded where `bf16`; returns the product.
NodeId add_product(Graph& g, std::int64_t m, std::int64_t k, std::int64_t n, bool bf16) {
    NodeId a = g.add_input("a", {DType::F32, Shape({m, k})});
    NodeId b = g.add_input("b", {DType::F32, Shape({k, n})});
    if (bf16) {
        const NodeId step = g.add_input(dojo::ir::kStepInputName, {DType::F32, Shape({})});
        dojo::ir::RoundAttrs attrs;
        attrs.format = dojo::numerics::FormatKind::Bf16;
        a = dojo::ir::round_to(g, a, step, attrs);
        b = dojo::ir::round_to(g, b, step, attrs);
    }
    const NodeId product = dojo::ir::matmul(g, a, b);
    g.mark_output(product);
    return product;
}

double matmul_gflop_s(bool bf16) {
    constexpr std::int64_t n = 1024;
    Graph g;
    add_product(g, n, n, n, bf16);
    const double seconds = best_run(g, 5);
    return 2.0 * n * n * n / seconds / 1e9;  // the roundings' passes are a few percent of the product's time
}

// A [m, k] . [k, n] product's rate, GFLOP/s, its kernel alone (best_node_run, below), the operands BF16-rounded
// where `bf16`.
double product_gflop_s(std::int64_t m, std::int64_t k, std::int64_t n, bool bf16, int runs);

// A product of a small model's size, [64, 512] . [512, 512] (64 samples through a 512-wide layer), as a share of
// the 1024^3 product's rate, both measured here side by side: the cores split fewer rows, and packing the operands
// weighs more against fewer multiplications (sim/cpu_kernel_time.h interpolates between the two sizes).
double matmul_small_efficiency(bool bf16) {
    const double large = product_gflop_s(1024, 1024, 1024, bf16, 5);
    return std::min(1.0, product_gflop_s(64, 512, 512, bf16, 200) / large);
}

double fused_gb_s(std::int64_t elements) {
    Graph g;
    const NodeId x = g.add_input("x", {DType::F32, Shape({elements})});
    const NodeId y = g.add_input("y", {DType::F32, Shape({elements})});
    const NodeId z = g.add_input("z", {DType::F32, Shape({elements})});
    g.mark_output(dojo::ir::add(g, dojo::ir::mul(g, dojo::ir::relu(g, x), y), z));
    const int runs = elements > (1 << 20) ? 10 : 200;
    return 4.0 * 4.0 * static_cast<double>(elements) / best_run(g, runs) / 1e9;  // 3 reads, 1 write
}

// Best seconds of `runs` runs of node `id`'s kernel alone (the executor's profile) in `graph`, after
// fill_and_warm_up: what the operands' roundings and reorders around it cost is left out.
double best_node_run(const Graph& graph, NodeId id, int runs) {
    dojo::runtime::ExecutorOptions options;
    options.profile = true;
    dojo::runtime::Executor executor(graph, options);
    fill_and_warm_up(graph, executor);
    double best = 1e30;
    for (int r = 0; r < runs; ++r) {
        executor.reset_profile();
        executor.run();
        best = std::min(best, executor.node_seconds()[id.index]);
    }
    return best;
}

double product_gflop_s(std::int64_t m, std::int64_t k, std::int64_t n, bool bf16, int runs) {
    Graph g;
    const NodeId product = add_product(g, m, k, n, bf16);
    return 2.0 * static_cast<double>(m * k * n) / best_node_run(g, product, runs) / 1e9;
}

// Seconds of one run of a single-op graph built by `build` (best of `runs`).
double op_seconds(const std::function<void(Graph&)>& build, int runs) {
    Graph g;
    build(g);
    return best_run(g, runs);
}

// oneDNN's cost of a call on a tiny product (16 x 16 x 16): what every matrix op of a small model pays.
double matrix_call_overhead_us() {
    return 1e6 * op_seconds([](Graph& g) {
        const NodeId a = g.add_input("a", {DType::F32, Shape({16, 16})});
        const NodeId b = g.add_input("b", {DType::F32, Shape({16, 16})});
        g.mark_output(dojo::ir::matmul(g, a, b));
    }, 2000);
}

// A kernel run across the cores on a small tensor (a fused group of 16384 elements, 256 KiB moved): its time less
// the bytes at the in-cache rate is what starting and joining the threads costs.
double parallel_kernel_overhead_us(double in_cache_gb_s) {
    constexpr std::int64_t n = 16384;
    const double seconds = op_seconds([](Graph& g) {
        const NodeId x = g.add_input("x", {DType::F32, Shape({n})});
        const NodeId y = g.add_input("y", {DType::F32, Shape({n})});
        const NodeId z = g.add_input("z", {DType::F32, Shape({n})});
        g.mark_output(dojo::ir::add(g, dojo::ir::mul(g, dojo::ir::relu(g, x), y), z));
    }, 2000);
    return 1e6 * std::max(0.0, seconds - 16.0 * n / (in_cache_gb_s * 1e9));
}

// Reference kernels that move data (transposes, slices, softmax rows): two transposes of a [16, 128, 4, 64] tensor
// as attention lays heads out (heads forward, then the last two axes), bytes read and written per second.
double reference_gb_s() {
    const double seconds = op_seconds([](Graph& g) {
        const NodeId x = g.add_input("x", {DType::F32, Shape({16, 128, 4, 64})});
        const NodeId heads = dojo::ir::transpose(g, x, {0, 2, 1, 3});
        g.mark_output(dojo::ir::transpose(g, heads, {0, 1, 3, 2}));
    }, 20);
    return 2.0 * 2.0 * 4.0 * 16 * 128 * 4 * 64 / seconds / 1e9;
}

// One more member of a fused group, per element (the cores together): chains of 1 and 9 maps over an in-cache
// tensor, the difference over 8 members. `map` adds a member to the chain (x and a second input y).
double fused_member_ns(const std::function<NodeId(Graph&, NodeId, NodeId)>& map) {
    constexpr std::int64_t n = std::int64_t{64} << 10;
    auto chain = [&](int members) {
        return op_seconds([&](Graph& g) {
            NodeId x = g.add_input("x", {DType::F32, Shape({n})});
            const NodeId y = g.add_input("y", {DType::F32, Shape({n})});
            for (int k = 0; k < members; ++k) {
                x = map(g, x, y);
            }
            g.mark_output(x);
        }, 500);
    };
    return 1e9 * std::max(0.0, chain(9) - chain(1)) / 8.0 / static_cast<double>(n);
}

// The tiled max-pooling kernel, forward or backward, per vector step (16 outputs of a row): 2x2 windows, stride 2.
double pool_ns(bool backward) {
    const Shape shape({8, 32, 48, 48});
    const double seconds = op_seconds([&](Graph& g) {
        const NodeId x = g.add_input("x", {DType::F32, shape});
        const NodeId y = dojo::ir::max_pool2d(g, x);
        if (!backward) {
            g.mark_output(y);
            return;
        }
        const NodeId dy = g.add_input("dy", g.type(y));
        g.mark_output(g.add(dojo::ir::OpKind::MaxPool2dBackward, dojo::ir::PoolAttrs{}, {x, dy}));
    }, 50);
    const double steps = 8.0 * 32 * 24 * ((24 + 15) / 16);  // planes x output rows x steps a row
    return 1e9 * seconds / steps;
}

// The other vectorised max-pooling kernels, forward or backward, per window position (outputs x window size): 3x3
// windows at stride 2 with padding 1 (ResNet's stem pooling) over [8, 32, 48, 48], in the channel-blocked layout
// (`blocked`: the kernels a model of 16-channel blocks runs) or the plain one. Called directly: a pooling of its own
// is never blocked by the lowering.
double window_pool_ns(bool backward, bool blocked) {
    const Shape x_shape({8, 32, 48, 48});
    const dojo::ir::PoolAttrs attrs{{3, 3}, {2, 2}, {1, 1, 1, 1}};
    const Shape y_shape({8, 32, 24, 24});
    std::vector<float> x(static_cast<std::size_t>(x_shape.numel())), dx(x.size());
    std::vector<float> y(static_cast<std::size_t>(y_shape.numel())), dy(y.size(), 1.0f);
    for (float& v : x) {
        v = static_cast<float>(std::rand() % 1000) / 1000.0f;
    }
    auto run = [&] {
        namespace rt = dojo::runtime;
        if (backward && blocked) {
            rt::max_pool_backward_channel_blocked(attrs, x_shape, y_shape, x.data(), dy.data(), dx.data());
        } else if (backward) {
            rt::max_pool_backward(attrs, x_shape, y_shape, x.data(), dy.data(), dx.data());
        } else {
            (blocked ? rt::max_pool_channel_blocked : rt::max_pool)(attrs, x_shape, y_shape, x.data(), y.data());
        }
    };
    double best = 1e30;
    for (int r = 0; r < 51; ++r) {
        const auto start = std::chrono::steady_clock::now();
        run();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return 1e9 * best / static_cast<double>(y_shape.numel() * 9);
}

// A RoundTo of its own per element (CFloat8 also finds the tensor's max-abs for its bias): over 4 Mi elements, which
// the rounding splits over the cores, or 16 Ki, which it rounds on one thread (numerics/convert.h:
// kMinElementsPerThread).
// A transpose of a matrix's two axes (the runtime's square tiles, one value at a time), per element: [512, 768] on
// the threads, or [48, 1000] on one thread (runtime::transpose_runs_on_threads: too small to share).
double transpose_tiles_ns(bool small) {
    const Shape shape = small ? Shape({48, 1000}) : Shape({512, 768});
    Graph g;
    const NodeId x = g.add_input("x", {DType::F32, shape});
    const NodeId y = dojo::ir::transpose(g, x, {1, 0});
    g.mark_output(y);
    return 1e9 * best_node_run(g, y, 200) / static_cast<double>(shape.numel());
}

double round_ns(dojo::numerics::FormatKind format, dojo::numerics::Rounding rounding, bool small) {
    const std::int64_t n = small ? std::int64_t{16} << 10 : std::int64_t{4} << 20;
    const double seconds = op_seconds([&](Graph& g) {
        const NodeId x = g.add_input("x", {DType::F32, Shape({n})});
        const NodeId step = g.add_input(dojo::ir::kStepInputName, {DType::F32, Shape({})});
        dojo::ir::RoundAttrs attrs;
        attrs.format = format;
        attrs.rounding = rounding;
        g.mark_output(dojo::ir::round_to(g, x, step, attrs));
    }, small ? 2000 : 20);
    return 1e9 * seconds / static_cast<double>(n);
}

// A fused ReduceSum member per element summed: x * x summed over rows of a [8, 96, 20, 20] tensor, less the map.
double fused_sum_ns(double map_ns) {
    const Shape shape({8, 96, 20, 20});
    const double seconds = op_seconds([&](Graph& g) {
        const NodeId x = g.add_input("x", {DType::F32, shape});
        g.mark_output(dojo::ir::reduce_sum(g, dojo::ir::mul(g, x, x), {0, 2, 3}, true));
    }, 200);
    return 1e9 * seconds / static_cast<double>(shape.numel()) - map_ns;
}

enum class ConvDirection { Forward, BackwardData, BackwardFilter };

// One of a 3x3 convolution's directions through oneDNN, GFLOP/s of its kernel alone: [batch, channels, plane, plane]
// with as many filters, pad 1 (by default [8, 96, 12, 12]).
double conv_gflop_s(ConvDirection direction, bool bf16, std::int64_t batch = 8, std::int64_t channels = 96,
                    std::int64_t plane = 12) {
    const Shape x_shape({batch, channels, plane, plane}), w_shape({channels, channels, 3, 3});
    dojo::ir::Conv2dAttrs conv;
    conv.pads = {1, 1, 1, 1};
    Graph g;
    {
        NodeId x = g.add_input("x", {DType::F32, x_shape});
        NodeId w = g.add_input("w", {DType::F32, w_shape});
        NodeId dy = g.add_input("dy", {DType::F32, x_shape});
        if (bf16) {
            const NodeId step = g.add_input(dojo::ir::kStepInputName, {DType::F32, Shape({})});
            dojo::ir::RoundAttrs attrs;
            attrs.format = dojo::numerics::FormatKind::Bf16;
            x = dojo::ir::round_to(g, x, step, attrs);
            w = dojo::ir::round_to(g, w, step, attrs);
            dy = dojo::ir::round_to(g, dy, step, attrs);
        }
        switch (direction) {
        case ConvDirection::Forward:
            g.mark_output(dojo::ir::conv2d(g, x, w, conv));
            break;
        case ConvDirection::BackwardData:
            g.mark_output(g.add(dojo::ir::OpKind::Conv2dBackwardData, dojo::ir::ConvBackwardAttrs{conv, x_shape}, {dy, w}));
            break;
        case ConvDirection::BackwardFilter:
            g.mark_output(g.add(dojo::ir::OpKind::Conv2dBackwardFilter, dojo::ir::ConvBackwardAttrs{conv, w_shape}, {x, dy}));
            break;
        }
    }
    const double seconds = best_node_run(g, g.outputs().back(), 50);
    return 2.0 * static_cast<double>(x_shape.numel()) * static_cast<double>(channels) * 9 / seconds / 1e9;
}

// A reference Mul of 64 elements by a scalar, as a step's per-channel arithmetic runs: a chain of 2000, unfused.
double small_node_us() {
    constexpr int nodes = 2000;
    Graph g;
    NodeId x = g.add_input("x", {DType::F32, Shape({64})});
    const NodeId scale = g.add_input("scale", {DType::F32, Shape({})});
    for (int k = 0; k < nodes; ++k) {
        x = dojo::ir::mul(g, x, scale);
    }
    g.mark_output(x);
    return best_run(g, 50, Fusion::Unfused) / nodes * 1e6;
}

// A reference kernel's rate, bytes per second: its inputs read and its output written (what its plain loops move,
// as sim/cpu_kernel_time.h counts them). `build` makes a graph of the one op.
double reference_op_gb_s(const std::function<NodeId(Graph&)>& build) {
    Graph g;
    const NodeId op = build(g);
    g.mark_output(op);
    double bytes = 4.0 * static_cast<double>(g.type(op).shape.numel());
    for (const NodeId input : g.node(op).inputs) {
        bytes += 4.0 * static_cast<double>(g.type(input).shape.numel());
    }
    return bytes / best_run(g, 20, Fusion::Unfused) / 1e9;  // the reference kernel itself, not a fused pass
}

// Every figure, printed as it is measured (one JSON line each) and kept for the "fit" line at the end.
class Figures {
public:
    double add(const std::string& name, double value) {
        std::printf("{\"%s\": %.4g}\n", name.c_str(), value);
        std::fflush(stdout);
        figures_.emplace_back(name, value);
        return value;
    }
    void print_fit() const {
        std::printf("{\"fit\": {");
        for (std::size_t k = 0; k < figures_.size(); ++k) {
            std::printf("%s\"%s\": %.4g", k == 0 ? "" : ", ", figures_[k].first.c_str(), figures_[k].second);
        }
        std::printf("}}\n");
    }

private:
    std::vector<std::pair<std::string, double>> figures_;
};

// A convolution direction's rate over few output pixels (32, 128 and 512 over the batch: [8, 192, P, P] with 192
// filters, P = 2, 4, 8) as a share of its rate over 1,152 (P = 12), each pair measured side by side: oneDNN's
// kernels block output pixels in registers and split them over the threads, and a few pixels leave both short. The
// pixels over the batch, not the plane or the channels, set it (measured: 32 images of 2x2 run as 8 of 4x4, 128 or
// 512 channels alike, within 15%, but BF16 filter gradients); the sim interpolates (sim/cpu_kernel_time.h).
void conv_pixel_efficiencies(Figures& f, const std::string& name, ConvDirection direction, bool bf16) {
    const double working = conv_gflop_s(direction, bf16, 8, 192, 12);
    for (const std::int64_t plane : {2, 4, 8}) {
        f.add(name + "_" + std::to_string(8 * plane * plane) + "px_efficiency",
              std::min(1.0, conv_gflop_s(direction, bf16, 8, 192, plane) / working));
    }
}

void reference_rates(Figures& f) {
    using dojo::ir::Graph;
    auto input = [](Graph& g, Shape shape) { return g.add_input("x", {DType::F32, std::move(shape)}); };
    f.add("reference_reduce_sum_gb_s", reference_op_gb_s([&](Graph& g) {
        return dojo::ir::reduce_sum(g, input(g, Shape({64, 96, 80})), {2}, true);
    }));
    f.add("reference_log_softmax_gb_s", reference_op_gb_s([&](Graph& g) {
        return dojo::ir::log_softmax(g, input(g, Shape({1536, 96})), 1);
    }));
    f.add("reference_slice_gb_s", reference_op_gb_s([&](Graph& g) {
        return dojo::ir::slice_axis(g, input(g, Shape({16, 100, 576})), 2, 192, 192);
    }));
    f.add("reference_reshape_gb_s", reference_op_gb_s([&](Graph& g) {
        return dojo::ir::reshape(g, input(g, Shape({64, 96, 80})), Shape({64, 7680}));
    }));
}

void fused_member_rates(Figures& f) {
    using dojo::ir::Graph;
    const double map = f.add("fused_map_ns", fused_member_ns([](Graph& g, NodeId x, NodeId y) {
        return dojo::ir::mul(g, dojo::ir::add(g, x, y), y);  // two members: halved
    }) / 2);
    f.add("fused_divide_ns", fused_member_ns([](Graph& g, NodeId x, NodeId y) {
        return dojo::ir::sqrt(g, dojo::ir::div(g, x, y));  // x, y in [0.5, 1.5]: stays positive
    }) / 2);
    f.add("fused_exp_ns", fused_member_ns([](Graph& g, NodeId x, NodeId y) {  // exp(x * y - y) stays in [0.5, 1.5]
        return dojo::ir::exp(g, dojo::ir::sub(g, dojo::ir::mul(g, x, y), y));
    }) - 2 * map);
    f.add("fused_log_ns", fused_member_ns([](Graph& g, NodeId x, NodeId y) {  // log(x + y) + y stays positive
        return dojo::ir::add(g, dojo::ir::log(g, dojo::ir::add(g, x, y)), y);
    }) - 2 * map);
    f.add("fused_tanh_ns", fused_member_ns([](Graph& g, NodeId x, NodeId) { return dojo::ir::tanh(g, x); }));
    f.add("fused_erf_ns", fused_member_ns([](Graph& g, NodeId x, NodeId) { return dojo::ir::erf(g, x); }));
    f.add("fused_sigmoid_ns", fused_member_ns([](Graph& g, NodeId x, NodeId) { return dojo::ir::sigmoid(g, x); }));
    f.add("fused_sum_ns", fused_sum_ns(map));
}

// A copy of 64 MiB into a buffer that already exists, bytes read and written per second.
double copy_gb_s() {
    const std::size_t n = std::size_t{16} << 20;
    std::vector<float> from(n, 1.0f), to(n, 0.0f);
    double best = 1e30;
    for (int r = 0; r < 10; ++r) {
        from[static_cast<std::size_t>(r)] = static_cast<float>(r);
        const auto start = std::chrono::steady_clock::now();
        std::copy(from.begin(), from.end(), to.begin());
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (to[3] != 3.0f) {
        std::abort();
    }
    return 2.0 * 4.0 * static_cast<double>(n) / best / 1e9;
}

double node_overhead_us() {
    constexpr int nodes = 2000;
    Graph g;
    NodeId x = g.add_input("x", {DType::F32, Shape({16})});
    const NodeId one = g.add_input("one", {DType::F32, Shape({16})});
    for (int k = 0; k < nodes; ++k) {
        x = dojo::ir::add(g, x, one);
    }
    g.mark_output(x);
    return best_run(g, 50, Fusion::Unfused) / nodes * 1e6;  // one node, one kernel
}

// A reference elementwise map (one the fusion leaves alone: under compiler::kFusionMinElements, the optimizer's
// update of a bias, say), inputs read and output written per second: the slope of a chain of Adds between 256 and
// 4,032 elements a node, so that the node's fixed cost (node_overhead_us) drops out.
double reference_map_gb_s() {
    constexpr int nodes = 500;
    auto node_seconds = [&](std::int64_t n) {
        Graph g;
        NodeId x = g.add_input("x", {DType::F32, Shape({n})});
        const NodeId y = g.add_input("y", {DType::F32, Shape({n})});
        for (int k = 0; k < nodes; ++k) {
            x = dojo::ir::add(g, x, y);
        }
        g.mark_output(x);
        return best_run(g, 50, Fusion::Unfused) / nodes;
    };
    const double small = node_seconds(256), large = node_seconds(4032);
    return 3.0 * 4.0 * (4032 - 256) / std::max(large - small, 1e-12) / 1e9;
}

double clock_ghz() {
    constexpr std::uint64_t adds = 400'000'000;
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
        std::uint64_t x = 0;
        const auto start = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < adds / 4; ++i) {  // four dependent adds an iteration: the loop's own count
            asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));  // runs beside them
        }
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        if (x != adds) {
            std::abort();
        }
    }
    return static_cast<double>(adds) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 2;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: cpu_calibration [--threads N]\n");
            return 2;
        }
    }
    omp_set_num_threads(threads);
    Figures f;
    f.add("threads", threads);
    f.add("clock_ghz", clock_ghz());
    f.add("matmul_fp32_gflop_s", matmul_gflop_s(false));
    f.add("matmul_bf16_gflop_s", matmul_gflop_s(true));
    f.add("matmul_small_fp32_efficiency", matmul_small_efficiency(false));
    f.add("matmul_small_bf16_efficiency", matmul_small_efficiency(true));
    f.add("fused_gb_s", fused_gb_s(std::int64_t{16} << 20));
    const double in_cache = f.add("fused_in_cache_gb_s", fused_gb_s(std::int64_t{64} << 10));
    f.add("reference_gb_s", reference_gb_s());
    f.add("node_overhead_us", node_overhead_us());
    f.add("small_node_us", small_node_us());
    f.add("matrix_call_overhead_us", matrix_call_overhead_us());
    f.add("parallel_kernel_overhead_us", parallel_kernel_overhead_us(in_cache));
    fused_member_rates(f);
    reference_rates(f);
    f.add("reference_map_gb_s", reference_map_gb_s());
    f.add("transpose_tiles_ns", transpose_tiles_ns(false));
    f.add("transpose_tiles_small_ns", transpose_tiles_ns(true));
    f.add("pool_tiled_forward_ns", pool_ns(false));
    f.add("pool_tiled_backward_ns", pool_ns(true));
    f.add("pool_window_forward_ns", window_pool_ns(false, true));
    f.add("pool_window_backward_ns", window_pool_ns(true, true));
    f.add("pool_window_plain_forward_ns", window_pool_ns(false, false));
    f.add("pool_window_plain_backward_ns", window_pool_ns(true, false));
    using dojo::numerics::FormatKind;
    using dojo::numerics::Rounding;
    for (const bool small : {false, true}) {
        const std::string suffix = small ? "_small_ns" : "_ns";
        f.add("round_bf16" + suffix, round_ns(FormatKind::Bf16, Rounding::NearestEven, small));
        f.add("round_cfp8" + suffix, round_ns(FormatKind::Cfp8_143, Rounding::NearestEven, small));
        f.add("round_cfp8_stochastic" + suffix, round_ns(FormatKind::Cfp8_152, Rounding::Stochastic, small));
    }
    const char* directions[] = {"forward", "backward_data", "backward_filter"};
    for (int d = 0; d < 3; ++d) {
        for (const bool rounded : {false, true}) {
            const std::string name = std::string("conv_") + directions[d] + (rounded ? "_bf16" : "_fp32");
            f.add(name + "_gflop_s", conv_gflop_s(static_cast<ConvDirection>(d), rounded));
            conv_pixel_efficiencies(f, name, static_cast<ConvDirection>(d), rounded);
        }
    }
    f.add("copy_gb_s", copy_gb_s());
    f.print_fit();
    return 0;
}
