// Channel-blocked activations (runtime/channel_blocked.h): fused groups in the blocked order, and an executor that
// keeps a network's activations blocked, give the same bits as the plain layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <fstream>
#include <random>
#include <string>

#include "dojo/autodiff/grad.h"
#include "dojo/autodiff/loss.h"
#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/frontend/catalog.h"
#include "dojo/ir/builder.h"
#include "dojo/runtime/channel_blocked.h"
#include "dojo/runtime/executor.h"
#include "dojo/runtime/fused_elementwise.h"
#include "dojo/runtime/max_pool.h"
#include "dojo/runtime/round_channel_blocked.h"
#include "dojo/runtime/round_to_bf16_copy.h"
#include "max_pool_cases.h"
#include "dojo/ir/rounding.h"
#include "dojo/numerics/bias.h"
#include "dojo/compiler/precision_policy.h"

namespace dojo {
namespace {

using ir::NodeId;
using runtime::channel_blocked_offset;

std::vector<float> to_blocked(const std::vector<float>& plain, const ir::Shape& shape) {
    std::vector<float> blocked(plain.size());
    for (std::size_t i = 0; i < plain.size(); ++i) {
        blocked[static_cast<std::size_t>(
            channel_blocked_offset(static_cast<std::int64_t>(i), shape[1], shape[2] * shape[3]))] = plain[i];
    }
    return blocked;
}

void expect_same_bits(std::span<const float> a, std::span<const float> b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (std::size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(float)), 0) << what << " element " << i << ": " << a[i] << " vs "
                                                                << b[i];
    }
}

TEST(ChannelBlocked, OffsetsPlaceSixteenChannelsSideBySide) {
    // [2, 32, 2, 3]: plane 6, two channel blocks.
    EXPECT_EQ(channel_blocked_offset(0, 32, 6), 0);
    EXPECT_EQ(channel_blocked_offset(1, 32, 6), 16);       // the next pixel of channel 0
    EXPECT_EQ(channel_blocked_offset(6, 32, 6), 1);        // channel 1's first pixel
    EXPECT_EQ(channel_blocked_offset(16 * 6, 32, 6), 96);  // channel 16 opens the second block
    EXPECT_EQ(channel_blocked_offset(32 * 6, 32, 6), 192); // the second sample
    EXPECT_TRUE(runtime::can_store_channel_blocked(ir::Shape{2, 32, 2, 3}));
    EXPECT_FALSE(runtime::can_store_channel_blocked(ir::Shape{2, 24, 2, 3}));
    EXPECT_FALSE(runtime::can_store_channel_blocked(ir::Shape{32, 6}));
}

// A BatchNorm's statistics and normalisation in one group, with per-channel, per-sample-and-channel and scalar
// operands, on planes of 63 pixels (RowSum's lanes and a tail of 7), NaN and an infinity included: blocked or
// plain, the same bits in every output.
TEST(ChannelBlocked, FusedGroupInTheBlockedOrderGivesThePlainBits) {
    const ir::Shape activation{3, 32, 7, 9};
    ir::Graph g;
    const NodeId x = g.add_input("x", {ir::DType::F32, activation});
    const NodeId mean = g.add_input("mean", {ir::DType::F32, ir::Shape{1, 32, 1, 1}});
    const NodeId gate = g.add_input("gate", {ir::DType::F32, ir::Shape{3, 32, 1, 1}});
    const NodeId scale = g.add_input("scale", {ir::DType::F32, ir::Shape{}});
    const NodeId centred = ir::sub(g, x, mean);
    const NodeId squares = ir::mul(g, centred, centred);
    const NodeId y = ir::relu(g, ir::add(g, ir::mul(g, ir::mul(g, centred, gate), scale), squares));
    g.mark_output(centred);
    g.mark_output(y);
    g.mark_output(ir::reduce_sum(g, squares, {0, 2, 3}));
    g.mark_output(ir::reduce_sum(g, y, {2, 3}));
    const std::vector<bool> live(g.size(), true);
    std::vector<bool> kept(g.size(), false);
    for (const NodeId out : g.outputs()) {
        kept[out.index] = true;
    }
    const std::vector<compiler::FusionGroup> groups = compiler::find_fusion_groups(g, live, kept);
    ASSERT_EQ(groups.size(), 1u);
    ASSERT_TRUE(runtime::FusedElementwise::can_run_blocked(g, groups[0]));
    std::vector<bool> blocked(g.size(), false);
    blocked[x.index] = blocked[centred.index] = blocked[y.index] = true;
    const runtime::FusedElementwise plain_group(g, groups[0]);
    const runtime::FusedElementwise blocked_group(g, groups[0], blocked);

    std::vector<ir::Buffer<float>> plain, in_blocks;
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Shape& shape = g.type(NodeId{i}).shape;
        std::vector<float> values(static_cast<std::size_t>(shape.numel()));
        if (g.node(NodeId{i}).op == ir::OpKind::Input) {
            for (float& v : values) {
                v = normal(rng);
            }
        }
        if (i == x.index) {
            values[7] = std::numeric_limits<float>::quiet_NaN();
            values[500] = std::numeric_limits<float>::infinity();
        }
        plain.emplace_back(shape, values);
        in_blocks.emplace_back(shape, blocked[i] ? to_blocked(values, shape) : values);
    }
    plain_group.run(plain);
    blocked_group.run(in_blocks);
    for (const NodeId out : g.outputs()) {
        const std::vector<float> want(plain[out.index].data.begin(), plain[out.index].data.end());
        const std::vector<float> expected = blocked[out.index] ? to_blocked(want, g.type(out).shape) : want;
        expect_same_bits(in_blocks[out.index].data, expected, g.describe(out));
    }
}

// A group measures the max-abs of the members it is asked to as it writes them, in either order, on several
// threads: numerics::max_abs's value for the tensor it wrote, an infinity and a NaN included, and again each run.
TEST(ChannelBlocked, FusedGroupMeasuresTheMaxAbsOfWhatItWrites) {
    const ir::Shape activation{4, 32, 20, 21};  // 53760 elements: a chunk per thread
    ir::Graph g;
    const NodeId x = g.add_input("x", {ir::DType::F32, activation});
    const NodeId scale = g.add_input("scale", {ir::DType::F32, ir::Shape{1, 32, 1, 1}});
    const NodeId y = ir::relu(g, ir::mul(g, x, scale));
    const NodeId z = ir::neg(g, ir::mul(g, y, y));
    g.mark_output(y);
    g.mark_output(z);
    const std::vector<bool> live(g.size(), true);
    std::vector<bool> kept(g.size(), false);
    kept[y.index] = kept[z.index] = true;
    const std::vector<compiler::FusionGroup> groups = compiler::find_fusion_groups(g, live, kept);
    ASSERT_EQ(groups.size(), 1u);
    std::vector<bool> blocked(g.size(), false);
    blocked[x.index] = blocked[y.index] = blocked[z.index] = true;
    for (const bool in_blocks : {false, true}) {
        runtime::FusedElementwise group(g, groups[0], in_blocks ? blocked : std::vector<bool>{});
        group.track_max_abs(y);
        group.track_max_abs(z);
        std::vector<ir::Buffer<float>> values;
        for (std::uint32_t i = 0; i < g.size(); ++i) {
            values.emplace_back(g.type(NodeId{i}).shape,
                                std::vector<float>(static_cast<std::size_t>(g.type(NodeId{i}).shape.numel())));
        }
        std::mt19937 rng(4);
        std::normal_distribution<float> normal(0.0f, 3.0f);
        constexpr float kInf = std::numeric_limits<float>::infinity();
        for (const float odd : {1.0f, kInf, std::numeric_limits<float>::quiet_NaN()}) {
            for (float& v : values[x.index].data) {
                v = normal(rng);
            }
            for (float& v : values[scale.index].data) {
                v = normal(rng);
            }
            values[x.index].data[40000] = odd;
            values[scale.index].data[values[scale.index].data.size() - 1] = 1.0f;
            group.run(values);
            for (const NodeId m : {y, z}) {
                const float want = numerics::max_abs(values[m.index].data);
                const float got = group.max_abs(m);
                EXPECT_EQ(std::memcmp(&want, &got, sizeof want), 0)
                    << (in_blocks ? "blocked " : "plain ") << g.describe(m) << " with " << odd << ": " << got
                    << " vs " << want;
            }
        }
    }
}

// Max-pooling in the blocked layout, forward and backward, gives the plain kernels' bits at the blocked places (the
// plain ones give the reference's: runtime_test): windows inside and at every edge, padding, ties between equal
// values and between +0 and -0, -inf, overlapping windows, two channel blocks and two samples; with NaNs (the full
// rule) and without (the fast scan); the backward pass in its portable and, where the CPU has it, AVX-512 code.
TEST(ChannelBlocked, MaxPoolGivesThePlainBits) {
    for (const testing::MaxPoolCase& c : testing::max_pool_cases()) {
        for (const bool with_nans : {true, false}) {
            SCOPED_TRACE(c.x.to_string() + (with_nans ? " with NaNs" : " without NaNs"));
            ir::Graph g;
            const NodeId x = g.add_input("x", {ir::DType::F32, c.x});
            const ir::Shape& y_shape = g.type(g.add(ir::OpKind::MaxPool2d, c.attrs, {x})).shape;
            const std::vector<float> xs =
                testing::max_pool_inputs(static_cast<std::size_t>(c.x.numel()), 5, with_nans);
            const std::vector<float> dys = testing::max_pool_gradients(static_cast<std::size_t>(y_shape.numel()));
            std::vector<float> ys(dys.size());
            std::vector<float> dxs(xs.size());
            runtime::max_pool(c.attrs, c.x, y_shape, xs.data(), ys.data());
            runtime::max_pool_backward(c.attrs, c.x, y_shape, xs.data(), dys.data(), dxs.data());
            const std::vector<float> xs_blocked = to_blocked(xs, c.x);
            const std::vector<float> dys_blocked = to_blocked(dys, y_shape);
            std::vector<float> ys_blocked(ys.size(), 7.0f);
            runtime::max_pool_channel_blocked(c.attrs, c.x, y_shape, xs_blocked.data(), ys_blocked.data());
            expect_same_bits(ys_blocked, to_blocked(ys, y_shape), "forward");
            for (const numerics::Isa isa : {numerics::Isa::Portable, numerics::Isa::Avx512}) {
                if (!numerics::isa_available(isa)) {
                    continue;
                }
                std::vector<float> dxs_blocked(dxs.size(), 7.0f);  // not zero: every element is written
                runtime::max_pool_backward_channel_blocked(c.attrs, c.x, y_shape, xs_blocked.data(),
                                                           dys_blocked.data(), dxs_blocked.data(), isa);
                expect_same_bits(dxs_blocked, to_blocked(dxs, c.x),
                                 "backward, " + std::string(numerics::to_string(isa)));
            }
        }
    }
}

// A tensor of `shape` drawn from N(0, 3^2): rounding inputs spread over several binades.
std::vector<float> normal_values(const ir::Shape& shape, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> xs(static_cast<std::size_t>(shape.numel()));
    for (float& v : xs) {
        v = normal(rng);
    }
    return xs;
}

// RoundTo on a blocked tensor gives RoundTo's bits at the blocked places: CFloat8 with a per-tensor bias, nearest
// and stochastic (whose draws follow the plain position), BF16 nearest; planes of 35 pixels, three samples, two
// channel blocks; a NaN-free tensor and, for the nearest rounding, one with an infinity (copied unchanged).
TEST(ChannelBlocked, RoundToGivesThePlainBits) {
    const ir::Shape shape{3, 32, 5, 7};
    const std::vector<float> xs = normal_values(shape, 11);
    const ir::RoundAttrs cases[] = {
        {numerics::FormatKind::Cfp8_143, numerics::Rounding::NearestEven, 0.0, 3, 7},
        {numerics::FormatKind::Cfp8_152, numerics::Rounding::Stochastic, 0.0, 3, 8},
        {numerics::FormatKind::Cfp8_152, numerics::Rounding::Stochastic, 1.0, 4, 9},
        {numerics::FormatKind::Bf16, numerics::Rounding::NearestEven, 0.0, 0, 1},
    };
    for (const ir::RoundAttrs& attrs : cases) {
        for (const bool with_inf : {false, true}) {
            SCOPED_TRACE("tensor " + std::to_string(attrs.tensor_id) + (with_inf ? " with inf" : ""));
            std::vector<float> x = xs;
            if (with_inf) {
                x[100] = std::numeric_limits<float>::infinity();
            }
            std::vector<float> plain(x.size());
            ir::round_piece(attrs, 6.0, x, plain, numerics::max_abs(x), 0);
            const std::vector<float> x_blocked = to_blocked(x, shape);
            std::vector<float> y_blocked(x.size(), 7.0f);
            runtime::round_channel_blocked(attrs, 6.0, shape, x_blocked.data(), y_blocked.data(),
                                           numerics::max_abs(x_blocked));
            expect_same_bits(y_blocked, to_blocked(plain, shape), "rounded");
            if (!with_inf || attrs.format == numerics::FormatKind::Bf16) {  // else copied: an overflowed tensor
                EXPECT_NE(std::memcmp(plain.data(), x.data(), 4 * x.size()), 0);
            }
        }
    }
}

// A CFloat8 or BF16 rounding written as BF16 gives the rounded values' BF16 patterns, element for element in its
// layout: blocked and plain, nearest and stochastic (drawn at the plain position); a CFloat8 rounding of a tensor with
// an infinity (passed on unrounded by RoundTo: no bias from its max-abs) is refused, the copy untouched.
TEST(ChannelBlocked, RoundToBf16CopyGivesTheRoundedValuesAsBf16) {
    const ir::Shape shape{3, 32, 5, 7};
    const std::vector<float> xs = normal_values(shape, 12);
    const ir::RoundAttrs cases[] = {
        {numerics::FormatKind::Cfp8_143, numerics::Rounding::NearestEven, 0.0, 3, 7},
        {numerics::FormatKind::Cfp8_152, numerics::Rounding::Stochastic, 0.0, 3, 8},
        {numerics::FormatKind::Bf16, numerics::Rounding::NearestEven, 0.0, 3, 9},
    };
    EXPECT_FALSE(runtime::rounds_exactly_into_bf16({numerics::FormatKind::Shp, numerics::Rounding::NearestEven,
                                                    0.0, 0, 1}));
    EXPECT_FALSE(runtime::rounds_exactly_into_bf16({numerics::FormatKind::Bf16, numerics::Rounding::Stochastic,
                                                    0.0, 0, 1}));
    for (const ir::RoundAttrs& attrs : cases) {
        ASSERT_TRUE(runtime::rounds_exactly_into_bf16(attrs));
        for (const bool blocked : {false, true}) {
            SCOPED_TRACE(std::string(blocked ? "blocked" : "plain") + ", tensor " + std::to_string(attrs.tensor_id));
            const std::vector<float> x = blocked ? to_blocked(xs, shape) : xs;
            std::vector<float> rounded(x.size());
            if (blocked) {
                runtime::round_channel_blocked(attrs, 6.0, shape, x.data(), rounded.data(), numerics::max_abs(x));
            } else {
                ir::round_piece(attrs, 6.0, x, rounded, numerics::max_abs(x), 0);
            }
            std::vector<std::uint16_t> copy(x.size(), 0x5555);
            ASSERT_TRUE(runtime::round_to_bf16_copy(attrs, 6.0, shape, blocked, x.data(), copy.data(),
                                                    numerics::max_abs(x)));
            std::vector<float> widened(copy.size());
            for (std::size_t i = 0; i < copy.size(); ++i) {
                widened[i] = std::bit_cast<float>(std::uint32_t{copy[i]} << 16);
            }
            expect_same_bits(widened, rounded, "BF16 copy");
            std::vector<float> with_inf = x;
            with_inf[17] = std::numeric_limits<float>::infinity();
            std::vector<std::uint16_t> untouched(x.size(), 0x5555);
            const bool bias_from_max_abs = attrs.format != numerics::FormatKind::Bf16;
            EXPECT_EQ(runtime::round_to_bf16_copy(attrs, 6.0, shape, blocked, with_inf.data(), untouched.data(),
                                                  numerics::max_abs(with_inf)),
                      !bias_from_max_abs);  // BF16 rounds an infinity to itself
            EXPECT_EQ(std::all_of(untouched.begin(), untouched.end(), [](std::uint16_t b) { return b == 0x5555; }),
                      bias_from_max_abs);
        }
    }
}

// Whether oneDNN's BF16 convolutions run here (AVX512-BF16), so that CFloat8 roundings can write their BF16 copies.
bool cpu_has_avx512_bf16() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.starts_with("flags")) {
            return line.find(" avx512_bf16") != std::string::npos;
        }
    }
    return false;
}

// Two executors of one graph: one whose roundings write their readers' BF16 copies, one where oneDNN's reorders make
// them; fill() gives both the same normal values.
struct CopiesAndReorders {
    runtime::Executor copies;
    runtime::Executor reorders;
    explicit CopiesAndReorders(const ir::Graph& g) : copies(g), reorders(g, without_copies()) {}
    static runtime::ExecutorOptions without_copies() {
        runtime::ExecutorOptions options;
        options.bf16_copies = false;
        return options;
    }
    // `leaves` are inputs, or roundings of inputs (whose inputs are filled).
    void fill(const ir::Graph& g, const std::vector<NodeId>& leaves, std::mt19937& rng) {
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (const NodeId leaf : leaves) {
            const NodeId input = g.node(leaf).op == ir::OpKind::RoundTo ? g.node(leaf).inputs[0] : leaf;
            for (float& v : copies.value(input).data) {
                v = normal(rng);
            }
            std::copy(copies.value(input).data.begin(), copies.value(input).data.end(),
                      reorders.value(input).data.begin());
        }
    }
};

// A rounding's BF16 copy is written when the rounding runs, before its readers: its bytes must not be shared with
// another copy made in between. Here r1 is rounded, then rz is rounded and read by two convolutions, then r1 is
// read by two more (3 channels: the convolutions read their inputs plain, so both roundings write their copies); the
// outputs equal those of the same executor with the copies made by oneDNN's reorders.
TEST(ChannelBlocked, Bf16CopyKeepsItsBytesUntilItsReadersRun) {
    ir::Graph g;
    const NodeId step = g.add_input("step", {ir::DType::F32, ir::Shape{1}});
    const ir::Shape image{2, 3, 16, 16};
    const NodeId x1 = g.add_input("x1", {ir::DType::F32, image});
    const NodeId x2 = g.add_input("x2", {ir::DType::F32, image});
    std::vector<NodeId> weights;
    for (std::uint32_t k = 0; k < 4; ++k) {
        const NodeId w = g.add_input("w" + std::to_string(k), {ir::DType::F32, ir::Shape{16, 3, 3, 3}});
        weights.push_back(ir::round_to(g, w, step, {numerics::FormatKind::Cfp8_143, numerics::Rounding::NearestEven,
                                                    0.0, 1, 10 + k}));
    }
    const ir::RoundAttrs activation{numerics::FormatKind::Cfp8_143, numerics::Rounding::NearestEven, 0.0, 1, 1};
    const NodeId r1 = ir::round_to(g, x1, step, activation);
    ir::RoundAttrs other = activation;
    other.tensor_id = 2;
    const NodeId rz = ir::round_to(g, x2, step, other);
    const ir::Conv2dAttrs same{{1, 1}, {1, 1, 1, 1}, {1, 1}, 1};
    g.mark_output(ir::conv2d(g, rz, weights[0], same));
    g.mark_output(ir::conv2d(g, rz, weights[1], same));
    g.mark_output(ir::conv2d(g, r1, weights[2], same));
    g.mark_output(ir::conv2d(g, r1, weights[3], same));
    CopiesAndReorders e(g);
    if (cpu_has_avx512_bf16()) {
        EXPECT_EQ(e.copies.bf16_copy_count(), 2u);
    }
    std::mt19937 rng(3);
    e.fill(g, {x1, x2, weights[0], weights[1], weights[2], weights[3]}, rng);
    e.copies.run();
    e.reorders.run();
    for (const NodeId out : g.outputs()) {
        expect_same_bits(e.copies.value(out).data, e.reorders.value(out).data, g.describe(out));
    }
}

// A product reads each of its rounded operands alone, as BF16 in the operand's own layout: each rounding writes that
// BF16 copy itself (no FP32 value, no reorder), with the bits of the conversion oneDNN's reorder makes.
TEST(ChannelBlocked, RoundingsReadByOneProductWriteItsBf16Copies) {
    ir::Graph g;
    const NodeId step = g.add_input("step", {ir::DType::F32, ir::Shape{1}});
    const NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape{16, 64}});
    const NodeId w = g.add_input("w", {ir::DType::F32, ir::Shape{64, 32}});
    const NodeId rx = ir::round_to(g, x, step, {numerics::FormatKind::Bf16, numerics::Rounding::NearestEven, 0.0, 1, 1});
    const NodeId rw = ir::round_to(g, w, step, {numerics::FormatKind::Bf16, numerics::Rounding::NearestEven, 0.0, 1, 2});
    g.mark_output(ir::matmul(g, rx, rw));
    CopiesAndReorders e(g);
    if (cpu_has_avx512_bf16()) {
        EXPECT_EQ(e.copies.bf16_copy_count(), 2u);
    }
    std::mt19937 rng(4);
    for (int run = 0; run < 2; ++run) {  // new values each step: a copy left from the first would show
        e.fill(g, {x, w}, rng);
        e.copies.run();
        e.reorders.run();
        expect_same_bits(e.copies.value(g.outputs()[0]).data, e.reorders.value(g.outputs()[0]).data, "the product");
    }
}

// oneDNN runs 16-channel blocks where the CPU has AVX-512 (the layout the executor then keeps).
bool cpu_has_avx512() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.starts_with("flags")) {
            return line.find(" avx512bw") != std::string::npos && line.find(" avx512vl") != std::string::npos;
        }
    }
    return false;
}

// A ResNet-18 training step (loss and every gradient) with the activations blocked and plain: the same bits, and
// on an AVX-512 CPU most activations are blocked, max-pooling too; in fp32, and in cfp8, whose roundings of the
// convolutions' inputs (nearest) and output gradients (stochastic) run on blocked tensors, and, where the
// convolutions read BF16, write the convolutions' BF16 copies: the same bits as with the copies made by reorders.
class ChannelBlockedResNet : public ::testing::TestWithParam<compiler::Precision> {};

TEST_P(ChannelBlockedResNet, StepGivesThePlainBits) {
    const frontend::Model m = frontend::build_catalog_model("resnet18", 2, ir::Shape{3, 32, 32}, 10);
    compiler::PolicyResult policy = compiler::apply_precision_policy(m.graph, compiler::make_policy(GetParam(), 3));
    ir::Graph& g = policy.graph;
    const NodeId logits = policy.remap[m.logits.index];
    const NodeId target = g.add_input("target", {ir::DType::F32, ir::Shape{2, 10}});
    const NodeId loss = autodiff::softmax_cross_entropy(g, logits, target);
    const std::vector<NodeId> grads = autodiff::gradients(g, loss, g.parameters());
    g.mark_output(loss);
    for (const NodeId grad : grads) {
        g.mark_output(grad);
    }
    runtime::ExecutorOptions with;
    runtime::ExecutorOptions without;
    without.channel_blocked = false;
    runtime::ExecutorOptions reordered;  // blocked, the BF16 copies made by oneDNN's reorders
    reordered.bf16_copies = false;
    runtime::Executor blocked(g, with);
    runtime::Executor plain(g, without);
    runtime::Executor by_reorders(g, reordered);
    EXPECT_EQ(plain.channel_blocked_count(), 0u);
    EXPECT_EQ(by_reorders.bf16_copy_count(), 0u);
    if (GetParam() == compiler::Precision::Cfp8 && cpu_has_avx512_bf16()) {
        EXPECT_GE(blocked.bf16_copy_count(), 15u);
    }
    int rounded_blocked = 0;
    if (cpu_has_avx512()) {
        EXPECT_GE(blocked.channel_blocked_count(), 40u);
        for (std::uint32_t i = 0; i < g.size(); ++i) {  // the stem's max-pooling too, both ways
            const ir::OpKind op = g.node(NodeId{i}).op;
            if (op == ir::OpKind::MaxPool2d || op == ir::OpKind::MaxPool2dBackward) {
                EXPECT_TRUE(blocked.is_channel_blocked(NodeId{i})) << g.describe(NodeId{i});
            }
            rounded_blocked += op == ir::OpKind::RoundTo && blocked.is_channel_blocked(NodeId{i}) ? 1 : 0;
        }
        if (GetParam() == compiler::Precision::Cfp8) {  // layers 1 and 2 both ways (at 32x32 the later ones are
            EXPECT_GE(rounded_blocked, 15);               // too small to fuse, so they stay plain)
        }
    }
    std::mt19937 rng(9);
    for (int step = 0; step < 2; ++step) {
        for (std::uint32_t i = 0; i < g.size(); ++i) {
            const ir::OpKind op = g.node(NodeId{i}).op;
            if (op != ir::OpKind::Input && op != ir::OpKind::Parameter) {
                continue;
            }
            std::normal_distribution<float> normal(0.0f, op == ir::OpKind::Parameter ? 0.1f : 1.0f);
            std::vector<float> values(plain.value(NodeId{i}).data.size());
            for (float& v : values) {
                v = NodeId{i} == policy.step ? static_cast<float>(step) : normal(rng);
            }
            std::copy(values.begin(), values.end(), plain.value(NodeId{i}).data.begin());
            std::copy(values.begin(), values.end(), blocked.value(NodeId{i}).data.begin());
            std::copy(values.begin(), values.end(), by_reorders.value(NodeId{i}).data.begin());
        }
        plain.run();
        blocked.run();
        by_reorders.run();
        for (const NodeId out : g.outputs()) {
            expect_same_bits(blocked.value(out).data, plain.value(out).data,
                             "step " + std::to_string(step) + ", " + g.describe(out));
            expect_same_bits(blocked.value(out).data, by_reorders.value(out).data,
                             "step " + std::to_string(step) + ", BF16 copies by reorders, " + g.describe(out));
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Precisions, ChannelBlockedResNet,
                         ::testing::Values(compiler::Precision::Fp32, compiler::Precision::Cfp8),
                         [](const ::testing::TestParamInfo<compiler::Precision>& p) {
                             return std::string(compiler::to_string(p.param));
                         });

}  // namespace
}  // namespace dojo
