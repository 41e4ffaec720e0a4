// Calibration of a machine description of a CPU host that trains (machines/lib/hosts.toml, kind dev-vm-rank): the
// rates of the runtime's own kernels on this machine, each from one op on large tensors run by the executor as
// `dojo train` runs it (runtime/exec_plan.h chooses the kernel). Nothing the simulator is later checked against:
// whole training steps are measured separately (bench/sim_vs_measured.py, its steps part).
//
//   cpu_calibration [--threads N]      (default 2: the threads dojo train uses on the development VM)
//
// Prints one JSON line per measurement and, last, {"fit": {...}} with:
//   matmul_fp32_gflop_s     oneDNN's FP32 matrix product, 1024 x 1024 x 1024, the best of 5 runs
//   matmul_bf16_gflop_s     the same with BF16-rounded operands (read as BF16 where the CPU multiplies BF16)
//   fused_gb_s              a fused elementwise group (relu(x) * y + z), bytes read and written per second, on
//                           tensors of 64 MiB each (beyond any cache)
//   fused_in_cache_gb_s     the same on 256 KiB tensors (in the core's private cache)
//   reference_gb_s          reference kernels that move data: attention's two transposes, bytes per second
//   node_overhead_us        the time of one node that does almost nothing (an Add of 16 elements), reference
//   matrix_call_overhead_us the time of a oneDNN product of 16 x 16 x 16: a call's fixed cost
//   parallel_kernel_overhead_us  a kernel across the cores on a small tensor, less its bytes at the in-cache rate
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
#include <vector>

#include "dojo/ir/builder.h"
#include "dojo/ir/rounding.h"
#include "dojo/runtime/executor.h"

namespace {

using dojo::ir::DType;
using dojo::ir::Graph;
using dojo::ir::NodeId;
using dojo::ir::Shape;

// Best seconds of `runs` runs of the executor on `graph` (after one warm-up run).
double best_run(const Graph& graph, int runs) {
    dojo::runtime::Executor executor(graph);
    for (const NodeId id : graph.inputs()) {
        for (float& v : executor.value(id).data) {
            v = 0.5f + static_cast<float>(std::rand() % 1000) / 1000.0f;
        }
    }
    executor.run();
    double best = 1e30;
    for (int r = 0; r < runs; ++r) {
        const auto start = std::chrono::steady_clock::now();
        executor.run();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
}

double matmul_gflop_s(bool bf16) {
    constexpr std::int64_t n = 1024;
    Graph g;
    NodeId a = g.add_input("a", {DType::F32, Shape({n, n})});
    NodeId b = g.add_input("b", {DType::F32, Shape({n, n})});
    if (bf16) {
        const NodeId step = g.add_input(dojo::ir::kStepInputName, {DType::F32, Shape({})});
        dojo::ir::RoundAttrs attrs;
        attrs.format = dojo::numerics::FormatKind::Bf16;
        a = dojo::ir::round_to(g, a, step, attrs);
        b = dojo::ir::round_to(g, b, step, attrs);
    }
    g.mark_output(dojo::ir::matmul(g, a, b));
    const double seconds = best_run(g, 5);
    return 2.0 * n * n * n / seconds / 1e9;  // the roundings' passes are a few percent of the product's time
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

double node_overhead_us() {
    constexpr int nodes = 2000;
    Graph g;
    NodeId x = g.add_input("x", {DType::F32, Shape({16})});
    const NodeId one = g.add_input("one", {DType::F32, Shape({16})});
    for (int k = 0; k < nodes; ++k) {
        x = dojo::ir::add(g, x, one);
    }
    g.mark_output(x);
    dojo::runtime::ExecutorOptions options;
    options.fuse_elementwise = false;  // one node, one kernel: what a step's small unfused nodes cost
    dojo::runtime::Executor executor(g, options);
    executor.run();
    double best = 1e30;
    for (int r = 0; r < 50; ++r) {
        const auto start = std::chrono::steady_clock::now();
        executor.run();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best / nodes * 1e6;
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
    const double clock = clock_ghz();
    std::printf("{\"clock_ghz\": %.3f}\n", clock);
    const double fp32 = matmul_gflop_s(false);
    std::printf("{\"matmul_fp32_gflop_s\": %.2f}\n", fp32);
    const double bf16 = matmul_gflop_s(true);
    std::printf("{\"matmul_bf16_gflop_s\": %.2f}\n", bf16);
    const double fused = fused_gb_s(std::int64_t{16} << 20);
    std::printf("{\"fused_gb_s\": %.2f}\n", fused);
    const double fused_cache = fused_gb_s(std::int64_t{64} << 10);
    std::printf("{\"fused_in_cache_gb_s\": %.2f}\n", fused_cache);
    const double reference = reference_gb_s();
    std::printf("{\"reference_gb_s\": %.2f}\n", reference);
    const double overhead = node_overhead_us();
    std::printf("{\"node_overhead_us\": %.3f}\n", overhead);
    const double matrix_call = matrix_call_overhead_us();
    std::printf("{\"matrix_call_overhead_us\": %.3f}\n", matrix_call);
    const double parallel = parallel_kernel_overhead_us(fused_cache);
    std::printf("{\"parallel_kernel_overhead_us\": %.3f}\n", parallel);
    std::printf("{\"fit\": {\"threads\": %d, \"clock_ghz\": %.3f, \"matmul_fp32_gflop_s\": %.2f, \"matmul_bf16_gflop_s\": %.2f, "
                "\"fused_gb_s\": %.2f, \"fused_in_cache_gb_s\": %.2f, \"reference_gb_s\": %.2f, "
                "\"node_overhead_us\": %.3f, \"matrix_call_overhead_us\": %.3f, \"parallel_kernel_overhead_us\": %.3f}}\n",
                threads, clock, fp32, bf16, fused, fused_cache, reference, overhead, matrix_call, parallel);
    return 0;
}
