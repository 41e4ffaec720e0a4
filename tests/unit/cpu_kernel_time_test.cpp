// The simulator's model of a CPU host running OpenDojo's runtime (sim/cpu_kernel_time.h): it times the kernels
// runtime::lower_cpu chooses for the Plan, its cache model follows the run order, and a host description must state
// the kernel rates it relies on.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "dojo/compiler/plan.h"
#include "dojo/ir/builder.h"
#include "dojo/machine/machine.h"
#include "dojo/sim/cpu_kernel_time.h"
#include "dojo/sim/simulate.h"
#include "dojo/util/error.h"

namespace dojo::sim {
namespace {

namespace fs = std::filesystem;

const char* kHost = "dev-vm:ranks_per_host=1,cores_per_rank=2";

Topology host() { return derive_topology(machine::load_machine(kHost, machine::default_machines_dir())); }

std::int64_t nodes_of_kind(const SimResult& result, const std::string& kind) {
    for (const OpClassTime& c : result.ops) {
        if (c.op == kind) {
            return c.nodes;
        }
    }
    return 0;
}

// ResNet-18's step lowers with groups of one (sums of convolution outputs: BatchNorm's statistics) that the Plan's
// fusion pass does not form: the simulator counts them as fused kernels only when it times the ExecPlan.
TEST(CpuKernelTime, TheSimulatorTimesTheKernelsTheRuntimeLowers) {
    const compiler::Plan plan = compiler::make_plan("resnet18", 2, compiler::Strategy{}, autodiff::AdamWConfig{});
    Topology topology = host();
    ASSERT_TRUE(topology.device.runs_cpu_runtime);
    const std::optional<runtime::ExecPlan> exec = lower_for_host(plan, topology.device);
    ASSERT_TRUE(exec.has_value());
    std::int64_t fused_kernel_nodes = 0;
    for (std::uint32_t i = 0; i < plan.step.graph.size(); ++i) {
        const runtime::NodeKernel k = exec->kernel[i];
        fused_kernel_nodes += plan.live[i] && (k == runtime::NodeKernel::FusedGroup ||
                                               k == runtime::NodeKernel::FusedMember);
    }
    std::int64_t planned_members = 0;
    for (const compiler::FusionGroup& g : plan.fusion_groups) {
        planned_members += static_cast<std::int64_t>(g.members.size());
    }
    ASSERT_NE(fused_kernel_nodes, planned_members);  // else this test could not tell the two apart

    EXPECT_EQ(nodes_of_kind(simulate(plan, topology), "FusedElementwise"), fused_kernel_nodes);
    topology.device.runs_cpu_runtime = false;  // the same figures, timed by the op roofline instead
    EXPECT_EQ(nodes_of_kind(simulate(plan, topology), "FusedElementwise"), planned_members);
}

TEST(CpuKernelTime, OnlyPlansTheRuntimeRunsAreLowered) {
    const Topology topology = host();
    for (const std::string text : {"dp=1,pp=2", "dp=1,tp=2", "dp=1,mb=2"}) {
        const compiler::Plan plan =
            compiler::make_plan("mlp", 16, compiler::parse_strategy(text), autodiff::AdamWConfig{});
        EXPECT_FALSE(lower_for_host(plan, topology.device).has_value()) << text;
    }
    const compiler::Plan dp2 = compiler::make_plan("mlp", 16, compiler::parse_strategy("dp=2"), autodiff::AdamWConfig{});
    EXPECT_TRUE(lower_for_host(dp2, topology.device).has_value());
    const Topology dojo = derive_topology(machine::load_machine("d1", machine::default_machines_dir()));
    EXPECT_FALSE(lower_for_host(dp2, dojo.device).has_value());
}

// d = (a + b) * a over 1 MiB tensors: one fused group reading a and b and writing d, 3 MiB a step.
struct OneGroup {
    ir::Graph graph;
    runtime::ExecPlan exec;
    std::uint32_t at = 0;
    OneGroup() {
        const ir::TensorType type{ir::DType::F32, ir::Shape({262144})};
        const ir::NodeId a = graph.add_input("a", type);
        const ir::NodeId b = graph.add_input("b", type);
        const ir::NodeId d = ir::mul(graph, ir::add(graph, a, b), a);
        graph.mark_output(d);
        exec = runtime::lower_cpu(graph, runtime::ExecutorOptions{});
        at = d.index;
    }
};

TEST(CpuKernelTime, TrafficHitsWhatTheCacheStillHoldsInRunOrder) {
    const OneGroup g;
    ASSERT_EQ(g.exec.kernel[g.at], runtime::NodeKernel::FusedGroup);
    constexpr double kMiB = 1 << 20;
    const KernelTraffic big = kernel_traffic(g.exec, {}, 64 * kMiB)[g.at];
    EXPECT_DOUBLE_EQ(big.cached, 3 * kMiB);  // the first step warmed it: the counted one hits everything
    EXPECT_DOUBLE_EQ(big.uncached, 0);
    const KernelTraffic none = kernel_traffic(g.exec, {}, 0)[g.at];
    EXPECT_DOUBLE_EQ(none.cached, 0);
    EXPECT_DOUBLE_EQ(none.uncached, 3 * kMiB);
    // Room for two of the three buffers: LRU order a, b, d evicts a before the next step reads it, and so on.
    const KernelTraffic two = kernel_traffic(g.exec, {}, 2 * kMiB)[g.at];
    EXPECT_DOUBLE_EQ(two.cached + two.uncached, 3 * kMiB);
    EXPECT_DOUBLE_EQ(two.cached, 0);
}

TEST(CpuKernelTime, DivisionsAndMissesMakeAGroupSlower) {
    const Device device = host().device;
    const OneGroup g;
    const KernelTraffic hits{3.0 * (1 << 20), 0}, misses{0, 3.0 * (1 << 20)};
    const double in_cache = cpu_kernel_time(g.exec, ir::NodeId{g.at}, device, hits).seconds;
    EXPECT_GT(cpu_kernel_time(g.exec, ir::NodeId{g.at}, device, misses).seconds, 2 * in_cache);

    // (a + b) / a against (a + b) * a: the same traffic, a division in place of a product.
    auto group_seconds = [&](bool divide) {
        ir::Graph graph;
        const ir::TensorType type{ir::DType::F32, ir::Shape({262144})};
        const ir::NodeId a = graph.add_input("a", type);
        const ir::NodeId b = graph.add_input("b", type);
        const ir::NodeId sum = ir::add(graph, a, b);
        const ir::NodeId out = divide ? ir::div(graph, sum, a) : ir::mul(graph, sum, a);
        graph.mark_output(out);
        const runtime::ExecPlan exec = runtime::lower_cpu(graph, runtime::ExecutorOptions{});
        return cpu_kernel_time(exec, out, device, hits).seconds;
    };
    EXPECT_GT(group_seconds(true), group_seconds(false));
}

// A BF16 convolution over one input channel does the products of two (AVX512-BF16 multiplies BF16 values in pairs
// along the sum, and oneDNN's layout pads the odd channel): it is timed as the same convolution over two channels.
TEST(CpuKernelTime, ABf16ConvolutionOverOneChannelCostsAsMuchAsOverTwo) {
    const Device device = host().device;
    auto conv_compute_s = [&](std::int64_t channels, runtime::NodeKernel& kernel) {
        ir::Graph g;
        const ir::NodeId step = g.add_input(ir::kStepInputName, {ir::DType::F32, ir::Shape({})});
        ir::RoundAttrs bf16;
        bf16.format = numerics::FormatKind::Bf16;
        const ir::NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape({32, channels, 28, 28})});
        const ir::NodeId w = g.add_input("w", {ir::DType::F32, ir::Shape({16, channels, 5, 5})});
        const ir::NodeId y = ir::conv2d(g, ir::round_to(g, x, step, bf16), ir::round_to(g, w, step, bf16),
                                        ir::Conv2dAttrs{{1, 1}, {2, 2, 2, 2}, {1, 1}, 1});
        g.mark_output(y);
        const runtime::ExecPlan exec = runtime::lower_cpu(g, runtime::ExecutorOptions{});
        kernel = exec.kernel[y.index];
        return cpu_kernel_time(exec, y, device, KernelTraffic{}).compute_s;
    };
    runtime::NodeKernel one_kernel{}, two_kernel{};
    const double one = conv_compute_s(1, one_kernel), two = conv_compute_s(2, two_kernel);
    EXPECT_EQ(one_kernel, two_kernel);
    if (one_kernel == runtime::NodeKernel::OneDnnBf16) {  // a CPU with BF16 dot products
        EXPECT_NEAR(one / two, 1.0, 1e-9);
    } else {  // FP32 kernels: no pairs, half the products
        EXPECT_NEAR(one / two, 0.5, 1e-9);
    }
}

// A BF16 product whose operands are FP32 buffers converts them on the way in (oneDNN reorders, 4 bytes read and 2
// written an element): the simulator charges that, and nothing where the roundings write the BF16 copies the product
// reads (ExecutorOptions::bf16_copies).
TEST(CpuKernelTime, AProductIsChargedForTheConversionsItRuns) {
    const Device device = host().device;
    ir::Graph g;
    const ir::NodeId step = g.add_input(ir::kStepInputName, {ir::DType::F32, ir::Shape({})});
    ir::RoundAttrs bf16;
    bf16.format = numerics::FormatKind::Bf16;
    const ir::NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape({64, 512})});
    const ir::NodeId w = g.add_input("w", {ir::DType::F32, ir::Shape({512, 256})});
    const ir::NodeId y = ir::matmul(g, ir::round_to(g, x, step, bf16), ir::round_to(g, w, step, bf16));
    g.mark_output(y);
    runtime::NodeKernel kernel{};
    auto product = [&](bool copies) {
        runtime::ExecutorOptions options;
        options.bf16_copies = copies;
        const runtime::ExecPlan exec = runtime::lower_cpu(g, options);
        kernel = exec.kernel[y.index];
        return cpu_kernel_time(exec, y, device, KernelTraffic{});
    };
    const OpTime converting = product(false), reading_copies = product(true);
    if (kernel != runtime::NodeKernel::OneDnnBf16) {  // a CPU without BF16 dot products: FP32 operands as they lie
        EXPECT_DOUBLE_EQ(converting.seconds, reading_copies.seconds);
        return;
    }
    const double operand_elements = 64 * 512 + 512 * 256;
    EXPECT_DOUBLE_EQ(converting.bytes - reading_copies.bytes, 6 * operand_elements);
    EXPECT_GT(converting.seconds, reading_copies.seconds + 6 * operand_elements / device.cpu_kernels.copy_bandwidth);
}

// A small model's products run below the rate of a large one (the host states both, measured): the rate grows
// with the product's size and reaches the sustained rate at 1024^3.
TEST(CpuKernelTime, SmallProductsRunBelowTheSustainedRate) {
    const Device device = host().device;
    auto rate = [&](std::int64_t m, std::int64_t k, std::int64_t n) {
        ir::Graph g;
        const ir::NodeId a = g.add_input("a", {ir::DType::F32, ir::Shape({m, k})});
        const ir::NodeId b = g.add_input("b", {ir::DType::F32, ir::Shape({k, n})});
        const ir::NodeId y = ir::matmul(g, a, b);
        g.mark_output(y);
        const runtime::ExecPlan exec = runtime::lower_cpu(g, runtime::ExecutorOptions{});
        EXPECT_EQ(exec.kernel[y.index], runtime::NodeKernel::OneDnn);
        const OpTime t = cpu_kernel_time(exec, y, device, KernelTraffic{});
        return t.flops / t.compute_s;
    };
    const double sustained = device.matrix_flops.at("fp32") * device.sustained_matrix_fraction;
    const double small = rate(64, 512, 512), middle = rate(256, 512, 512), large = rate(1024, 1024, 1024);
    EXPECT_NEAR(small / sustained, device.cpu_kernels.matmul_small_efficiency[0], 1e-9);
    EXPECT_LT(small, middle);
    EXPECT_LT(middle, large);
    EXPECT_NEAR(large / sustained, 1.0, 1e-9);
}

TEST(CpuKernelTime, AHostRunningTheRuntimeMustStateItsKernelRates) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-cpu-kernels-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "lib.toml") << "[kinds.core]\nclock = \"3 GHz\"\nflop_per_cycle = { fp32 = 32 }\n"
                                       "[kinds.rank]\nmemory = \"8 GiB\"\nmemory_bandwidth = \"20 GB/s\"\n"
                                       "runtime = \"opendojo\"\ncontains = [{ kind = \"core\", count = 2 }]\n"
                                       "[kinds.other]\nruntime = \"tensorflow\"\ncontains = [{ kind = \"core\", count = 2 }]\n";
    std::ofstream(dir / "rank.toml") << "library = \"lib.toml\"\nroot = \"rank\"\n";
    std::ofstream(dir / "other.toml") << "library = \"lib.toml\"\nroot = \"other\"\n";
    auto error_of = [&](const std::string& name) {
        try {
            derive_topology(machine::load_machine(name, dir.string()));
        } catch (const UsageError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_NE(error_of("rank").find("does not state fused_map_time"), std::string::npos) << error_of("rank");
    EXPECT_NE(error_of("rank").find("cpu_calibration"), std::string::npos);
    EXPECT_NE(error_of("other").find("runtime is 'tensorflow'"), std::string::npos) << error_of("other");
    fs::remove_all(dir);
}

}  // namespace
}  // namespace dojo::sim
