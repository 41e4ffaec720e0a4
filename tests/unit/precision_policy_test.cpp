// The precision policy pass: where it puts rounding ops, what it leaves alone, and that it keeps the graph's leaves.
#include <gtest/gtest.h>

#include <bit>
#include <set>

#include "dojo/compiler/precision_policy.h"
#include "dojo/frontend/catalog.h"
#include "dojo/ir/builder.h"
#include "dojo/ir/interpreter.h"
#include "dojo/ir/verify.h"
#include "dojo/util/error.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;
using ir::OpKind;

int count(const ir::Graph& g, OpKind op) {
    int n = 0;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        n += g.node(NodeId{i}).op == op;
    }
    return n;
}

TEST(PrecisionPolicy, Cfp8RoundsEveryMatMulsOperandsAndOutputGradient) {
    const frontend::Model model = frontend::build_catalog_model("mlp:hidden=16x8", 4, ir::Shape{10}, 3);
    const PolicyResult r = apply_precision_policy(model.graph, make_policy(Precision::Cfp8, 5));
    ASSERT_NO_THROW(ir::verify(r.graph));
    EXPECT_EQ(count(r.graph, OpKind::MatMul), 3);
    EXPECT_EQ(count(r.graph, OpKind::RoundTo), 6);
    EXPECT_EQ(count(r.graph, OpKind::RoundGrad), 3);
    ASSERT_TRUE(r.step.valid());
    // Operands forward in cfp8_143 (nearest), gradients in cfp8_152 (stochastic), each tensor its own id.
    std::set<std::uint32_t> ids;
    for (std::uint32_t i = 0; i < r.graph.size(); ++i) {
        const ir::Node& node = r.graph.node(NodeId{i});
        if (node.op == OpKind::RoundTo || node.op == OpKind::RoundGrad) {
            const auto& a = std::get<ir::RoundAttrs>(node.attrs);
            EXPECT_EQ(a.format, node.op == OpKind::RoundTo ? numerics::FormatKind::Cfp8_143
                                                            : numerics::FormatKind::Cfp8_152);
            EXPECT_EQ(a.rounding, node.op == OpKind::RoundTo ? numerics::Rounding::NearestEven
                                                              : numerics::Rounding::Stochastic);
            EXPECT_EQ(a.seed, 5u);
            EXPECT_TRUE(ids.insert(a.tensor_id).second);
        }
        if (node.op == OpKind::MatMul) {
            for (const NodeId input : node.inputs) {
                EXPECT_EQ(r.graph.node(input).op, OpKind::RoundTo);
            }
        }
    }
    // Leaves keep their names and order; ids map.
    ASSERT_EQ(r.graph.parameters().size(), model.graph.parameters().size());
    for (std::size_t i = 0; i < model.graph.parameters().size(); ++i) {
        EXPECT_EQ(r.graph.node(r.graph.parameters()[i]).name, model.graph.node(model.graph.parameters()[i]).name);
        EXPECT_EQ(r.remap[model.graph.parameters()[i].index], r.graph.parameters()[i]);
    }
}

TEST(PrecisionPolicy, ATensorSeveralProductsReadIsRoundedOnce) {
    ir::Graph forward;
    const NodeId x = forward.add_input("x", {ir::DType::F32, ir::Shape{2, 4}});
    const NodeId a = forward.add_parameter("a", {ir::DType::F32, ir::Shape{4, 3}});
    const NodeId b = forward.add_parameter("b", {ir::DType::F32, ir::Shape{4, 3}});
    forward.mark_output(ir::add(forward, ir::matmul(forward, x, a), ir::matmul(forward, x, b)));
    const PolicyResult r = apply_precision_policy(forward, make_policy(Precision::Bf16, 1));
    ASSERT_NO_THROW(ir::verify(r.graph));
    EXPECT_EQ(count(r.graph, OpKind::RoundTo), 3);  // x once, a, b
    std::vector<NodeId> lhs;
    for (std::uint32_t i = 0; i < r.graph.size(); ++i) {
        if (r.graph.node(NodeId{i}).op == OpKind::MatMul) {
            lhs.push_back(r.graph.node(NodeId{i}).inputs[0]);
        }
    }
    ASSERT_EQ(lhs.size(), 2u);
    EXPECT_EQ(lhs[0], lhs[1]);
    EXPECT_EQ(r.graph.node(lhs[0]).op, OpKind::RoundTo);
}

TEST(PrecisionPolicy, Fp32ChangesNothingAndBf16KeepsValuesOnTheBf16Grid) {
    const frontend::Model model = frontend::build_catalog_model("mlp:hidden=4", 2, ir::Shape{3}, 2);
    const PolicyResult same = apply_precision_policy(model.graph, make_policy(Precision::Fp32, 0));
    EXPECT_EQ(same.graph.size(), model.graph.size());
    EXPECT_FALSE(same.step.valid());
    const PolicyResult bf16 = apply_precision_policy(model.graph, make_policy(Precision::Bf16, 0));
    ir::Bindings<float> b;
    for (const NodeId id : bf16.graph.inputs()) {
        b[id] = ir::Buffer<float>(bf16.graph.type(id).shape, 0.1234567f);
    }
    for (const NodeId id : bf16.graph.parameters()) {
        b[id] = ir::Buffer<float>(bf16.graph.type(id).shape, 0.7654321f);
    }
    const auto values = ir::evaluate(bf16.graph, b);
    for (std::uint32_t i = 0; i < bf16.graph.size(); ++i) {
        if (bf16.graph.node(NodeId{i}).op == OpKind::RoundTo) {
            for (const float v : values[i].data) {
                EXPECT_EQ(std::bit_cast<std::uint32_t>(v) & 0xffffu, 0u) << "a BF16 value has 16 zero low bits";
            }
        }
    }
}

TEST(PrecisionPolicy, NamesParse) {
    EXPECT_EQ(parse_precision("cfp8"), Precision::Cfp8);
    EXPECT_EQ(to_string(Precision::Bf16), "bf16");
    EXPECT_THROW(parse_precision("fp8"), UsageError);
}

}  // namespace
}  // namespace dojo::compiler
