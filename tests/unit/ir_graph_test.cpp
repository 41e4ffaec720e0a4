// Graph construction, shapes, dtypes and the op table: the invariants and the errors a user can trigger.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "dojo/ir/builder.h"
#include "dojo/ir/interpreter.h"
#include "dojo/ir/verify.h"
#include "dojo/util/error.h"

namespace dojo::ir {
namespace {

TensorType f32(Shape shape) { return TensorType{DType::F32, std::move(shape)}; }

// Runs `body` and expects a GraphError whose message contains `needle`.
template <typename Body>
void expect_graph_error(Body body, const std::string& needle) {
    try {
        body();
        FAIL() << "expected a GraphError containing: " << needle;
    } catch (const GraphError& error) {
        EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
    }
}

TEST(Shape, NumelRankAndText) {
    EXPECT_EQ(Shape().numel(), 1);
    EXPECT_EQ(Shape().to_string(), "[]");
    EXPECT_EQ((Shape{2, 3, 4}).numel(), 24);
    EXPECT_EQ((Shape{2, 0}).numel(), 0);
    EXPECT_EQ((Shape{2, 3}).to_string(), "[2, 3]");
    EXPECT_EQ(strides_of(Shape{2, 3, 4}), (std::vector<std::int64_t>{12, 4, 1}));
    expect_graph_error([] { Shape{2, -1}; }, "negative dimension");
}

TEST(Shape, BroadcastRules) {
    EXPECT_EQ(broadcast_shapes(Shape{2, 1, 4}, Shape{3, 1}), (Shape{2, 3, 4}));
    EXPECT_EQ(broadcast_shapes(Shape{}, Shape{5}), (Shape{5}));
    expect_graph_error([] { broadcast_shapes(Shape{2, 3}, Shape{4}); }, "[2, 3] and [4] do not broadcast");
    EXPECT_EQ(normalize_axis(-1, 3, "x"), 2);
    expect_graph_error([] { normalize_axis(3, 3, "node 'n'"); }, "axis 3 is out of range for rank 3");
}

TEST(DType, NamesAndSizes) {
    EXPECT_EQ(dtype_info(DType::F32).size_bytes, 4);
    EXPECT_EQ(dtype_info(DType::Cfp8_143).size_bytes, 1);
    EXPECT_EQ(parse_dtype("bf16"), DType::Bf16);
    EXPECT_THROW(parse_dtype("f16"), UsageError);
}

TEST(OpTable, RowsAreInOpKindOrderWithUniqueNamesAndKernels) {
    std::set<std::string_view> names;
    for (std::size_t k = 0; k < kOpCount; ++k) {
        const auto op = static_cast<OpKind>(k);
        const OpInfo& info = op_info(op);
        EXPECT_EQ(info.kind, op) << info.name;
        EXPECT_TRUE(names.insert(info.name).second) << info.name;
        const bool bound_leaf = op == OpKind::Input || op == OpKind::Parameter || op == OpKind::State;
        EXPECT_EQ(info.reference_f32 == nullptr, bound_leaf) << info.name;
        EXPECT_EQ(info.reference_f64 == nullptr, bound_leaf) << info.name;
        EXPECT_NE(info.shape, nullptr);
        EXPECT_NE(info.cost, nullptr);
    }
}

TEST(Graph, BuildsInTopologicalOrderAndVerifies) {
    Graph g;
    const NodeId x = g.add_input("x", f32(Shape{4, 8}));
    const NodeId w = g.add_parameter("w", f32(Shape{8, 2}));
    const NodeId y = relu(g, matmul(g, x, w, "fc"), "act");
    g.mark_output(y);
    EXPECT_EQ(g.size(), 4u);
    EXPECT_EQ(g.type(y), f32(Shape{4, 2}));
    EXPECT_EQ(g.inputs(), std::vector<NodeId>{x});
    EXPECT_EQ(g.parameters(), std::vector<NodeId>{w});
    EXPECT_EQ(g.outputs(), std::vector<NodeId>{y});
    EXPECT_EQ(g.describe(NodeId{2}), "node 'fc' (#2 MatMul)");
    EXPECT_NO_THROW(verify(g));
}

TEST(Graph, ErrorsNameTheNodeAndTheProblem) {
    Graph g;
    const NodeId a = g.add_input("a", f32(Shape{2, 3}));
    const NodeId b = g.add_input("b", f32(Shape{4, 5}));
    expect_graph_error([&] { matmul(g, a, b, "proj"); }, "node 'proj' (MatMul): inner dimensions differ: [2, 3] x [4, 5]");
    expect_graph_error([&] { add(g, a, b); }, "[2, 3] and [4, 5] do not broadcast");
    expect_graph_error([&] { reshape(g, a, Shape{4}); }, "cannot reshape [2, 3] (6 elements) to [4]");
    expect_graph_error([&] { transpose(g, a, {0, 0}); }, "perm must be a permutation");
    expect_graph_error([&] { reduce_sum(g, a, {1, -1}); }, "an axis is listed twice");
    expect_graph_error([&] { log_softmax(g, a, 2); }, "axis 2 is out of range");
    expect_graph_error([&] { g.add(OpKind::Add, NoAttrs{}, {a}); }, "takes 2 input(s), got 1");
    expect_graph_error([&] { g.add(OpKind::Neg, NoAttrs{}, {NodeId{99}}); }, "input 0 is not a node of this graph");
    expect_graph_error([&] { g.add(OpKind::Reshape, NoAttrs{}, {a}); }, "attributes of the wrong kind");
    const NodeId labels = g.add_input("labels", TensorType{DType::I64, Shape{2}});
    expect_graph_error([&] { exp(g, labels); }, "input 0 is i64[2]; this op computes in f32");
    EXPECT_NO_THROW(verify(g));  // failed additions leave the graph untouched
    EXPECT_EQ(g.size(), 3u);
}

TEST(Interpreter, RequiresEveryLeafBoundWithItsShape) {
    Graph g;
    const NodeId x = g.add_input("x", f32(Shape{2}));
    const NodeId y = exp(g, x);
    EXPECT_THROW(evaluate(g, Bindings<float>{}), UsageError);
    try {
        evaluate(g, Bindings<float>{{x, Buffer<float>(Shape{3})}});
        FAIL();
    } catch (const UsageError& error) {
        EXPECT_NE(std::string(error.what()).find("node 'x' (#0 Input) was bound to a tensor of shape [3]"),
                  std::string::npos)
            << error.what();
    }
    const auto values = evaluate(g, Bindings<float>{{x, Buffer<float>(Shape{2}, {0.0f, 1.0f})}});
    EXPECT_EQ(values[y.index].data[0], 1.0f);
}

TEST(Builder, SumToShapeIsTheAdjointOfBroadcasting) {
    Graph g;
    const NodeId x = g.add_input("x", f32(Shape{2, 3, 4}));
    EXPECT_EQ(sum_to_shape(g, x, Shape{2, 3, 4}), x);
    EXPECT_EQ(g.type(sum_to_shape(g, x, Shape{3, 1})).shape, (Shape{3, 1}));
    EXPECT_EQ(g.type(sum_to_shape(g, x, Shape{})).shape, Shape{});
    const NodeId s = sum_to_shape(g, x, Shape{1, 4});
    std::vector<float> ones(24, 1.0f);
    const auto values = evaluate(g, Bindings<float>{{x, Buffer<float>(Shape{2, 3, 4}, ones)}});
    EXPECT_EQ(values[s.index].data, (std::vector<float>{6, 6, 6, 6}));
}

}  // namespace
}  // namespace dojo::ir
