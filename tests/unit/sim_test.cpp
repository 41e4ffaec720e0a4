// The simulator's pieces: topology figures, tensor-parallel layouts, SimGrid collectives against closed forms,
// the roofline, memory fit, and the step as a whole.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "dojo/compiler/gradient_buckets.h"
#include "dojo/compiler/plan.h"
#include "dojo/compiler/schedule.h"
#include "dojo/compiler/tensor_parallel.h"
#include "dojo/ir/builder.h"
#include "dojo/machine/machine.h"
#include "dojo/sim/network.h"
#include "dojo/sim/op_time.h"
#include "dojo/sim/search.h"
#include "dojo/sim/simulate.h"
#include "dojo/sim/trace.h"
#include "dojo/util/error.h"
#include "plan_at_widths.h"

namespace dojo::sim {
namespace {

using ir::NodeId;

Topology preset(const std::string& spec) {
    return derive_topology(machine::load_machine(spec, machine::default_machines_dir()));
}

// Seconds per step of an op class in the busiest stage's table.
double class_seconds(const SimResult& r, const std::string& op) {
    for (const OpClassTime& c : r.ops) {
        if (c.op == op) {
            return c.seconds;
        }
    }
    return 0;
}

// On a D1 the compiler's products read a transposed weight where it lies and sum a bias gradient from the output
// gradient they stream (machines/lib/dojo-v1.toml: transposed_operands, bias_gradient): those Transposes and
// ReduceSums move nothing of their own. The same machine described as copying them charges them, and a GPU, whose
// bias gradients are passes of their own, still charges the sums.
TEST(Simulate, ProductsThatReadTransposesInPlaceLeaveThemNothingToMove) {
    const compiler::Plan plan = compiler::make_plan("gpt:layers=1,hidden=256,heads=4,seq=128,vocab=256", 4,
                                                    compiler::Strategy{}, autodiff::AdamWConfig{});
    Topology d1 = preset("d1");
    ASSERT_TRUE(d1.device.transposes_in_place);
    ASSERT_TRUE(d1.device.bias_gradient_in_epilogue);
    const SimResult in_place = simulate(plan, d1);
    d1.device.transposes_in_place = false;
    d1.device.bias_gradient_in_epilogue = false;
    const SimResult copied = simulate(plan, d1);
    EXPECT_LT(class_seconds(in_place, "Transpose"), 0.5 * class_seconds(copied, "Transpose"));
    EXPECT_GT(class_seconds(in_place, "Transpose"), 0);  // attention's head permutations are copies still
    EXPECT_LT(class_seconds(in_place, "ReduceSum"), 0.8 * class_seconds(copied, "ReduceSum"));
    EXPECT_GT(class_seconds(in_place, "ReduceSum"), 0);  // LayerNorm's and softmax's sums are not a product's
    EXPECT_EQ(class_seconds(in_place, "MatMul"), class_seconds(copied, "MatMul"));
    EXPECT_LT(in_place.step_s, copied.step_s);

    const Topology a100 = preset("dgx-a100");
    EXPECT_TRUE(a100.device.transposes_in_place);
    EXPECT_FALSE(a100.device.bias_gradient_in_epilogue);
}

// A choice the simulator does not know is refused, naming the key and the choices it knows.
TEST(Topology, AnUnknownMatrixSoftwareChoiceIsRefused) {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("dojo-choices-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "lib.toml") << "[kinds.chip]\npeak = { bf16 = \"100 TFLOP/s\" }\nhbm = \"16 GiB\"\n"
                                       "hbm_bandwidth = \"1 TB/s\"\ntransposed_operands = \"sometimes\"\n";
    std::ofstream(dir / "chip.toml") << "library = \"lib.toml\"\nroot = \"chip\"\n";
    std::string error = "accepted";
    try {
        derive_topology(machine::load_machine("chip", dir.string()));
    } catch (const UsageError& e) {
        error = e.what();
    }
    EXPECT_NE(error.find("transposed_operands is 'sometimes'; expected copied or in_place"), std::string::npos)
        << error;
    std::filesystem::remove_all(dir);
}

TEST(Topology, DojoAndGpuDevicesCarryTheirPublishedFigures) {
    const Topology exapod = preset("exapod");
    EXPECT_EQ(exapod.device.kind, "d1");
    EXPECT_EQ(exapod.device.count, 3000);
    EXPECT_DOUBLE_EQ(exapod.device.matrix_flops.at("bf16"), 354 * 2e9 * 512);
    EXPECT_DOUBLE_EQ(exapod.device.local_bytes, 354 * 1.25 * 1024 * 1024);
    EXPECT_NEAR(exapod.device.memory_bytes, 20 * 32.0 * (1 << 30) / 150, 1);  // a tray's DIP HBM over its 150 D1
    ASSERT_GE(exapod.levels.size(), 3u);
    EXPECT_EQ(exapod.levels[0].kind, "tile");
    EXPECT_EQ(exapod.levels[0].devices, 25);
    EXPECT_DOUBLE_EQ(exapod.levels[0].egress_bandwidth, 36e12);  // 4 edges x 9 TB/s
    EXPECT_EQ(exapod.levels[1].kind, "tray");
    EXPECT_DOUBLE_EQ(exapod.levels[1].egress_bandwidth, 20 * 50e9);  // the Z-plane through 20 DIPs
    EXPECT_EQ(exapod.common_level(0, 24), 0);
    EXPECT_EQ(exapod.common_level(0, 25), 1);
    const Topology pod = preset("superpod-h100:nodes=4");
    EXPECT_EQ(pod.device.kind, "h100-sxm");
    EXPECT_EQ(pod.device.count, 32);
    EXPECT_DOUBLE_EQ(pod.device.link_bandwidth, 450e9 * 0.8);  // NVLink 4 per direction, less its protocol
    EXPECT_DOUBLE_EQ(pod.levels[0].egress_bandwidth, 400e9);
}

// A ring all-reduce of B bytes over n devices sharing nothing takes 2 (n - 1) steps of B / n at the link rate
// plus the link latency; a send takes B / rate + latency.
// cfp8 on a GPU runs on its own 8-bit float where it has one (H100: FP8 at twice BF16's rate, 1-byte operands), and
// as BF16 where it has none (A100: BF16's rate and 2-byte operands, so the very step bf16 gives).
TEST(Simulate, Cfp8RunsAsBf16WithoutEightBitMatrixUnits) {
    const compiler::Plan plan = compiler::make_plan("gpt:layers=2,hidden=512,heads=8,seq=256,vocab=8000", 8,
                                                    compiler::Strategy{}, autodiff::AdamWConfig{});
    const Topology a100 = preset("dgx-a100");
    const Topology h100 = preset("dgx-h100");
    EXPECT_EQ(a100.device.cfp8_operand_bytes, 2);
    EXPECT_EQ(h100.device.cfp8_operand_bytes, 1);
    EXPECT_DOUBLE_EQ(simulate(plan, a100, "cfp8").step_s, simulate(plan, a100, "bf16").step_s);
    EXPECT_LT(simulate(plan, h100, "cfp8").step_s, simulate(plan, h100, "bf16").step_s);
    auto first_matmul = [&](const Device& device) {  // the step's first product in cfp8
        for (std::uint32_t i = 0; i < plan.step.graph.size(); ++i) {
            if (plan.step.graph.node(NodeId{i}).op == ir::OpKind::MatMul) {
                return op_time(plan.step.graph, NodeId{i}, device, compiler::Precision::Cfp8, 1, false, 1e12);
            }
        }
        return OpTime{};
    };
    const OpTime a100_matmul = first_matmul(a100.device);
    const OpTime h100_matmul = first_matmul(h100.device);
    EXPECT_DOUBLE_EQ(a100_matmul.bytes, 2 * h100_matmul.bytes) << "2-byte operands on the A100, 1-byte on the H100";
}

TEST(Network, RingAndSendMatchTheirClosedForms) {
    const Topology pod = preset("superpod-h100:nodes=4");
    Network network(pod);
    const double bytes = 1e9;
    const std::size_t ring = network.all_reduce({0, 1, 2, 3, 4, 5, 6, 7}, bytes);
    const std::size_t across = network.all_reduce({0, 8, 16, 24}, bytes);  // one GPU per node: 8 rings share a NIC
    const std::size_t send = network.send(0, 1, bytes);
    const std::vector<CollectiveTime> t = network.evaluate();
    const double lat = pod.device.link_latency_s;
    EXPECT_NEAR(t[ring].seconds, 14 * (bytes / 8 / (450e9 * 0.8) + lat), 1e-9);
    EXPECT_EQ(t[ring].algorithm, "ring");
    EXPECT_NEAR(t[across].seconds, 6 * (bytes / 4 / (400e9 / 8) + pod.levels[0].latency_s), 1e-6);
    EXPECT_NEAR(t[send].seconds, bytes / (450e9 * 0.8) + lat, 1e-9);
    // A full tile takes the 2-D mesh when it beats the ring.
    Network tile(preset("tile"));
    std::vector<std::int64_t> all;
    for (int d = 0; d < 25; ++d) {
        all.push_back(d);
    }
    const std::size_t mesh = tile.all_reduce(all, 1e8);
    EXPECT_EQ(tile.evaluate()[mesh].algorithm, "2d-mesh");
}

// Across DGX nodes: a small buffer over 4 full nodes goes hierarchical (reduce-scatter on NVLink; across the nodes,
// 8 double binary trees of one GPU per node side by side, sharing the node's 400 GB/s; all-gather on NVLink) and
// matches its closed form; over 64 nodes of one GPU each, the tree's log-depth latency beats the ring's 126 steps.
TEST(Network, HierarchicalAndTreeAllReducesWinWhereLatencyCounts) {
    const Topology pod = preset("superpod-h100:nodes=64");
    Network network(pod);
    std::vector<std::int64_t> four_nodes, one_per_node;
    for (std::int64_t d = 0; d < 32; ++d) {
        four_nodes.push_back(d);
    }
    for (std::int64_t node = 0; node < 64; ++node) {
        one_per_node.push_back(8 * node);
    }
    const double small = 1e6;
    const std::size_t hierarchical = network.all_reduce(four_nodes, small);
    const std::size_t tree = network.all_reduce(one_per_node, 1e3);
    const std::size_t large = network.all_reduce(four_nodes, 4e9);
    const std::vector<CollectiveTime> t = network.evaluate();
    const double nvlink = 900e9 / 2 * 0.8, lat = pod.device.link_latency_s;
    const double ib_lat = pod.levels[0].latency_s;  // hops between nodes of one SuperPOD leave the node only
    // Inside: 7 reduce-scatter and 7 all-gather steps of 1/8. Across: the busiest node sends one half-share up each
    // of its 8 trees' two trees (16 flows of bytes / 16 on 400 GB/s), twice (up, down), plus 2 x (depth 3 - 2)
    // further hop latencies.
    const double inside = 14 * (small / 8 / nvlink + lat);
    EXPECT_EQ(t[hierarchical].algorithm, "hierarchical-tree");
    EXPECT_NEAR(t[hierarchical].seconds, inside + 2 * (small / 400e9 + ib_lat) + 2 * ib_lat, 1e-9);
    EXPECT_LT(t[hierarchical].seconds, inside + 6 * (small / 32 / (400e9 / 8) + ib_lat));  // rings across
    EXPECT_LT(t[hierarchical].seconds, 62 * (small / 32 / nvlink + lat));                  // one flat ring
    // One GPU per node has 1/8 of its node's egress (the other 7 GPUs' groups are identical): two steps of two
    // 500-byte halves, and 2 x (depth 7 - 2) further hop latencies.
    EXPECT_EQ(t[tree].algorithm, "tree");
    EXPECT_NEAR(t[tree].seconds, 2 * (1e3 / (400e9 / 8) + ib_lat) + 10 * ib_lat, 1e-9);
    EXPECT_LT(t[tree].seconds, 126 * ib_lat);
    // A large buffer is bandwidth-bound: the flat ring (each node's egress carries one flow at a time) wins.
    EXPECT_EQ(t[large].algorithm, "ring");
}

// Buckets are cut along the ready order at the byte limit; a gradient larger than the limit gets its own.
TEST(GradientBuckets, CutAlongTheReadyOrderAtTheLimit) {
    const std::vector<std::size_t> sizes{10, 300, 20, 30, 5};
    const std::vector<std::size_t> order{4, 3, 2, 1, 0};
    const auto buckets = compiler::cut_gradient_buckets(sizes, order, 50 * sizeof(float));
    ASSERT_EQ(buckets.size(), 4u);
    EXPECT_EQ(buckets[0].gradients, (std::vector<std::size_t>{4, 3}));  // 35; +20 would pass 50
    EXPECT_EQ(buckets[1].gradients, (std::vector<std::size_t>{2}));     // 20; +300 would pass 50
    EXPECT_EQ(buckets[2].gradients, (std::vector<std::size_t>{1}));     // 300, alone
    EXPECT_EQ(buckets[2].elements, 300u);
    EXPECT_EQ(buckets[3].gradients, (std::vector<std::size_t>{0}));
    EXPECT_THROW(compiler::cut_gradient_buckets(sizes, order, 3), UsageError);
    const std::vector<std::size_t> twice{0, 0};
    EXPECT_THROW(compiler::cut_gradient_buckets(sizes, twice, 1024), Error);
}

// The development VM's description: an MPI rank of one Zen 5 core (its measured clock, AVX-512's FLOP per cycle, the
// measured fractions of them oneDNN sustains, its cache's and the reference kernels' rates), shared memory between
// ranks of a host, a veth "NIC" between hosts, OpenMPI's binomial all-reduce with the additions after each transfer.
TEST(Topology, CpuHostsCarryTheirCalibratedFigures) {
    const Topology one = preset("dev-vm");
    EXPECT_EQ(one.device.kind, "dev-vm-rank");
    EXPECT_EQ(one.device.count, 2);
    EXPECT_DOUBLE_EQ(one.device.matrix_flops.at("fp32"), 4.05e9 * 64);
    EXPECT_DOUBLE_EQ(one.device.matrix_flops.at("bf16"), 4.05e9 * 128);
    EXPECT_DOUBLE_EQ(one.device.sustained_matrix_fraction, 0.9);
    EXPECT_DOUBLE_EQ(one.device.sustained_matrix_fraction_16bit, 0.82);
    EXPECT_DOUBLE_EQ(one.device.cache_bandwidth, 100e9);
    EXPECT_DOUBLE_EQ(preset("dev-vm:cores_per_rank=2").device.cache_bandwidth, 200e9);
    EXPECT_DOUBLE_EQ(one.device.reference_bandwidth, 7e9);
    EXPECT_FALSE(one.device.rounds_on_store);
    EXPECT_DOUBLE_EQ(one.device.link_bandwidth, 10.0e9);
    EXPECT_DOUBLE_EQ(one.device.reduce_bandwidth, 72e9);
    EXPECT_DOUBLE_EQ(one.device.cache_bytes, 16.0 * (1 << 20));
    EXPECT_DOUBLE_EQ(one.device.link_bandwidth_beyond_cache, 5.2e9);
    EXPECT_DOUBLE_EQ(one.device.reduce_bandwidth_beyond_cache, 34e9);
    EXPECT_DOUBLE_EQ(one.device.memory_bytes, 12.0 * (1 << 30));  // half the host's 24 GiB
    EXPECT_EQ(one.device.allreduce_algorithm, "binomial");
    EXPECT_TRUE(one.device.collectives_share_cores);
    EXPECT_FALSE(preset("exapod").device.collectives_share_cores);
    EXPECT_EQ(one.device.memory_name, "DRAM");
    EXPECT_EQ(preset("exapod").device.memory_name, "HBM");
    EXPECT_EQ(preset("dgx-a100").device.memory_name, "HBM");
    const SimResult r = simulate(compiler::make_plan("mlp", 64, compiler::Strategy{2, 1, 1, 1}, autodiff::SgdConfig{}),
                                 one, "fp32");
    EXPECT_EQ(r.stages[0].memory.weights_level, "DRAM");
    const Topology two = preset("dev-vm:hosts=2,ranks_per_host=1");
    EXPECT_EQ(two.common_level(0, 1), 1);
    EXPECT_DOUBLE_EQ(two.levels[0].egress_bandwidth, 1.64e9);
    EXPECT_DOUBLE_EQ(two.levels[0].latency_s, 23e-6);
}

// Binomial all-reduce of B bytes over 2 ranks: B one way, the addition, B back: 2 (B / rate + latency) + 3 B / reduce,
// at the in-cache rates while what the rank keeps live plus the buffer and its received copy fit its 16 MiB, else at
// the rates beyond the cache.
double binomial_closed_form(double resident_bytes, double bytes) {
    const bool beyond = resident_bytes + 2 * bytes > 16.0 * (1 << 20);
    return 2 * (bytes / (beyond ? 5.2e9 : 10.0e9) + 0.47e-6) + 3 * bytes / (beyond ? 34e9 : 72e9);
}

TEST(Network, BinomialAllReduceOnCpuHostsMatchesItsClosedForm) {
    for (const double resident : {0.0, 12e6}) {
        Network network(preset("dev-vm"), resident);
        const std::size_t in_cache = network.all_reduce({0, 1}, 2e6);
        const std::size_t beyond = network.all_reduce({0, 1}, 9e6);
        const std::vector<CollectiveTime> t = network.evaluate();
        EXPECT_EQ(t[in_cache].algorithm, "binomial");
        EXPECT_NEAR(t[in_cache].seconds, binomial_closed_form(resident, 2e6), 1e-9) << resident;
        EXPECT_NEAR(t[beyond].seconds, binomial_closed_form(resident, 9e6), 1e-9) << resident;
    }
}

// The plan's buckets are what the simulator reduces, each its own collective, at the rates of its cache regime (the
// simulator fits the buckets of each regime apart). Without sharing the cores, the buckets' times add up.
TEST(Simulate, GradientBucketsAreThePlansAtTheirCacheRegimesRates) {
    Topology dedicated = preset("dev-vm");
    dedicated.device.collectives_share_cores = false;
    // All in cache, all beyond it (35 MB of weights, gradients and momentum), and both in one plan.
    const std::vector<std::pair<std::string, std::size_t>> cases{
        {"mlp:hidden=512", 1}, {"mlp:hidden=1024x1024x1024", 2}, {"mlp:hidden=1024x1024x1024", 8},
        {"mlp:hidden=1024x256", 1}};
    std::set<std::pair<bool, bool>> regimes_seen;
    for (const auto& [model, bucket_mib] : cases) {
        compiler::Plan plan = compiler::make_plan(model, 64, compiler::Strategy{2, 1, 1, 1}, autodiff::SgdConfig{});
        compiler::bucket_gradients(plan, bucket_mib << 20);
        ASSERT_EQ(plan.gradient_buckets.size(), 1u);
        const auto& buckets = plan.gradient_buckets[0];
        ASSERT_GE(buckets.size(), 2u) << model;
        const SimResult r = simulate(plan, dedicated, "fp32");
        const double resident = r.stages[0].memory.total_bytes();
        double expected = 0;
        bool any_in = false, any_beyond = false;
        for (const compiler::GradientBucket& b : buckets) {
            const double bytes = static_cast<double>(b.elements) * 4;
            expected += binomial_closed_form(resident, bytes);
            (resident + 2 * bytes > 16.0 * (1 << 20) ? any_beyond : any_in) = true;
        }
        regimes_seen.insert({any_in, any_beyond});
        EXPECT_NEAR(r.stages[0].grad_allreduce_s, expected, 1e-9) << model << ", " << bucket_mib << " MiB";
        // The runtime's order: the backward pass computes the last layer's gradients first.
        const std::vector<std::size_t> order = compiler::gradient_ready_order(plan.step);
        EXPECT_EQ(buckets.front().gradients.front(), order.front());
        EXPECT_GT(order.front(), order.back());
        // Half the bytes on the wire (bf16) cost less.
        plan.gradient_wire_bytes = 2;
        EXPECT_LT(simulate(plan, dedicated, "fp32").stages[0].grad_allreduce_s, expected);
    }
    EXPECT_EQ(regimes_seen, (std::set<std::pair<bool, bool>>{{true, false}, {false, true}, {true, true}}));
}

// On CPU hosts the communication thread shares the rank's one core with the backward pass: a bucket reduced while the
// backward pass runs takes up to twice as long, and the backward pass ends later by what it lost.
TEST(Simulate, BucketsSharingTheCoresWithTheBackwardPassSlowBothDown) {
    const Topology shared = preset("dev-vm");
    Topology dedicated = shared;
    dedicated.device.collectives_share_cores = false;
    compiler::Plan plan = compiler::make_plan("mlp:hidden=1024x1024x1024", 64, compiler::Strategy{2, 1, 1, 1},
                                              autodiff::SgdConfig{});
    compiler::bucket_gradients(plan, std::size_t{2} << 20);
    const SimResult alone = simulate(plan, dedicated, "fp32");
    const SimResult sharing = simulate(plan, shared, "fp32");
    EXPECT_GT(sharing.stages[0].grad_allreduce_s, alone.stages[0].grad_allreduce_s * 1.05);
    EXPECT_LE(sharing.stages[0].grad_allreduce_s, alone.stages[0].grad_allreduce_s * 2 + 1e-12);
    EXPECT_GT(sharing.step_s, alone.step_s);
    // One bucket, ready when the backward pass is over, shares nothing.
    compiler::bucket_gradients(plan, std::size_t{64} << 20);
    EXPECT_NEAR(simulate(plan, shared, "fp32").stages[0].grad_allreduce_s,
                simulate(plan, dedicated, "fp32").stages[0].grad_allreduce_s, 1e-12);
}

// Megatron's MLP: the first matmul splits by columns, the second by rows and all-reduces its output; their work
// divides by tp; the gradient all-reduce of the input comes out in the backward pass.
TEST(TensorParallel, MlpSplitsColumnsThenRowsWithOneAllReduceEachWay) {
    ir::Graph g;
    const NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape{4, 8}});
    const NodeId w1 = g.add_parameter("w1", {ir::DType::F32, ir::Shape{8, 16}});
    const NodeId w2 = g.add_parameter("w2", {ir::DType::F32, ir::Shape{16, 8}});
    const NodeId h = ir::relu(g, ir::matmul(g, x, w1));
    const NodeId y = ir::matmul(g, h, w2);
    const compiler::TensorParallel tp = compiler::shard_tensor_parallel(g, 4);
    EXPECT_EQ(tp.layout[w1.index].split_axis, 1);
    EXPECT_EQ(tp.layout[w2.index].split_axis, 0);
    EXPECT_EQ(tp.layout[h.index].split_axis, 1);
    EXPECT_FALSE(tp.layout[y.index].split());
    ASSERT_EQ(tp.all_reduces.size(), 1u);
    EXPECT_EQ(tp.all_reduces[0].node, y);
    EXPECT_TRUE(tp.divided[y.index]);
    EXPECT_TRUE(tp.conflicts.empty());
    EXPECT_EQ(compiler::shard_tensor_parallel(g, 1).all_reduces.size(), 0u);
}

// Sequence parallelism splits what tensor parallelism leaves replicated between its regions (the embedding's
// all-reduced output, the residual stream) along the tokens; split, divided and parameter-side values stay as
// they are, and a model without tokens, or tp = 1, is told why it cannot.
TEST(TensorParallel, SequenceParallelismSplitsTheReplicatedTokenValues) {
    ir::Graph g;
    const NodeId tokens = g.add_input("tokens", {ir::DType::I64, ir::Shape{2, 4}});
    const NodeId table = g.add_parameter("table", {ir::DType::F32, ir::Shape{12, 8}});
    const NodeId w1 = g.add_parameter("w1", {ir::DType::F32, ir::Shape{8, 16}});
    const NodeId w2 = g.add_parameter("w2", {ir::DType::F32, ir::Shape{16, 8}});
    const NodeId square = g.add_parameter("square", {ir::DType::F32, ir::Shape{8, 8}});
    const NodeId e = ir::gather(g, table, tokens);          // [2, 4, 8], all-reduced: replicated
    const NodeId h = ir::relu(g, e);                        // replicated residual stream
    const NodeId up = ir::relu(g, ir::matmul(g, h, w1));    // column-split
    const NodeId y = ir::matmul(g, up, w2);                 // row-parallel, all-reduced
    const NodeId z = ir::add(g, y, h);
    const NodeId flat = ir::reshape(g, z, ir::Shape{8, 8});  // the tokens, in a parameter's shape
    const NodeId weights = ir::mul(g, square, square);       // not computed from the data
    compiler::TensorParallel tp = compiler::shard_tensor_parallel(g, 4);
    const double h_bytes = tp.bytes_per_device(g, h);
    compiler::split_sequence(tp, g);
    EXPECT_EQ(compiler::token_count(g), 8);
    ASSERT_EQ(tp.sequence_split.size(), g.size());
    EXPECT_TRUE(tp.sequence_split[h.index]);
    EXPECT_TRUE(tp.sequence_split[z.index]);
    EXPECT_TRUE(tp.divided[h.index]);
    EXPECT_DOUBLE_EQ(tp.bytes_per_device(g, h), h_bytes / 4);
    EXPECT_FALSE(tp.sequence_split[e.index]);      // already divided: the all-reduce's result, computed in parts
    EXPECT_FALSE(tp.sequence_split[up.index]);     // already split by columns
    EXPECT_FALSE(tp.sequence_split[flat.index]);   // parameter-shaped
    EXPECT_FALSE(tp.sequence_split[weights.index]);
    for (const NodeId p : {table, w1, w2, square}) {
        EXPECT_FALSE(tp.sequence_split[p.index]);
    }
    EXPECT_EQ(tp.all_reduces.size(), 2u);  // the same collectives (each a reduce-scatter and an all-gather now)
    compiler::TensorParallel alone = compiler::shard_tensor_parallel(g, 1);
    EXPECT_THROW(compiler::split_sequence(alone, g), UsageError);
    ir::Graph images;
    const NodeId x = images.add_input("x", {ir::DType::F32, ir::Shape{4, 8}});
    ir::relu(images, ir::matmul(images, x, images.add_parameter("w", {ir::DType::F32, ir::Shape{8, 8}})));
    compiler::TensorParallel no_tokens = compiler::shard_tensor_parallel(images, 2);
    EXPECT_EQ(compiler::token_count(images), 0);
    EXPECT_THROW(compiler::split_sequence(no_tokens, images), UsageError);
}

// Elementwise work on a GPU is memory-bound, a large matmul compute-bound; a matmul padded to the tile runs slower
// per FLOP than an aligned one.
TEST(OpTime, ElementwiseIsMemoryBoundAndMatmulsPayForPadding) {
    const Device gpu = preset("dgx-h100").device;
    ir::Graph g;
    const NodeId a = g.add_input("a", {ir::DType::F32, ir::Shape{4096, 4096}});
    const NodeId b = g.add_input("b", {ir::DType::F32, ir::Shape{4096, 4096}});
    const NodeId sum = ir::add(g, a, b);
    const NodeId product = ir::matmul(g, a, b);
    const NodeId c = g.add_input("c", {ir::DType::F32, ir::Shape{4096, 4000}});
    const NodeId d = g.add_input("d", {ir::DType::F32, ir::Shape{4000, 4096}});
    const NodeId padded = ir::matmul(g, c, d);
    const OpTime add_time = op_time(g, sum, gpu, compiler::Precision::Bf16, 1, false, gpu.memory_bandwidth);
    EXPECT_TRUE(add_time.memory_bound);
    EXPECT_NEAR(add_time.seconds, 3 * 4096.0 * 4096 * 2 / 3.35e12, 1e-9);
    const OpTime mm = op_time(g, product, gpu, compiler::Precision::Bf16, 1, false, gpu.memory_bandwidth);
    EXPECT_FALSE(mm.memory_bound);
    const OpTime mm_padded = op_time(g, padded, gpu, compiler::Precision::Bf16, 1, false, gpu.memory_bandwidth);
    EXPECT_GT(mm_padded.compute_s / mm_padded.flops, mm.compute_s / mm.flops);
    EXPECT_THROW(compiler::parse_precision("fp16"), UsageError);
}

// A fused chain is one pass: its externals read once and its exported members written once, at the vector rate;
// unfused, every member reads and writes memory.
TEST(OpTime, AFusedGroupReadsItsExternalsAndWritesItsExportsOnce) {
    const Device gpu = preset("dgx-h100").device;
    ir::Graph g;
    const ir::Shape shape{1024, 1024};
    const NodeId x = g.add_input("x", {ir::DType::F32, shape});
    const NodeId scale = g.add_input("scale", {ir::DType::F32, ir::Shape{1024}});
    const NodeId y = ir::mul(g, x, ir::broadcast_to(g, scale, shape));
    const NodeId z = ir::add(g, y, x);
    const NodeId out = ir::relu(g, z);
    g.mark_output(out);
    std::vector<bool> live(g.size(), true), kept(g.size(), false);
    kept[out.index] = true;
    const std::vector<compiler::FusionGroup> groups = compiler::find_fusion_groups(g, live, kept);
    ASSERT_EQ(groups.size(), 1u);
    const compiler::FusionGroup& group = groups[0];
    EXPECT_EQ(group.members.back(), out);
    const OpTime fused = group_time(g, group, gpu, compiler::Precision::Fp32, 1, false, gpu.memory_bandwidth);
    // Read x and scale, write the output: nothing else touches memory.
    EXPECT_DOUBLE_EQ(fused.bytes, 4.0 * (2 * 1024 * 1024 + 1024));
    EXPECT_TRUE(fused.memory_bound);
    double unfused_s = 0, flops = 0;
    for (const NodeId m : group.members) {
        const OpTime t = op_time(g, m, gpu, compiler::Precision::Fp32, 1, false, gpu.memory_bandwidth);
        unfused_s += t.seconds;
        flops += t.flops;
    }
    EXPECT_DOUBLE_EQ(fused.flops, flops);
    EXPECT_LT(fused.seconds, unfused_s / 2);
    EXPECT_DOUBLE_EQ(group_time(g, group, gpu, compiler::Precision::Bf16, 1, false, gpu.memory_bandwidth).bytes, fused.bytes / 2);
}

// Sums join the pass that computes their input where they sum its rows (innermost axes), not where each row adds
// into a run of outputs; a node that reads two open chains merges them; a map that reads a sum of its own chain
// waits for the pass (a new group).
TEST(FuseElementwise, SumsJoinTheirPassAndChainsMerge) {
    ir::Graph g;
    const ir::Shape shape{16, 32, 64};
    const NodeId x = g.add_input("x", {ir::DType::F32, shape});
    const NodeId z = g.add_input("z", {ir::DType::F32, shape});
    const NodeId a = ir::exp(g, x);
    const NodeId b = ir::neg(g, z);                                          // a second chain, open
    const NodeId row_sums = ir::reduce_sum(g, ir::mul(g, a, a), {2}, true);  // rows of 64: joins a's pass
    const NodeId c = ir::mul(g, a, b);                                       // reads both chains: they merge
    const NodeId d = ir::add(g, c, ir::broadcast_to(g, row_sums, shape));   // reads the sum: a later pass
    const NodeId e = ir::exp(g, z);
    const NodeId column_sums = ir::reduce_sum(g, e, {0}, true);             // a run of outputs per row: alone
    g.mark_output(d);
    g.mark_output(column_sums);
    std::vector<bool> live(g.size(), true), kept(g.size(), false);
    kept[d.index] = kept[column_sums.index] = true;
    const std::vector<compiler::FusionGroup> groups = compiler::find_fusion_groups(g, live, kept);
    auto group_of = [&](NodeId id) {
        for (std::size_t k = 0; k < groups.size(); ++k) {
            if (std::find(groups[k].members.begin(), groups[k].members.end(), id) != groups[k].members.end()) {
                return static_cast<int>(k);
            }
        }
        return -1;
    };
    ASSERT_GE(group_of(a), 0);
    EXPECT_EQ(group_of(row_sums), group_of(a));
    EXPECT_EQ(group_of(b), group_of(a));
    EXPECT_EQ(group_of(c), group_of(a));
    EXPECT_NE(group_of(d), group_of(a));
    EXPECT_EQ(group_of(column_sums), -1);
    for (const compiler::FusionGroup& group : groups) {
        EXPECT_TRUE(std::is_sorted(group.members.begin(), group.members.end(),
                                   [](NodeId p, NodeId q) { return p.index < q.index; }));
    }
}

// The plan carries the runtime's fusion groups, and the simulator times them: AdamW's update fuses, so fewer
// passes over memory than its unfused ops make.
TEST(Simulate, ThePlansFusedGroupsAreTimedAsOnePassEach) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const compiler::Plan plan = compiler::make_plan("mlp", 256, compiler::Strategy{}, adamw);
    ASSERT_FALSE(plan.fusion_groups.empty());
    std::size_t optimizer_groups = 0;
    for (const compiler::FusionGroup& group : plan.fusion_groups) {
        for (const NodeId m : group.members) {
            EXPECT_EQ(plan.stage[m.index], plan.stage[group.members[0].index]);
            EXPECT_EQ(plan.per_step[m.index], plan.per_step[group.members[0].index]);
        }
        optimizer_groups += plan.per_step[group.members[0].index] ? 1 : 0;
    }
    EXPECT_GT(optimizer_groups, 0u);
    compiler::Plan unfused = plan;
    unfused.fusion_groups.clear();
    const Topology node = preset("dgx-h100");
    const SimResult a = simulate(plan, node, "bf16");
    const SimResult b = simulate(unfused, node, "bf16");
    EXPECT_LT(a.stages[0].optimizer_s, b.stages[0].optimizer_s / 2);
    EXPECT_LT(a.step_s, b.step_s);
    EXPECT_DOUBLE_EQ(a.model_flops, b.model_flops);
    EXPECT_TRUE(std::any_of(a.ops.begin(), a.ops.end(), [](const OpClassTime& o) { return o.op == "FusedElementwise"; }));
    EXPECT_FALSE(std::any_of(b.ops.begin(), b.ops.end(), [](const OpClassTime& o) { return o.op == "FusedElementwise"; }));
}

TEST(Simulate, MoreDevicesRunFasterAndMemoryFitNamesTheShortfall) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology node = preset("dgx-h100");
    const compiler::Plan one = compiler::make_plan("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 32,
                                                   compiler::Strategy{1, 1, 1, 1}, adamw);
    const SimResult r1 = simulate(one, node, "bf16");
    const compiler::Plan eight = compiler::make_plan("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 32,
                                                     compiler::Strategy{8, 1, 1, 1}, adamw);
    const SimResult r8 = simulate(eight, node, "bf16");
    EXPECT_TRUE(r1.fits);
    EXPECT_LT(r8.step_s, r1.step_s);
    EXPECT_GT(r8.stages[0].grad_allreduce_s, 0.0);
    // The same work split 8 ways, except the optimizer update, which every replica runs.
    EXPECT_GT(r8.model_flops, r1.model_flops);
    EXPECT_NEAR(r1.model_flops, r8.model_flops, 0.01 * r1.model_flops);
    const compiler::Plan piped = compiler::make_plan("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 32,
                                                     compiler::Strategy{2, 2, 2, 4}, adamw);
    const SimResult rp = simulate(piped, node, "bf16");
    EXPECT_EQ(rp.stages.size(), 2u);
    EXPECT_GT(rp.pipeline_bubble_s, 0.0);
    EXPECT_FALSE(piped.tensor.all_reduces.empty());
    // One D1 cannot hold GPT-2 small's training state: the report names the stage, level and largest tensor.
    const compiler::Plan big = compiler::make_plan("gpt", 8, compiler::Strategy{}, adamw);
    const SimResult on_chip = simulate(big, preset("d1"), "bf16");
    EXPECT_FALSE(on_chip.fits);
    EXPECT_NE(on_chip.fit_report.find("stage 0: needs"), std::string::npos) << on_chip.fit_report;
    EXPECT_NE(on_chip.fit_report.find("largest tensor"), std::string::npos);
    EXPECT_THROW(simulate(eight, preset("d1"), "bf16"), UsageError);       // 8 devices on a machine of 1
    EXPECT_THROW(compiler::make_plan("gpt", 10, compiler::Strategy{4, 1, 1, 1}, adamw), UsageError);
    EXPECT_THROW(compiler::parse_strategy("dp=2,tq=3"), UsageError);
}

// The trace shows what the step did: on each device's compute stream the tasks follow one another, ops nest in
// their task, the critical stage ends the step, and the network counters rise and fall with the buckets and sends.
// On a D1 the placement times the stage: LeNet's layers run in turn on all cores, each layer's output re-spread
// over the mesh for the next (StageTime::respread_s, in the forward and backward times), and the trace has a
// thread below the chip for the cores, with each layer and each re-spread as a slice inside the task.
TEST(Trace, AMeshChipShowsItsCoresRunningTheLayers) {
    const autodiff::OptimizerConfig sgd = autodiff::SgdConfig{};
    const Topology d1 = preset("d1");
    const compiler::Plan plan = compiler::make_plan("lenet", 64, compiler::Strategy{}, sgd);
    const SimResult r = simulate(plan, d1, "bf16", true);
    ASSERT_EQ(r.stages.size(), 1u);
    const StageTime& stage = r.stages[0];
    EXPECT_GT(stage.respread_s, 0.0);
    EXPECT_LT(stage.respread_s, stage.forward_s + stage.backward_s);
    std::ostringstream text;
    write_chrome_trace(r, d1, text);
    const nlohmann::json trace = nlohmann::json::parse(text.str());
    std::int64_t cores_tid = -1;
    for (const auto& e : trace["traceEvents"]) {
        if (e["ph"] == "M" && e["name"] == "thread_name" &&
            e["args"]["name"].get<std::string>().find("all 354 cores (layers in turn)") != std::string::npos) {
            cores_tid = e["tid"];
        }
    }
    ASSERT_GE(cores_tid, 0);
    std::set<std::string> names;
    double respread_us = 0, forward_end = 0;
    for (const auto& e : trace["traceEvents"]) {
        if (e["ph"] == "X" && e["cat"] == "forward") {
            forward_end = e["ts"].get<double>() + e["dur"].get<double>();
        }
    }
    for (const auto& e : trace["traceEvents"]) {
        if (e["ph"] != "X" || e["cat"] != "cores") {
            continue;
        }
        EXPECT_EQ(e["tid"].get<std::int64_t>(), cores_tid);
        const std::string name = e["name"];
        names.insert(name);
        if (name.rfind("re-spread", 0) == 0) {
            respread_us += e["dur"].get<double>();
        }
        if (name.rfind("re-spread conv1", 0) == 0) {
            EXPECT_LE(e["ts"].get<double>() + e["dur"].get<double>(), forward_end * (1 + 1e-9));
        }
    }
    for (const char* layer : {"conv1", "conv2", "fc1", "fc2", "re-spread conv1's output", "re-spread the gradient of conv1"}) {
        EXPECT_EQ(names.count(layer), 1u) << layer;
    }
    EXPECT_NEAR(respread_us, stage.respread_s * 1e6, 1e-6 * respread_us);  // one micro-batch, shown once
}

// Side by side (the MLP's two layers on their own rectangles of a D1, at batch 4096 in fp32): each rectangle is a
// thread below the chip; its forward span starts one piece after the previous rectangle's and all of them lie in
// the forward task, whose time is the slowest rectangle's plus the fill, not the ops' sum on all cores.
TEST(Trace, RectanglesSideBySidePipelineTheMicroBatch) {
    const autodiff::OptimizerConfig sgd = autodiff::SgdConfig{};
    const Topology d1 = preset("d1");
    const compiler::Plan plan = compiler::make_plan("mlp", 4096, compiler::Strategy{}, sgd);
    const SimResult r = simulate(plan, d1, "fp32", true);
    ASSERT_NE(r.stages[0].core_placement.find("rectangles"), std::string::npos) << r.stages[0].core_placement;
    EXPECT_DOUBLE_EQ(r.stages[0].respread_s, 0.0);
    double task_start = -1, task_end = 0;
    std::map<std::string, std::pair<double, double>> spans;  // rectangle -> forward span
    for (const TimelineEvent& e : r.timeline) {
        if (e.category == "forward" && task_start < 0) {
            task_start = e.start_s;
            task_end = e.start_s + e.duration_s;
        }
    }
    for (const TimelineEvent& e : r.timeline) {
        if (e.category == "cores" && e.start_s < task_end && spans.count(e.cores) == 0) {
            ASSERT_EQ(e.cores.rfind("cores (", 0), 0u) << e.cores;
            spans[e.cores] = {e.start_s, e.start_s + e.duration_s};
        }
    }
    ASSERT_EQ(spans.size(), 2u);
    double first_start = 1e30, last_start = 0, longest = 0;
    for (const auto& [track, span] : spans) {
        EXPECT_GE(span.first, task_start - 1e-15);
        EXPECT_LE(span.second, task_end * (1 + 1e-9));
        first_start = std::min(first_start, span.first);
        last_start = std::max(last_start, span.first);
        longest = std::max(longest, span.second - span.first);
    }
    EXPECT_DOUBLE_EQ(first_start, task_start);
    EXPECT_GT(last_start, first_start);  // the second rectangle starts a piece later
    EXPECT_NEAR(task_end - task_start, longest + (last_start - first_start), 1e-9 * (task_end - task_start));
}

TEST(Trace, TasksFollowOneAnotherOpsNestAndTheCriticalStageEndsTheStep) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology tray = preset("v1-matrix");
    const compiler::Plan plan = compiler::make_plan("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 64,
                                                    compiler::Strategy{2, 5, 4, 8}, adamw);
    const SimResult r = simulate(plan, tray, "bf16", true);
    EXPECT_DOUBLE_EQ(simulate(plan, tray, "bf16").step_s, r.step_s);  // recording changes nothing
    std::ostringstream text;
    write_chrome_trace(r, tray, text);
    const nlohmann::json trace = nlohmann::json::parse(text.str());
    const double step_us = r.step_s * 1e6, eps = 1e-6 * step_us;
    std::map<std::pair<int, std::int64_t>, std::vector<std::pair<double, double>>> tasks;  // (pid, tid) -> spans
    std::map<std::string, std::pair<double, double>> first_forward;                     // "pid/tid" -> span
    std::vector<nlohmann::json> ops;
    double last_end = 0, peak_traffic = 0;
    int counters = 0;
    for (const auto& e : trace["traceEvents"]) {
        if (e["ph"] == "C") {
            ++counters;
            if (e["name"].get<std::string>().find("link traffic") != std::string::npos) {
                EXPECT_GE(e["args"]["GB/s"].get<double>(), 0.0);
                peak_traffic = std::max(peak_traffic, e["args"]["GB/s"].get<double>());
            }
            continue;
        }
        if (e["ph"] != "X" || e["cat"] == "step") {
            continue;
        }
        const double start = e["ts"], end = start + e["dur"].get<double>();
        EXPECT_GE(start, -eps) << e.dump();
        EXPECT_LE(end, step_us + eps) << e.dump();
        last_end = std::max(last_end, end);
        const std::string cat = e["cat"];
        const auto key = std::make_pair(e["pid"].get<int>(), e["tid"].get<std::int64_t>());
        if (cat == "forward" || cat == "backward" || cat == "optimizer") {
            tasks[key].push_back({start, end});
            if (e["name"] == "forward 0") {
                first_forward[std::to_string(key.first) + "/" + std::to_string(key.second)] = {start, end};
            }
        } else if (cat == "op" || cat == "tensor-parallel") {
            ops.push_back(e);
        }
    }
    EXPECT_NEAR(last_end, step_us, eps);
    EXPECT_GT(peak_traffic, 0.0);  // the sends and the gradient all-reduce load the links
    ASSERT_EQ(tasks.size(), 4u);  // one compute stream per stage
    for (auto& [stream, spans] : tasks) {
        EXPECT_EQ(spans.size(), 2u * 8 + 1);  // forward and backward of 8 micro-batches, the optimizer
        std::sort(spans.begin(), spans.end());
        for (std::size_t i = 1; i < spans.size(); ++i) {
            EXPECT_LE(spans[i - 1].second, spans[i].first + eps);
        }
    }
    ASSERT_FALSE(ops.empty());
    std::size_t nested = 0;
    for (const auto& op : ops) {
        const std::string stream = std::to_string(op["pid"].get<int>()) + "/" +
                                   std::to_string(op["tid"].get<std::int64_t>());
        const auto& [start, end] = first_forward.at(stream);
        const double at = op["ts"];
        if (at < end - eps && at >= start - eps) {
            EXPECT_LE(at + op["dur"].get<double>(), end + eps) << op.dump();
            ++nested;
        }
    }
    EXPECT_GT(nested, 0u);
    EXPECT_GT(counters, 0);  // gradient buckets and sends
}

// The critical path runs from the step's start to its end without a gap: its items add up to the step time, on a
// pipeline (sends between stages), on GPUs, and on CPU ranks whose all-reduce shares the cores.
TEST(Simulate, TheCriticalPathAddsUpToTheStep) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const std::string gpt = "gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000";
    const std::vector<std::pair<std::string, compiler::Plan>> cases = {
        {"dgx-h100", compiler::make_plan(gpt, 32, compiler::Strategy{2, 2, 2, 4}, adamw)},
        {"v1-matrix", compiler::make_plan(gpt, 64, compiler::Strategy{2, 5, 4, 8}, adamw)},
        {"dev-vm", compiler::make_plan("mlp", 64, compiler::Strategy{2, 1, 1, 1}, adamw)}};
    for (const auto& [machine, plan] : cases) {
        const SimResult r = simulate(plan, preset(machine), "bf16");
        ASSERT_FALSE(r.critical_path.empty()) << machine;
        double seconds = 0, share = 0;
        for (const CriticalItem& item : r.critical_path) {
            EXPECT_GE(item.seconds, 0.0) << machine << ": " << item.what;
            EXPECT_FALSE(item.why.empty()) << item.what;
            seconds += item.seconds;
            share += item.share;
        }
        EXPECT_NEAR(seconds, r.step_s, 1e-9 * r.step_s) << machine;
        EXPECT_NEAR(share, 1.0, 1e-9) << machine;
        EXPECT_TRUE(std::is_sorted(r.critical_path.begin(), r.critical_path.end(),
                                   [](const CriticalItem& a, const CriticalItem& b) { return a.seconds > b.seconds; }));
    }
    // A pipeline's path crosses stages: some of it is another stage's compute or a send.
    const SimResult piped = simulate(cases[1].second, preset("v1-matrix"), "bf16");
    std::set<std::string> stages;
    for (const CriticalItem& item : piped.critical_path) {
        stages.insert(item.what.substr(0, item.what.find(' ', 6)));
    }
    EXPECT_GT(stages.size(), 1u);
}

// The strategy search returns the fastest fitting plan: never slower than an explicit plan it also considers.
// Stages are cut where the least crosses: between transformer layers only the residual stream (batch x seq x hidden
// values) goes down the pipeline, never a fused QKV projection's three; values every device computes for itself
// (fills, scales) are never sent.
TEST(Simulate, PipelineStagesAreCutBetweenLayersWhereOnlyTheResidualCrosses) {
    const Topology dgx = preset("dgx-a100");
    // A small vocabulary: the LM head is light, so cutting between layers keeps the stages within 2% of the best.
    const compiler::Plan plan = compiler::make_plan("gpt:layers=8,hidden=256,heads=4,seq=128,vocab=64", 8,
                                                    compiler::parse_strategy("pp=4,mb=8"), autodiff::AdamWConfig{},
                                                    stage_cost(dgx.device, compiler::Precision::Bf16));
    const ir::Graph& g = plan.step.graph;
    const double residual = 1.0 * 128 * 256 * 4;  // one sample's tokens x hidden, F32
    const std::vector<bool> local = compiler::computed_locally(g);
    std::map<std::pair<int, int>, double> forward_bytes;
    for (const compiler::Plan::Transfer& t : plan.transfers) {
        EXPECT_FALSE(local[t.node.index]) << g.describe(t.node) << " is sent but every device computes it";
        if (t.forward) {
            forward_bytes[{t.from, t.to}] += t.bytes;
        }
    }
    ASSERT_EQ(forward_bytes.size(), 3u);
    for (const auto& [link, bytes] : forward_bytes) {
        EXPECT_DOUBLE_EQ(bytes, residual) << "stage " << link.first << " -> " << link.second;
    }
}

TEST(Simulate, SearchIsNeverSlowerThanTheExplicitPlansItTries) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology node = preset("dgx-h100");
    const std::string model = "gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000";
    const std::vector<SimResult> results = search_strategies(model, 64, node, compiler::Precision::Bf16, adamw);
    ASSERT_FALSE(results.empty());
    for (const compiler::Strategy s : {compiler::Strategy{8, 1, 1, 1}, compiler::Strategy{4, 2, 1, 1},
                                       compiler::Strategy{1, 8, 1, 1}}) {
        const SimResult explicit_plan =
            simulate(compiler::make_plan(model, 64, s, adamw, stage_cost(node.device, compiler::Precision::Bf16),
                                         compiler::Precision::Bf16),
                     node);
        EXPECT_LE(results.front().step_s, explicit_plan.step_s * (1 + 1e-9)) << s.to_string();
    }
}

// Strategy switches: sp=1, zero=1 and recompute=1 parse in any order, print back, and take only 0 or 1.
TEST(Strategy, MemorySavingSwitchesParseAndPrintBack) {
    const compiler::Strategy s = compiler::parse_strategy("recompute=1,dp=4,zero=1,mb=2,tp=2,sp=1");
    EXPECT_EQ(s.dp, 4);
    EXPECT_EQ(s.micro_batches, 2);
    EXPECT_TRUE(s.zero);
    EXPECT_TRUE(s.recompute);
    EXPECT_TRUE(s.sp);
    EXPECT_EQ(s.to_string(), "dp=4,tp=2,pp=1,mb=2,sp=1,zero=1,recompute=1");
    EXPECT_EQ(compiler::parse_strategy(s.to_string()), s);
    EXPECT_FALSE(compiler::parse_strategy("dp=2,zero=0").zero);
    EXPECT_EQ(compiler::parse_strategy("dp=2").to_string(), "dp=2,tp=1,pp=1,mb=1");
    EXPECT_THROW(compiler::parse_strategy("dp=2,zero=2"), UsageError);
    EXPECT_THROW(compiler::parse_strategy("recompute=yes"), UsageError);
    const compiler::Strategy selective = compiler::parse_strategy("pp=2,mb=4,recompute=selective");
    EXPECT_TRUE(selective.recompute && selective.selective);
    EXPECT_EQ(selective.to_string(), "dp=1,tp=1,pp=2,mb=4,recompute=selective");
    EXPECT_EQ(compiler::parse_strategy(selective.to_string()), selective);
    const compiler::Strategy full = compiler::parse_strategy("recompute=full");
    EXPECT_TRUE(full.recompute && !full.selective);
    EXPECT_EQ(full, compiler::parse_strategy("recompute=1"));
    EXPECT_THROW(compiler::parse_strategy("recompute=selective,recompute=1"), UsageError);
    EXPECT_THROW(compiler::parse_strategy("zero=1,zero=1"), UsageError);
}

// Megatron-LM's interleaved schedule (vp model chunks per device): the same work in smaller tasks, so the pipeline
// fills and drains faster (the bubble of 1F1B, (pp - 1) / m of the ideal, shrinks about vp-fold), at the price of vp
// times the sends and a longer warm-up of activations in flight. vp=1 is plain 1F1B.
TEST(Simulate, InterleavedScheduleShrinksTheBubble) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const std::string gpt = "gpt:layers=16,hidden=1024,heads=16,seq=512,vocab=8000";
    const Topology node = preset("dgx-a100");
    auto run = [&](const std::string& strategy) {
        return simulate(compiler::make_plan(gpt, 32, compiler::parse_strategy(strategy), adamw), node, "bf16");
    };
    const SimResult plain = run("pp=4,mb=8"), one = run("pp=4,mb=8,vp=1"), two = run("pp=4,mb=8,vp=2");
    EXPECT_DOUBLE_EQ(one.step_s, plain.step_s);
    EXPECT_LT(two.step_s, plain.step_s);
    EXPECT_GT(plain.pipeline_bubble_s, 0.0);
    EXPECT_NEAR(two.pipeline_bubble_s, plain.pipeline_bubble_s / 2, 0.15 * plain.pipeline_bubble_s);
    // The same compute on every device; only the order and the sends differ.
    EXPECT_DOUBLE_EQ(two.stages[1].forward_s, plain.stages[1].forward_s);
    // More activations in flight on the first stage: 1F1B holds pp = 4 micro-batches there, interleaved
    // ((pp - 1) * 2 + (vp - 1) * pp + 1) / vp = 5.5 of them.
    const compiler::Strategy st = compiler::parse_strategy("pp=4,mb=8,vp=2");
    EXPECT_DOUBLE_EQ(compiler::micro_batches_in_flight(st, 0), 5.5);
    EXPECT_DOUBLE_EQ(compiler::micro_batches_in_flight(st, 3), 2.5);
    EXPECT_DOUBLE_EQ(compiler::micro_batches_in_flight(compiler::parse_strategy("pp=4,mb=8"), 0), 4.0);
    EXPECT_GT(two.stages[0].memory.activations_bytes, plain.stages[0].memory.activations_bytes);
    // Every schedule runs to its end (no deadlock), more chunks or more micro-batches alike, and its critical path
    // adds up to the step.
    for (const char* strategy : {"pp=4,mb=4,vp=2", "pp=4,mb=8,vp=4", "pp=2,mb=8,vp=3", "pp=4,mb=16,vp=2"}) {
        const SimResult r = run(strategy);
        double on_path = 0;
        for (const CriticalItem& item : r.critical_path) {
            on_path += item.seconds;
        }
        EXPECT_NEAR(on_path, r.step_s, 1e-9 * r.step_s) << strategy;
    }
    EXPECT_EQ(compiler::parse_strategy("pp=4,mb=8,vp=2").to_string(), "dp=1,tp=1,pp=4,mb=8,vp=2");
    EXPECT_THROW(run("pp=4,mb=6,vp=2"), UsageError);  // Megatron's order needs micro-batches in groups of pp
    EXPECT_THROW(run("mb=4,vp=2"), UsageError);       // no pipeline to interleave
}

// The schedule pass: every device runs each of its chunks' forward and backward once per micro-batch, in an order
// whose dependencies can be met (run here as a token game: a task runs once its inputs exist), holding no more
// micro-batches in flight than the schedule promises.
TEST(Schedule, OneForwardOneBackwardAndInterleavedOrdersRunAndBoundWhatIsInFlight) {
    EXPECT_EQ(compiler::dump_schedule(compiler::parse_strategy("pp=2,mb=3")),
              "1F1B schedule, 2 device(s) x 1 chunk(s), 3 micro-batch(es) (F/B chunk.micro-batch)\n"
              "  device 0: F0.0 F0.1 B0.0 F0.2 B0.1 B0.2\n"
              "  device 1: F1.0 B1.0 F1.1 B1.1 F1.2 B1.2\n");
    for (const char* text : {"pp=4,mb=8", "pp=4,mb=2", "pp=1,mb=3", "pp=4,mb=8,vp=2", "pp=2,mb=4,vp=3", "pp=8,mb=16,vp=4"}) {
        const compiler::Strategy st = compiler::parse_strategy(text);
        const auto order = compiler::pipeline_schedule(st);
        const int chunks = st.pp * st.virtual_stages;
        ASSERT_EQ(order.size(), static_cast<std::size_t>(st.pp)) << text;
        std::vector<std::vector<int>> done_f(chunks, std::vector<int>(st.micro_batches, 0)), done_b = done_f;
        std::vector<std::size_t> next(order.size(), 0);
        std::size_t left = 0;
        for (std::size_t s = 0; s < order.size(); ++s) {
            EXPECT_EQ(order[s].size(), static_cast<std::size_t>(2 * st.micro_batches * st.virtual_stages)) << text;
            left += order[s].size();
        }
        std::vector<double> held(order.size(), 0), most(order.size(), 0);  // activations in flight, in stages
        for (bool progressed = true; progressed && left > 0;) {
            progressed = false;
            for (std::size_t s = 0; s < order.size(); ++s) {
                while (next[s] < order[s].size()) {
                    const compiler::PipelineTask& t = order[s][next[s]];
                    ASSERT_EQ(t.chunk % st.pp, static_cast<int>(s)) << text;
                    const bool ready = t.backward ? done_f[t.chunk][t.micro] &&
                                                        (t.chunk + 1 == chunks || done_b[t.chunk + 1][t.micro])
                                                  : t.chunk == 0 || done_f[t.chunk - 1][t.micro];
                    if (!ready) {
                        break;
                    }
                    auto& mark = t.backward ? done_b[t.chunk][t.micro] : done_f[t.chunk][t.micro];
                    EXPECT_EQ(mark, 0) << text << ": a task scheduled twice";
                    mark = 1;
                    held[s] += (t.backward ? -1.0 : 1.0) / st.virtual_stages;
                    most[s] = std::max(most[s], held[s]);
                    ++next[s];
                    --left;
                    progressed = true;
                }
            }
        }
        EXPECT_EQ(left, 0u) << text << ": the schedule deadlocks";
        for (std::size_t s = 0; s < order.size(); ++s) {
            EXPECT_LE(most[s], compiler::micro_batches_in_flight(st, static_cast<int>(s)) + 1e-9) << text << " device " << s;
        }
    }
    EXPECT_THROW(compiler::pipeline_schedule(compiler::parse_strategy("pp=4,mb=6,vp=2")), UsageError);
}

// Recomputation keeps checkpoints instead of every saved value, and pays for it with a second forward pass inside
// each backward task; parameters, gradients and optimizer state are untouched.
TEST(Simulate, RecomputationTradesAForwardPassForActivationMemory) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology node = preset("dgx-h100");
    const std::string gpt = "gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000";
    const compiler::Plan kept = compiler::make_plan(gpt, 32, compiler::Strategy{1, 2, 2, 8}, adamw);
    compiler::Strategy again{1, 2, 2, 8};
    again.recompute = true;
    const compiler::Plan recomputed = compiler::make_plan(gpt, 32, again, adamw);
    ASSERT_EQ(recomputed.recomputation.segments.size(), 2u);
    EXPECT_TRUE(kept.recomputation.segments.empty());
    const SimResult a = simulate(kept, node, "bf16");
    const SimResult b = simulate(recomputed, node, "bf16");
    // The first stage holds two micro-batches in flight: recomputing it at least halves its activations. The last
    // holds one, and is recomputed only if that still saves memory.
    EXPECT_GE(recomputed.recomputation.segments[0], 1);
    EXPECT_GT(recomputed.recomputation.checkpoint_bytes[0], 0.0);
    EXPECT_LT(b.stages[0].memory.activations_bytes, 0.5 * a.stages[0].memory.activations_bytes);
    // The per-node plan agrees with the per-stage figures: a recomputed stage's checkpoints (the values its forward
    // nodes read from an earlier segment or stage, each once) add up to its checkpoint bytes, and every forward node
    // sits in one of its stage's segments.
    const compiler::Plan::Recomputation& rc = recomputed.recomputation;
    const ir::Graph& g = recomputed.step.graph;
    std::vector<double> checkpointed(2, 0.0);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (rc.checkpoint[i]) {
            // A checkpoint belongs to the stage that reads it: the stage of its first forward reader.
            for (std::uint32_t j = i + 1; j <= recomputed.last_forward.index; ++j) {
                const auto& inputs = g.node(NodeId{j}).inputs;
                if (rc.segment[j] >= 0 && std::find(inputs.begin(), inputs.end(), NodeId{i}) != inputs.end() &&
                    (recomputed.stage[i] != recomputed.stage[j] || rc.segment[i] < rc.segment[j])) {
                    checkpointed[static_cast<std::size_t>(recomputed.stage[j])] +=
                        recomputed.tensor.bytes_per_device(g, NodeId{i});
                    break;
                }
            }
        }
        if (rc.segment[i] >= 0) {
            EXPECT_LT(rc.segment[i], rc.segments[static_cast<std::size_t>(recomputed.stage[i])]);
        }
    }
    EXPECT_NEAR(checkpointed[0], rc.checkpoint_bytes[0], 1e-6 * rc.checkpoint_bytes[0]);
    for (std::size_t s = 0; s < 2; ++s) {
        const StageTime& x = a.stages[s];
        const StageTime& y = b.stages[s];
        const bool again_here = recomputed.recomputation.segments[s] > 0;
        EXPECT_LE(y.memory.activations_bytes, x.memory.activations_bytes) << "stage " << s;
        EXPECT_EQ(y.memory.activations_bytes < x.memory.activations_bytes, again_here) << "stage " << s;
        EXPECT_DOUBLE_EQ(y.memory.parameters_bytes, x.memory.parameters_bytes);
        EXPECT_DOUBLE_EQ(y.memory.optimizer_bytes, x.memory.optimizer_bytes);
        EXPECT_EQ(x.recompute_s, 0.0);
        EXPECT_NEAR(y.recompute_s, again_here ? y.forward_s + y.tensor_comm_s / 2 : 0.0, 1e-12);
        EXPECT_NEAR(y.backward_s, x.backward_s + y.recompute_s, 1e-9 * y.backward_s);
        EXPECT_NEAR(y.forward_s, x.forward_s, 1e-12);
    }
    EXPECT_GT(b.step_s, a.step_s);
    bool named = false;
    for (const CriticalItem& item : b.critical_path) {
        named = named || item.what.find("recomputation") != std::string::npos;
    }
    EXPECT_TRUE(named);
}

int full_recompute_stages(const SimResult& r) {
    return static_cast<int>(std::count_if(r.stages.begin(), r.stages.end(),
                                          [](const StageTime& st) { return st.recompute_s > 0; }));
}

// Selective recomputation (Megatron-LM's): only the attention cores' S x S values are dropped and computed again,
// so it holds more than full recomputation and less than none, and costs a fraction of a forward pass.
TEST(Simulate, SelectiveRecomputationDropsOnlyTheAttentionScores) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology node = preset("dgx-h100");
    const std::int64_t layers = 4, seq = 256;
    const std::string gpt = "gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000";
    auto plan = [&](const char* strategy) { return compiler::make_plan(gpt, 32, compiler::parse_strategy(strategy), adamw); };
    const compiler::Plan none = plan("tp=2,pp=2,mb=8"), full = plan("tp=2,pp=2,mb=8,recompute=full"),
                         selective = plan("tp=2,pp=2,mb=8,recompute=selective");
    // Stage 0 holds two micro-batches and three of the four attention cores: it recomputes. Stage 1 (one core, one
    // micro-batch in flight) would hold as much either way: it keeps everything, as full recomputation does.
    const compiler::Plan::Recomputation& rc = selective.recomputation;
    ASSERT_EQ(rc.segments, (std::vector<int>{1, 0}));
    // The recomputed nodes: every forward node of stage 0 with an S x S score (Q K^T, scaling, mask, softmax), and
    // the one MatMul per layer that applies the probabilities to V; nothing else.
    const ir::Graph& g = selective.step.graph;
    std::int64_t over_v = 0;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Node& n = g.node(NodeId{i});
        const bool score = i <= selective.last_forward.index && selective.live[i] && !ir::is_leaf(n.op) &&
                           selective.stage[i] == 0 && n.type.shape.rank() == 4 && n.type.shape[2] == seq && n.type.shape[3] == seq;
        const bool applies = rc.recomputed[i] && !score;
        EXPECT_TRUE(!score || rc.recomputed[i]) << g.describe(NodeId{i});
        if (applies) {
            EXPECT_EQ(n.op, ir::OpKind::MatMul) << g.describe(NodeId{i});
            EXPECT_EQ(n.type.shape[2], seq);
            ++over_v;
        }
    }
    EXPECT_EQ(over_v, layers - 1);
    const SimResult a = simulate(none, node, "bf16"), b = simulate(full, node, "bf16"),
                    c = simulate(selective, node, "bf16");
    EXPECT_LT(c.stages[0].memory.activations_bytes, a.stages[0].memory.activations_bytes);
    EXPECT_GT(c.stages[0].memory.activations_bytes, b.stages[0].memory.activations_bytes);
    EXPECT_GT(c.stages[0].recompute_s, 0.0);
    EXPECT_LT(c.stages[0].recompute_s, 0.5 * b.stages[0].recompute_s);
    EXPECT_DOUBLE_EQ(c.stages[1].memory.activations_bytes, a.stages[1].memory.activations_bytes);
    EXPECT_EQ(c.stages[1].recompute_s, 0.0);
    for (std::size_t s = 0; s < 2; ++s) {
        EXPECT_NEAR(c.stages[s].backward_s, a.stages[s].backward_s + c.stages[s].recompute_s, 1e-9) << "stage " << s;
    }
    EXPECT_GT(c.step_s, a.step_s);
    EXPECT_LT(c.step_s, b.step_s);
    bool named = false;
    for (const CriticalItem& item : c.critical_path) {
        named = named || item.why.find("recompute=selective") != std::string::npos;
    }
    EXPECT_TRUE(named);
}

// saved_activations = "kernel_inputs": fused LayerNorm, bias+GeLU and softmax kernels keep their inputs, so with
// selective recomputation and sequence parallelism a layer keeps what Korthikanti et al. 2022 (arXiv 2205.05198,
// sec. 4.1) count for Megatron-LM, 34 s b h / t bytes, less the two bytes of dropout masks this model does not have:
// 32 s b h / t; plus its four weight matrices rounded to BF16 (12 h^2 / t values, 2 bytes each), one copy for
// every micro-batch. Keeping every value the backward pass reads holds more.
TEST(Simulate, FusedKernelsKeepTheirInputsAsMegatronCountsALayer) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    Topology node = preset("dgx-h100");
    const double s = 256, b = 2, h = 512, t = 2;
    auto activations = [&](int layers, bool kernel_inputs) {
        node.device.keeps_kernel_inputs = kernel_inputs;
        const std::string gpt = "gpt:layers=" + std::to_string(layers) + ",hidden=512,heads=8,seq=256,vocab=8000";
        const compiler::Plan p = compiler::make_plan(gpt, 2, compiler::parse_strategy("tp=2,sp=1,recompute=selective"),
                                                     adamw, {}, compiler::Precision::Bf16);
        EXPECT_EQ(p.recomputation.segments, std::vector<int>{1});
        return simulate(p, node, "bf16").stages[0].memory.activations_bytes;
    };
    const double layer = activations(4, true) - activations(3, true);
    EXPECT_NEAR(layer, 32 * s * b * h / t + 2 * 12 * h * h / t, 0.01 * layer);
    EXPECT_GT(activations(4, false) - activations(3, false), 1.2 * layer);
}

// A weight's rounding to the compute format is the same for every micro-batch: a stage holds it once, while the
// activations grow with the micro-batches in flight (min(pp - stage, mb) on stage 0).
TEST(Simulate, AWeightsRoundingIsHeldOnceNotPerMicroBatchInFlight) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology node = preset("dgx-h100");
    const std::string gpt = "gpt:layers=4,hidden=512,heads=8,seq=128,vocab=8000";
    auto stage0 = [&](int mb, const char* precision) {
        const compiler::Plan p = compiler::make_plan(gpt, 2 * mb, compiler::Strategy{1, 1, 4, mb}, adamw, {},
                                                     compiler::parse_precision(precision));
        return simulate(p, node, precision).stages[0].memory;
    };
    for (const char* precision : {"bf16", "fp32"}) {
        const double one = stage0(1, precision).activations_bytes, two = stage0(2, precision).activations_bytes;
        const double three = stage0(3, precision).activations_bytes;
        EXPECT_NEAR(three - two, two - one, 1e-6 * one) << precision;
        const double once = one - (two - one);
        if (std::string(precision) == "bf16") {  // at least its layer's four matrices (12 h^2 values) at 2 bytes
            EXPECT_GE(once, 2.0 * 12 * 512 * 512);
        } else {  // nothing is rounded
            EXPECT_NEAR(once, 0.0, 1e-6 * one);
        }
    }
}

// The stage roofline: each op's time is at least its compute time and its memory time, so a GPU stage is busy at
// least as long as either roof; the named bound is the largest roof; recomputation adds a forward pass's FLOP, a
// third of a matmul-bound step's (the backward pass does twice the forward's products).
TEST(Simulate, StageRooflineBoundsTheStageAndCountsRecomputation) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology node = preset("dgx-a100");
    const std::string gpt = "gpt:layers=4,hidden=1024,heads=16,seq=512,vocab=8000";
    auto plan = [&](const char* strategy) {
        return compiler::make_plan(gpt, 16, compiler::parse_strategy(strategy), adamw,
                                   stage_cost(node.device, compiler::Precision::Bf16), compiler::Precision::Bf16);
    };
    const SimResult kept = simulate(plan("tp=2,pp=2,mb=4"), node);
    const SimResult again = simulate(plan("tp=2,pp=2,mb=4,recompute=full"), node);
    for (const SimResult* r : {&kept, &again}) {
        for (const StageTime& st : r->stages) {
            const StageRoofline& roof = st.roofline;
            EXPECT_GT(roof.flop, 0.0);
            EXPECT_GT(roof.memory_bytes, 0.0);
            EXPECT_EQ(roof.sram_bytes, 0.0);  // a GPU's data lives in HBM here
            EXPECT_GE(roof.busy_s, roof.compute_s * (1 - 1e-9)) << "stage " << st.stage;
            EXPECT_GE(roof.busy_s, roof.memory_s * (1 - 1e-9)) << "stage " << st.stage;
            const double largest = std::max({roof.compute_s, roof.memory_s, roof.link_s});
            EXPECT_EQ(roof.bound, largest == roof.memory_s ? "memory" : largest == roof.link_s ? "links" : "compute");
        }
    }
    ASSERT_GT(full_recompute_stages(again), 0);
    const StageRoofline& a = kept.stages[0].roofline;
    const StageRoofline& b = again.stages[0].roofline;
    EXPECT_NEAR(b.flop / a.flop, 4.0 / 3.0, 0.05);
    EXPECT_GT(b.memory_bytes, a.memory_bytes);
}

// ZeRO stage 1: each replica holds and updates 1/dp of the optimizer state; its gradients are reduce-scattered (half
// a ring all-reduce) and the updated parameters all-gathered after the update (the other half). In bf16 the FP32
// master parameters are optimizer state too (Rajbhandari et al. 2020, sec. 5.1), 1/dp of them each; in fp32 they
// are the weights every replica computes with, whole.
TEST(Simulate, ZeroShardsTheOptimizerStateAndGathersTheParametersAfterTheUpdate) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology node = preset("dgx-h100");
    const std::string gpt = "gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000";
    const SimResult a = simulate(compiler::make_plan(gpt, 32, compiler::Strategy{4, 1, 1, 1}, adamw), node, "bf16");
    compiler::Strategy sharded{4, 1, 1, 1};
    sharded.zero = true;
    const SimResult b = simulate(compiler::make_plan(gpt, 32, sharded, adamw), node, "bf16");
    const StageTime& x = a.stages[0];
    const StageTime& y = b.stages[0];
    EXPECT_NEAR(y.memory.optimizer_bytes, x.memory.optimizer_bytes / 4, 1e-9 * x.memory.optimizer_bytes);
    EXPECT_NEAR(y.memory.parameters_bytes, x.memory.parameters_bytes / 4, 1e-9 * x.memory.parameters_bytes);
    EXPECT_DOUBLE_EQ(y.memory.gradients_bytes, x.memory.gradients_bytes);
    const SimResult fp32 = simulate(compiler::make_plan(gpt, 32, sharded, adamw, {}, compiler::Precision::Fp32), node,
                                    "fp32");
    EXPECT_DOUBLE_EQ(fp32.stages[0].memory.parameters_bytes, x.memory.gradients_bytes);
    EXPECT_NEAR(y.optimizer_s, x.optimizer_s / 4, 1e-12);
    EXPECT_EQ(x.param_allgather_s, 0.0);
    EXPECT_NEAR(y.param_allgather_s, x.grad_allreduce_s / 2, 1e-9 * x.grad_allreduce_s);
    EXPECT_NEAR(y.grad_allreduce_s, x.grad_allreduce_s / 2, 1e-9 * x.grad_allreduce_s);
    EXPECT_NEAR(y.finish_s, b.step_s, 1e-12);
    double seconds = 0;
    for (const CriticalItem& item : b.critical_path) {
        seconds += item.seconds;
    }
    EXPECT_NEAR(seconds, b.step_s, 1e-9 * b.step_s);
}

// tensor_parallel_comm = "overlapped" (a software stack's choice, machines/software): each tensor-parallel
// collective streams beside the product that computes its partial sums and the one that reads its result, so the
// compute waits only for what those products do not cover. The same collectives cross the links; no compute
// changes; a product can hide at most the two collectives it writes and reads.
TEST(Simulate, OverlappedTensorParallelCommWaitsOnlyForWhatItsProductsDoNotHide) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    auto matmul_per_microbatch = [](const SimResult& r) {
        return class_seconds(r, "MatMul") / static_cast<double>(r.strategy.micro_batches);
    };
    Topology node = preset("dgx-h100");
    ASSERT_FALSE(node.device.tensor_comm_overlapped);  // the GPU kinds' default
    const compiler::Plan small =
        compiler::make_plan("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 16, {2, 4, 1, 2}, adamw);
    const SimResult exposed = simulate(small, node);
    node.device.tensor_comm_overlapped = true;
    const SimResult overlapped = simulate(small, node);
    const StageTime& a = exposed.stages[0];
    const StageTime& b = overlapped.stages[0];
    EXPECT_DOUBLE_EQ(b.forward_s, a.forward_s);
    EXPECT_DOUBLE_EQ(b.backward_s, a.backward_s);
    EXPECT_DOUBLE_EQ(b.tensor_comm_total_s, a.tensor_comm_total_s);
    EXPECT_DOUBLE_EQ(a.tensor_comm_s, a.tensor_comm_total_s);
    EXPECT_GT(b.tensor_comm_s, 0.0);  // this model's products are shorter than its collectives' latencies
    EXPECT_LT(b.tensor_comm_s, a.tensor_comm_s);
    EXPECT_LE(a.tensor_comm_s - b.tensor_comm_s, 2 * matmul_per_microbatch(overlapped) + 1e-15);
    EXPECT_LT(overlapped.step_s, exposed.step_s);

    // Products of GPT-3's width take longer than their collectives: the layers' collectives hide; what waits are
    // the few that no product writes or reads (the split loss's all-reduces of row maxima and sums, the embedding
    // lookup's).
    const compiler::Plan wide =
        compiler::make_plan("gpt:layers=2,hidden=8192,heads=64,seq=2048,vocab=8000", 8, {1, 8, 1, 8}, adamw);
    const SimResult hidden = simulate(wide, node);
    EXPECT_GT(hidden.stages[0].tensor_comm_total_s, 0.0);
    EXPECT_LT(hidden.stages[0].tensor_comm_s, 0.02 * hidden.stages[0].tensor_comm_total_s);
}

// fp8_products = "linear" (Transformer Engine's FP8): at cfp8 only the Linear layers' products run in the 8-bit
// format; attention's batched products run as BF16. The step's products then cost more than all-FP8 and less than
// all-BF16, and a model without attention (an MLP: every product reads a weight or makes a weight's gradient)
// costs the same either way.
TEST(Simulate, Fp8LinearLayersOnlyLeaveAttentionProductsInBf16) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    Topology node = preset("dgx-h100");
    const std::string gpt = "gpt:layers=2,hidden=1024,heads=16,seq=1024,vocab=8000";
    const compiler::Plan fp8 = compiler::make_plan(gpt, 8, compiler::Strategy{}, adamw, {}, compiler::Precision::Cfp8);
    const compiler::Plan bf16 = compiler::make_plan(gpt, 8, compiler::Strategy{}, adamw, {}, compiler::Precision::Bf16);
    const double all_fp8 = class_seconds(simulate(fp8, node), "MatMul");
    const double all_bf16 = class_seconds(simulate(bf16, node), "MatMul");
    node.device.fp8_linear_only = true;
    const double linear_fp8 = class_seconds(simulate(fp8, node), "MatMul");
    EXPECT_GT(linear_fp8, all_fp8);
    EXPECT_LT(linear_fp8, all_bf16);
    EXPECT_DOUBLE_EQ(class_seconds(simulate(bf16, node), "MatMul"), all_bf16);  // nothing to narrow at bf16

    const compiler::Plan mlp = compiler::make_plan("mlp", 64, compiler::Strategy{}, adamw, {}, compiler::Precision::Cfp8);
    const double mlp_linear = class_seconds(simulate(mlp, node), "MatMul");
    node.device.fp8_linear_only = false;
    EXPECT_DOUBLE_EQ(class_seconds(simulate(mlp, node), "MatMul"), mlp_linear);
}

// row_kernels = "fused" (fused softmax and LayerNorm kernels): a value passed between row-wise passes of the same
// pass of the step stays on chip. A GPT's attention scores, scaled and masked, go straight into the softmax, which
// then neither reads them nor do they get written; products, and values the backward pass reads, move as before.
// Nothing gets slower: an MLP's products are as before.
TEST(Simulate, RowKernelsKeepValuesBetweenRowWisePassesOnChip) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    Topology node = preset("dgx-h100");
    const compiler::Plan gpt = compiler::make_plan("gpt:layers=2,hidden=1024,heads=16,seq=1024,vocab=8000", 8,
                                                   compiler::Strategy{}, adamw, {}, compiler::Precision::Bf16);
    const compiler::Plan mlp = compiler::make_plan("mlp", 64, compiler::Strategy{}, adamw, {}, compiler::Precision::Bf16);
    const SimResult passes = simulate(gpt, node), mlp_passes = simulate(mlp, node);
    node.device.row_kernels_fused = true;
    const SimResult fused = simulate(gpt, node), mlp_fused = simulate(mlp, node);
    EXPECT_DOUBLE_EQ(class_seconds(fused, "MatMul"), class_seconds(passes, "MatMul"));
    EXPECT_LT(class_seconds(fused, "LogSoftmax"), 0.6 * class_seconds(passes, "LogSoftmax"));  // reads no input
    EXPECT_LT(class_seconds(fused, "FusedElementwise"), class_seconds(passes, "FusedElementwise"));
    EXPECT_EQ(class_seconds(fused, "Exp"), class_seconds(passes, "Exp"));  // its input is read again backward
    EXPECT_LT(fused.step_s, passes.step_s);
    EXPECT_LE(mlp_fused.step_s, mlp_passes.step_s);
    EXPECT_DOUBLE_EQ(class_seconds(mlp_fused, "MatMul"), class_seconds(mlp_passes, "MatMul"));
}

// attention = "fused" (FlashAttention, cuDNN's fused attention): the S x S scores and probabilities never travel to
// or from memory, forward or backward, so the stage moves at least the forward pass's writes and reads of its four
// S x S values less (the product Q K^T, the scaled and masked scores, the log-softmax, the probabilities); the
// backward kernel computes them again, which costs the Q K^T product once more (2 b S^2 h a layer) and little else.
// A model without attention times the same.
TEST(Simulate, FusedAttentionMovesNoScoresAndComputesThemAgain) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    Topology node = preset("dgx-h100");
    const double b = 8, s = 1024, h = 1024, heads = 16, layers = 2;
    const compiler::Plan gpt = compiler::make_plan("gpt:layers=2,hidden=1024,heads=16,seq=1024,vocab=8000", 8,
                                                   compiler::Strategy{}, adamw, {}, compiler::Precision::Bf16);
    const compiler::Plan mlp = compiler::make_plan("mlp", 64, compiler::Strategy{}, adamw, {}, compiler::Precision::Bf16);
    const SimResult materialised = simulate(gpt, node), mlp_materialised = simulate(mlp, node);
    node.device.attention_fused = true;
    const SimResult fused = simulate(gpt, node), mlp_fused = simulate(mlp, node);
    const StageRoofline& m = materialised.stages[0].roofline;
    const StageRoofline& f = fused.stages[0].roofline;
    const double score_bytes = 2 * b * heads * s * s;  // one S x S value over the heads, BF16
    EXPECT_GE(m.memory_bytes - f.memory_bytes, 8 * score_bytes * layers);
    const double qk_flop = 2 * b * s * s * h * layers;
    EXPECT_GE(f.flop - m.flop, qk_flop);
    EXPECT_LE(f.flop - m.flop, 1.1 * qk_flop);
    EXPECT_DOUBLE_EQ(fused.model_flops, materialised.model_flops);  // the work the model asks for is the same
    EXPECT_LT(fused.step_s, materialised.step_s);
    EXPECT_DOUBLE_EQ(mlp_fused.step_s, mlp_materialised.step_s);
}

// attention = "fused" keeps what Korthikanti et al. 2022 (arXiv 2205.05198, sec. 4.1) count for a Megatron-LM layer
// whose attention cores are recomputed (32 s b h / t here, as FusedKernelsKeepTheirInputsAsMegatronCountsALayer
// finds with recompute=selective) without recomputing anything, plus one log-sum-exp per score row (2 a s b / t,
// under the tolerance here): no S x S value is kept. Materialised attention keeps at least the probabilities.
TEST(Simulate, FusedAttentionKeepsNoScoresWithoutRecomputation) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    Topology node = preset("dgx-h100");
    node.device.keeps_kernel_inputs = true;
    const double s = 256, b = 2, h = 512, heads = 8, t = 2;
    auto activations = [&](int layers, bool fused) {
        node.device.attention_fused = fused;
        const std::string gpt = "gpt:layers=" + std::to_string(layers) + ",hidden=512,heads=8,seq=256,vocab=8000";
        const compiler::Plan p = compiler::make_plan(gpt, 2, compiler::parse_strategy("tp=2,sp=1"), adamw, {},
                                                     compiler::Precision::Bf16);
        EXPECT_FALSE(p.strategy.recompute);
        return simulate(p, node, "bf16").stages[0].memory.activations_bytes;
    };
    const double layer = activations(4, true) - activations(3, true);
    EXPECT_NEAR(layer, 32 * s * b * h / t + 2 * 12 * h * h / t + 2 * heads * s * b / t, 0.01 * layer);
    EXPECT_GE(activations(4, false) - activations(3, false) - layer, 2 * heads * s * s * b / t);
}

// fp8_operands = "k_major" (the H100's kind: cuBLASLt's FP8 GEMMs take only the TN layout): each Linear layer's
// weight (for the forward product), input and output gradient (for the weight gradient) are copied, transposed, in
// FP8 before a product reads them: 1 byte read and 1 written per element. The input gradient's product reads the
// weight's transpose and the output gradient as they lie, K-major already. The MLP's first layer has no input
// gradient. The FP8 weights and their copies serve every micro-batch of a step: two micro-batches copy the
// activations twice and the weights once. Nothing is copied in BF16, nor on an A100, whose cfp8 runs as BF16.
TEST(Simulate, Fp8ProductsOnHopperCopyOperandsThatAreNotKMajor) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    auto memory_bytes = [&](const std::string& machine, compiler::Precision precision, bool k_major, int mb = 1) {
        Topology node = preset(machine);
        EXPECT_EQ(node.device.fp8_operands_k_major, machine == "dgx-h100");
        node.device.fp8_operands_k_major = k_major;
        const compiler::Plan p =
            compiler::make_plan("mlp:hidden=256", 64 * mb, compiler::Strategy{1, 1, 1, mb}, adamw, {}, precision);
        return simulate(p, node).stages[0].roofline.memory_bytes;
    };
    const double n = 64, in = 784, hidden = 256, classes = 10;
    const double weights = in * hidden + hidden * classes;
    const double activations = (n * in + n * hidden) + (n * hidden + n * classes);
    for (const int mb : {1, 2}) {
        EXPECT_NEAR(memory_bytes("dgx-h100", compiler::Precision::Cfp8, true, mb) -
                        memory_bytes("dgx-h100", compiler::Precision::Cfp8, false, mb),
                    2 * (weights + mb * activations), 1e-9 * weights) << mb << " micro-batches";
    }
    EXPECT_DOUBLE_EQ(memory_bytes("dgx-h100", compiler::Precision::Bf16, true),
                     memory_bytes("dgx-h100", compiler::Precision::Bf16, false));
    EXPECT_DOUBLE_EQ(memory_bytes("dgx-a100", compiler::Precision::Cfp8, true),
                     memory_bytes("dgx-a100", compiler::Precision::Cfp8, false));
}

// parameter_gather = "overlapped" (a distributed optimizer's overlap_param_sync): with zero=1 the gather of the
// updated parameters runs while the next step's first forward pass computes with the buckets that arrived; the
// step waits for the first bucket and for what the gather takes beyond that forward pass, no less.
TEST(Simulate, OverlappedParameterGatherHidesBehindTheNextForwardPass) {
    Topology node = preset("dgx-h100");
    compiler::Strategy sharded{4, 1, 1, 1};
    sharded.zero = true;
    const compiler::Plan plan =
        compiler::make_plan("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 32, sharded, autodiff::AdamWConfig{});
    const SimResult after = simulate(plan, node);
    node.device.parameter_gather_overlapped = true;
    const SimResult overlapped = simulate(plan, node);
    const StageTime& a = after.stages[0];
    const StageTime& b = overlapped.stages[0];
    EXPECT_DOUBLE_EQ(a.param_allgather_exposed_s, a.param_allgather_s);
    EXPECT_DOUBLE_EQ(b.param_allgather_s, a.param_allgather_s);
    EXPECT_GT(b.param_allgather_exposed_s, 0.0);
    EXPECT_LT(b.param_allgather_exposed_s, b.param_allgather_s);
    EXPECT_GE(b.param_allgather_exposed_s, b.param_allgather_s - b.forward_s - 1e-15);
    EXPECT_NEAR(overlapped.step_s, after.step_s - (b.param_allgather_s - b.param_allgather_exposed_s),
                1e-12 * after.step_s);
    double seconds = 0;
    for (const CriticalItem& item : overlapped.critical_path) {
        seconds += item.seconds;
    }
    EXPECT_NEAR(seconds, overlapped.step_s, 1e-9 * overlapped.step_s);

    compiler::Strategy replicated{4, 1, 1, 1};  // nothing sharded, nothing to gather
    const SimResult plain = simulate(compiler::make_plan("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 32,
                                                         replicated, autodiff::AdamWConfig{}),
                                     node);
    EXPECT_EQ(plain.stages[0].param_allgather_exposed_s, 0.0);
}

// Interleaved (vp chunks per device), a chunk's gradients are final when its own last backward task ends, and the
// schedule runs the later chunks' last micro-batch well before the first chunk's: their buckets reduce while the
// device still computes, so less of the data-parallel reduction is left after the backward pass than with one
// chunk. The reduction moves the same bytes either way.
TEST(Simulate, InterleavedChunksReduceTheirGradientsAsSoonAsTheyAreFinal) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const std::string gpt = "gpt:layers=16,hidden=1024,heads=16,seq=512,vocab=8000";
    const Topology pod = preset("superpod-a100:nodes=2");
    auto run = [&](const std::string& strategy) {
        return simulate(compiler::make_plan(gpt, 64, compiler::parse_strategy(strategy), adamw), pod, "bf16");
    };
    const SimResult one = run("dp=4,pp=4,mb=8"), four = run("dp=4,pp=4,mb=8,vp=4");
    double exposed_one = 0, exposed_four = 0;
    for (std::size_t s = 0; s < 4; ++s) {
        EXPECT_NEAR(four.stages[s].grad_allreduce_s, one.stages[s].grad_allreduce_s,
                    1e-9 * one.stages[s].grad_allreduce_s);
        EXPECT_GT(one.stages[s].grad_allreduce_exposed_s, 0.0) << s;
        // The first layers' bucket is final last either way: no stage waits less than for it, nor more than with
        // one chunk.
        EXPECT_GT(four.stages[s].grad_allreduce_exposed_s, 0.0) << s;
        EXPECT_LE(four.stages[s].grad_allreduce_exposed_s, one.stages[s].grad_allreduce_exposed_s + 1e-12) << s;
        exposed_one += one.stages[s].grad_allreduce_exposed_s;
        exposed_four += four.stages[s].grad_allreduce_exposed_s;
    }
    EXPECT_LT(exposed_four, 0.75 * exposed_one);
    double on_path = 0;
    for (const CriticalItem& item : four.critical_path) {
        on_path += item.seconds;
    }
    EXPECT_NEAR(on_path, four.step_s, 1e-9 * four.step_s);
}

// sp=1 on a GPT split over tp: less activation memory and less work per device, the same tensor-parallel
// communication; the search uses it on every tensor-parallel split of a token model.
TEST(Simulate, SequenceParallelismDividesActivationsAndTheirWorkNotTheCommunication) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology node = preset("dgx-h100");
    const std::string gpt = "gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000";
    compiler::Strategy split{1, 4, 2, 4};
    const SimResult a = simulate(compiler::make_plan(gpt, 16, split, adamw), node, "bf16");
    split.sp = true;
    const SimResult b = simulate(compiler::make_plan(gpt, 16, split, adamw), node, "bf16");
    for (std::size_t s = 0; s < 2; ++s) {
        EXPECT_LT(b.stages[s].memory.activations_bytes, 0.75 * a.stages[s].memory.activations_bytes) << s;
        EXPECT_DOUBLE_EQ(b.stages[s].memory.parameters_bytes, a.stages[s].memory.parameters_bytes);
        EXPECT_LT(b.stages[s].forward_s + b.stages[s].backward_s, a.stages[s].forward_s + a.stages[s].backward_s);
        EXPECT_DOUBLE_EQ(b.stages[s].tensor_comm_s, a.stages[s].tensor_comm_s);
    }
    EXPECT_LT(b.step_s, a.step_s);
    EXPECT_THROW(compiler::make_plan("mlp", 16, compiler::parse_strategy("tp=2,sp=1"), adamw), UsageError);
    EXPECT_THROW(compiler::make_plan(gpt, 16, compiler::parse_strategy("dp=2,sp=1"), adamw), UsageError);
    for (const SimResult& r : search_strategies(gpt, 16, node, compiler::Precision::Bf16, adamw)) {
        EXPECT_EQ(r.strategy.sp, r.strategy.tp > 1) << r.strategy.to_string();
    }
}

// Where everything does not fit in SRAM but the activations and a 16-bit copy of the parameters do, the forward
// and backward passes read the copy at SRAM speed; without room for the copy they read the weights from HBM.
TEST(Simulate, AWorkingCopyOfTheWeightsInSramKeepsTheirReadsOnChip) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const compiler::Plan plan = compiler::make_plan("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 8,
                                                    compiler::Strategy{1, 5, 1, 1}, adamw);
    Topology topology = preset("v1-matrix");
    const SimResult on_chip = simulate(plan, topology, "bf16");
    const MemoryUse& m = on_chip.stages[0].memory;
    ASSERT_EQ(m.weights_level, "SRAM");
    const double copy = 0.5 * m.parameters_bytes;
    topology.device.local_bytes = m.activations_bytes + copy + 1e3;
    const SimResult copied = simulate(plan, topology, "bf16");
    topology.device.local_bytes = m.activations_bytes + copy / 2;
    const SimResult streamed = simulate(plan, topology, "bf16");
    const MemoryUse& a = copied.stages[0].memory;
    const MemoryUse& b = streamed.stages[0].memory;
    EXPECT_EQ(a.weights_level, "HBM");
    EXPECT_EQ(a.activations_level, "SRAM");
    EXPECT_DOUBLE_EQ(a.working_copy_bytes, copy);
    EXPECT_EQ(b.weights_level, "HBM");
    EXPECT_EQ(b.activations_level, "SRAM");
    EXPECT_EQ(b.working_copy_bytes, 0.0);
    EXPECT_LT(copied.stages[0].forward_s, streamed.stages[0].forward_s);
    EXPECT_LT(copied.stages[0].backward_s, streamed.stages[0].backward_s);
    EXPECT_GT(copied.stages[0].optimizer_s, streamed.stages[0].optimizer_s);  // the update refreshes the copy
    EXPECT_NEAR(copied.stages[0].forward_s, on_chip.stages[0].forward_s, 1e-9 * on_chip.stages[0].forward_s);
}

// Where no split fits, the search tries the memory savings: GPT-2 small on one tile fits only with recomputation, and
// the same split without it does not.
TEST(Simulate, SearchTurnsToMemorySavingsWhereNoSplitFits) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const Topology tile = preset("tile");
    const std::vector<SimResult> results = search_strategies("gpt", 8, tile, compiler::Precision::Bf16, adamw);
    ASSERT_FALSE(results.empty());
    const SimResult& best = results.front();
    ASSERT_TRUE(best.fits) << best.strategy.to_string();
    EXPECT_TRUE(best.strategy.zero || best.strategy.recompute) << best.strategy.to_string();
    compiler::Strategy plain = best.strategy;
    plain.zero = plain.recompute = false;
    const SimResult without = simulate(compiler::make_plan("gpt", 8, plain, adamw), tile, "bf16");
    EXPECT_FALSE(without.fits) << plain.to_string();
    EXPECT_LT(without.step_s, best.step_s);  // the saving costs time: it is there only because it is needed
}

// The search leaves out only splits that cannot fit whatever they save: each one it did not simulate, simulated
// here with every saving (sharded optimizer state and full recomputation), still does not fit. Where no split fits
// at all, it leaves out none: the fastest of all is the answer.
TEST(Simulate, SearchSkipsOnlySplitsWhoseWeightsCannotFit) {
    const autodiff::OptimizerConfig adamw = autodiff::AdamWConfig{};
    const std::string gpt = "gpt:layers=48,hidden=2048,heads=16,seq=512,vocab=8000";
    const Topology dips = preset("tile-dips");
    std::size_t skipped = 0;
    const std::vector<SimResult> results =
        search_strategies(gpt, 16, dips, compiler::Precision::Bf16, adamw, std::size_t{8} << 20, 4, &skipped);
    ASSERT_FALSE(results.empty());
    EXPECT_TRUE(results.front().fits);
    EXPECT_GE(skipped, 1u);
    std::size_t unsimulated = 0;
    for (compiler::Strategy split : candidate_splits(dips, 16)) {
        const bool simulated = std::any_of(results.begin(), results.end(), [&](const SimResult& r) {
            return r.strategy.dp == split.dp && r.strategy.tp == split.tp && r.strategy.pp == split.pp;
        });
        if (simulated) {
            continue;
        }
        ++unsimulated;
        split.sp = split.tp > 1;
        split.zero = split.dp > 1;
        split.recompute = true;
        const SimResult saving = simulate(
            compiler::make_plan(gpt, 16, split, adamw, stage_cost(dips.device, compiler::Precision::Bf16),
                                compiler::Precision::Bf16),
            dips);
        EXPECT_FALSE(saving.fits) << split.to_string();
    }
    EXPECT_EQ(unsimulated, skipped);
    std::size_t none_fit_skipped = 1;
    const Topology tile = preset("tile");
    const std::vector<SimResult> all =
        search_strategies(gpt, 16, tile, compiler::Precision::Bf16, adamw, std::size_t{8} << 20, 4, &none_fit_skipped);
    ASSERT_FALSE(all.empty());
    EXPECT_FALSE(all.front().fits);
    EXPECT_EQ(none_fit_skipped, 0u);
    EXPECT_GE(all.size(), candidate_splits(tile, 16).size());
}

}  // namespace
}  // namespace dojo::sim

namespace dojo::sim {
namespace {

// The step at a precision holds the policy's rounding nodes, and the simulator times them as the device runs them:
// a pass over memory on a CPU host (format_conversion = "pass"), nothing of their own on Dojo (producers store the
// narrow format); RoundGrad's forward is the identity everywhere.
TEST(Simulate, RoundingNodesAreTimedAsTheDeviceRunsThem) {
    const autodiff::OptimizerConfig sgd = autodiff::SgdConfig{};
    const Topology host = preset("dev-vm:ranks_per_host=1,cores_per_rank=2");
    const Topology d1 = preset("d1");
    ASSERT_FALSE(host.device.rounds_on_store);
    ASSERT_TRUE(d1.device.rounds_on_store);
    const compiler::Plan bf16 = compiler::make_plan("lenet", 64, compiler::Strategy{}, sgd, {}, compiler::Precision::Bf16);
    std::size_t round_to = 0;
    for (std::uint32_t i = 0; i < bf16.step.graph.size(); ++i) {
        const ir::OpKind op = bf16.step.graph.node(NodeId{i}).op;
        const double on_host = op_time(bf16.step.graph, NodeId{i}, host.device, bf16.precision, 1, false,
                                       host.device.memory_bandwidth).seconds;
        const double on_d1 = op_time(bf16.step.graph, NodeId{i}, d1.device, bf16.precision, 1, false,
                                     d1.device.local_bandwidth).seconds;
        if (op == ir::OpKind::RoundTo) {
            ++round_to;
            EXPECT_GT(on_host, 0.0);
            EXPECT_EQ(on_d1, 0.0);
        } else if (op == ir::OpKind::RoundGrad) {
            EXPECT_EQ(on_host, 0.0);
            EXPECT_EQ(on_d1, 0.0);
        }
    }
    EXPECT_GT(round_to, 10u);
    const SimResult r = simulate(bf16, host);
    EXPECT_EQ(r.precision, "bf16");
    const auto rounding = std::find_if(r.ops.begin(), r.ops.end(), [](const OpClassTime& c) { return c.op == "RoundTo"; });
    ASSERT_NE(rounding, r.ops.end());
    EXPECT_GT(rounding->seconds, 0.0);
    // On Dojo the same roundings take no time of their own.
    const SimResult on_d1 = simulate(bf16, d1);
    const auto none = std::find_if(on_d1.ops.begin(), on_d1.ops.end(), [](const OpClassTime& c) { return c.op == "RoundTo"; });
    ASSERT_NE(none, on_d1.ops.end());
    EXPECT_EQ(none->seconds, 0.0);
}

}  // namespace
}  // namespace dojo::sim

namespace dojo::sim {
namespace {

// A CPU host's ops move data at the rate of what runs them: a map whose bytes fit the cache at the cache's rate, one
// that does not at the memory's, a transpose (the reference kernel's plain loops) at the reference kernels' rate.
TEST(OpTime, ACpuHostTimesEachOpAtTheRateOfTheKernelThatRunsIt) {
    const Device cpu = preset("dev-vm").device;
    ir::Graph g;
    const NodeId small = g.add_input("small", {ir::DType::F32, ir::Shape({1024, 256})});    // 1 MiB
    const NodeId large = g.add_input("large", {ir::DType::F32, ir::Shape({4096, 4096})});  // 64 MiB
    const NodeId small_map = ir::relu(g, small);
    const NodeId large_map = ir::relu(g, large);
    const NodeId transposed = ir::transpose(g, small, {1, 0});
    const auto time = [&](NodeId id) {
        return op_time(g, id, cpu, compiler::Precision::Fp32, 1, false, cpu.memory_bandwidth);
    };
    EXPECT_DOUBLE_EQ(time(small_map).memory_s, 2.0 * 1024 * 256 * 4 / cpu.cache_bandwidth);
    EXPECT_DOUBLE_EQ(time(large_map).memory_s, 2.0 * 4096 * 4096 * 4 / cpu.memory_bandwidth);
    EXPECT_DOUBLE_EQ(time(transposed).memory_s, 2.0 * 1024 * 256 * 4 / cpu.reference_bandwidth);
    EXPECT_TRUE(runs_reference(ir::OpKind::Transpose));
    EXPECT_FALSE(runs_reference(ir::OpKind::MatMul));
    EXPECT_FALSE(runs_reference(ir::OpKind::Relu));
    // A GPU states neither: the roofline at its memory's rate.
    const Device gpu = preset("dgx-a100").device;
    EXPECT_DOUBLE_EQ(op_time(g, transposed, gpu, compiler::Precision::Fp32, 1, false, gpu.memory_bandwidth).memory_s,
                     2.0 * 1024 * 256 * 4 / gpu.memory_bandwidth);
}

}  // namespace
}  // namespace dojo::sim
