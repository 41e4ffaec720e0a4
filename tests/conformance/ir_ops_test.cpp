// Conformance of every primitive op, one table row each:
//   - the graph verifies, and the output type is what the row says;
//   - forward: the float reference kernel agrees with the double one (both instantiations are live code);
//   - backward: the gradient rules' VJP (through autodiff), evaluated in double, matches central finite differences of
//     L(x) = sum(y(x) * G) for a random cotangent G, for every element of every input;
//   - cost: FLOPs and bytes are non-negative and MatMul's are 2mnk.
// Plus hand-computed forward cases for the structured ops, independent of the kernels' code.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dojo/autodiff/grad.h"
#include "dojo/ir/builder.h"
#include "dojo/ir/interpreter.h"
#include "dojo/ir/verify.h"
#include "dojo/numerics/convert.h"
#include "dojo/util/error.h"

namespace dojo::ir {
namespace {

struct OpCase {
    std::string name;
    std::vector<Shape> inputs;
    std::function<NodeId(Graph&, const std::vector<NodeId>&)> build;
    double low = -2.0;  // inputs are drawn uniformly from [low, high], avoiding |x| < min_magnitude
    double high = 2.0;
    double min_magnitude = 0.0;
    bool finite_differences = true;  // false for straight-through ops (their rule is not the true derivative)
};

TensorType f32(Shape shape) { return TensorType{DType::F32, std::move(shape)}; }

std::vector<OpCase> op_cases() {
    using Ids = const std::vector<NodeId>&;
    auto unary = [](std::string name, NodeId (*fn)(Graph&, NodeId, std::string), double low, double high,
                    double min_magnitude = 0.0) {
        return OpCase{std::move(name), {Shape{3, 4}}, [fn](Graph& g, Ids x) { return fn(g, x[0], ""); }, low, high,
                      min_magnitude};
    };
    auto binary = [](std::string name, NodeId (*fn)(Graph&, NodeId, NodeId, std::string), Shape a, Shape b,
                     double low = -2.0, double high = 2.0, double min_magnitude = 0.0) {
        return OpCase{std::move(name), {std::move(a), std::move(b)},
                      [fn](Graph& g, Ids x) { return fn(g, x[0], x[1], ""); }, low, high, min_magnitude};
    };
    return {
        unary("Neg", &neg, -2, 2),
        unary("Exp", &exp, -2, 2),
        unary("Log", &log, 0.2, 3),
        unary("Sqrt", &sqrt, 0.2, 3),
        unary("Tanh", &tanh, -2, 2),
        unary("Sigmoid", &sigmoid, -3, 3),
        unary("Relu", &relu, -2, 2, 0.05),
        unary("Step", &step, -2, 2, 0.05),
        unary("Erf", &erf, -2, 2),
        binary("Add", &add, Shape{2, 3}, Shape{2, 3}),
        binary("Add broadcast", &add, Shape{2, 3, 4}, Shape{3, 1}),
        binary("Sub broadcast", &sub, Shape{4}, Shape{2, 3, 4}),
        binary("Mul broadcast", &mul, Shape{2, 1, 4}, Shape{3, 1}),
        binary("Div", &div, Shape{2, 3}, Shape{2, 3}, 0.3, 2.0),
        binary("Div by scalar-like", &div, Shape{2, 3}, Shape{1}, 0.3, 2.0),
        binary("Maximum", &maximum, Shape{3, 4}, Shape{3, 4}),
        binary("MatMul", &matmul, Shape{3, 4}, Shape{4, 5}),
        binary("MatMul batched", &matmul, Shape{2, 3, 4}, Shape{2, 4, 2}),
        binary("MatMul broadcast batch", &matmul, Shape{2, 1, 3, 4}, Shape{3, 4, 2}),
        {"ReduceSum axis", {Shape{2, 3, 4}}, [](Graph& g, Ids x) { return reduce_sum(g, x[0], {1}); }},
        {"ReduceSum keep negative", {Shape{2, 3, 4}}, [](Graph& g, Ids x) { return reduce_sum(g, x[0], {-1, 0}, true); }},
        {"ReduceSum all", {Shape{2, 3}}, [](Graph& g, Ids x) { return reduce_sum(g, x[0], {}); }},
        {"Select broadcast", {Shape{3, 1}, Shape{3, 4}, Shape{4}},
         [](Graph& g, Ids x) { return select(g, step(g, x[0]), x[1], x[2]); }, -2, 2, 0.05},
        {"Slice strided", {Shape{3, 5, 4}},
         [](Graph& g, Ids x) { return slice(g, x[0], SliceAttrs{{1, 0, 1}, {2, 3, 2}, {1, 2, 2}}); }},
        {"SliceBackward", {Shape{2, 2}},
         [](Graph& g, Ids x) {
             return g.add(OpKind::SliceBackward, SliceBackwardAttrs{SliceAttrs{{1, 0}, {2, 2}, {1, 3}}, Shape{4, 5}},
                          {x[0]});
         }},
        // Ids are data (a Constant here): repeated ids make the adjoint add rows; an unused row gets zeros.
        {"Gather rows", {Shape{5, 3}},
         [](Graph& g, Ids x) { return gather(g, x[0], constant(g, Shape{2, 3}, {4, 0, 2, 2, 1, 4})); }},
        {"GatherBackward", {Shape{2, 3, 3}},
         [](Graph& g, Ids x) {
             return g.add(OpKind::GatherBackward, GatherBackwardAttrs{Shape{5, 3}},
                          {x[0], constant(g, Shape{2, 3}, {4, 0, 2, 2, 1, 4})});
         }},
        {"OneHot times x", {Shape{3, 4}},
         [](Graph& g, Ids x) { return mul(g, x[0], one_hot(g, constant(g, Shape{3}, {2, 0, 3}), 4)); }},
        {"Concat (SliceBackward + Add)", {Shape{2, 1, 3}, Shape{2, 2, 3}},
         [](Graph& g, Ids x) { return concat(g, {x[0], x[1]}, 1); }},
        {"Constant times x", {Shape{2, 3}},
         [](Graph& g, Ids x) { return mul(g, x[0], constant(g, Shape{3}, {0.5f, -1.0f, 2.0f})); }},
        {"Reshape", {Shape{2, 6}}, [](Graph& g, Ids x) { return reshape(g, x[0], Shape{3, 2, 2}); }},
        {"Transpose", {Shape{2, 3, 4}}, [](Graph& g, Ids x) { return transpose(g, x[0], {2, 0, 1}); }},
        {"BroadcastTo", {Shape{3, 1}}, [](Graph& g, Ids x) { return broadcast_to(g, x[0], Shape{2, 3, 4}); }},
        {"LogSoftmax last", {Shape{3, 5}}, [](Graph& g, Ids x) { return log_softmax(g, x[0], -1); }},
        {"LogSoftmax middle", {Shape{2, 4, 3}}, [](Graph& g, Ids x) { return log_softmax(g, x[0], 1); }},
        {"Conv2d", {Shape{2, 3, 6, 5}, Shape{4, 3, 3, 2}}, [](Graph& g, Ids x) { return conv2d(g, x[0], x[1]); }},
        {"Conv2d strided padded dilated grouped", {Shape{1, 4, 7, 7}, Shape{6, 2, 3, 3}},
         [](Graph& g, Ids x) { return conv2d(g, x[0], x[1], Conv2dAttrs{{2, 1}, {1, 0, 1, 2}, {1, 2}, 2}); }},
        {"Conv2dBackwardData", {Shape{2, 4, 4, 4}, Shape{4, 3, 3, 2}},
         [](Graph& g, Ids x) {
             return g.add(OpKind::Conv2dBackwardData, ConvBackwardAttrs{Conv2dAttrs{}, Shape{2, 3, 6, 5}}, {x[0], x[1]});
         },
         -2, 2, 0, false},
        {"Conv2dBackwardFilter", {Shape{2, 3, 6, 5}, Shape{2, 4, 4, 4}},
         [](Graph& g, Ids x) {
             return g.add(OpKind::Conv2dBackwardFilter, ConvBackwardAttrs{Conv2dAttrs{}, Shape{4, 3, 3, 2}},
                          {x[0], x[1]});
         },
         -2, 2, 0, false},
        {"MaxPool2d", {Shape{2, 2, 6, 6}}, [](Graph& g, Ids x) { return max_pool2d(g, x[0]); }},
        {"MaxPool2d padded overlapping", {Shape{1, 2, 7, 5}},
         [](Graph& g, Ids x) { return max_pool2d(g, x[0], PoolAttrs{{3, 3}, {2, 2}, {1, 1, 1, 1}}); }},
        {"MaxPool2dBackward", {Shape{1, 2, 4, 4}, Shape{1, 2, 2, 2}},
         [](Graph& g, Ids x) { return g.add(OpKind::MaxPool2dBackward, PoolAttrs{}, {x[0], x[1]}); }, -2, 2, 0,
         false},
        {"RoundTo cfp8", {Shape{3, 4}, Shape{}},
         [](Graph& g, Ids x) { return round_to(g, x[0], x[1], RoundAttrs{numerics::FormatKind::Cfp8_143}); }, -2, 2,
         0, false},
        {"RoundGrad bf16", {Shape{3, 4}, Shape{}},
         [](Graph& g, Ids x) { return round_grad(g, x[0], x[1], RoundAttrs{numerics::FormatKind::Bf16}); }, -2, 2, 0,
         false},
        {"Dropout", {Shape{3, 4}, Shape{}},
         [](Graph& g, Ids x) { return dropout(g, x[0], x[1], DropoutAttrs{0.25, 3, 1}); }, -2, 2, 0, false},
    };
}

std::vector<double> random_values(std::int64_t n, const OpCase& c, std::mt19937& rng) {
    std::uniform_real_distribution<double> uniform(c.low, c.high);
    std::vector<double> values(static_cast<std::size_t>(n));
    for (double& v : values) {
        do {
            v = uniform(rng);
        } while (std::fabs(v) < c.min_magnitude);
    }
    return values;
}

double weighted_sum(const Buffer<double>& y, const Buffer<double>& weights) {
    double sum = 0;
    for (std::size_t i = 0; i < y.data.size(); ++i) {
        sum += y.data[i] * weights.data[i];
    }
    return sum;
}

TEST(IrOps, EveryPrimitiveHasAConformanceRow) {
    std::set<OpKind> covered;
    for (const OpCase& c : op_cases()) {
        Graph g;
        std::vector<NodeId> inputs;
        for (const Shape& s : c.inputs) {
            inputs.push_back(g.add_input("x", f32(s)));
        }
        c.build(g, inputs);
        for (std::uint32_t i = 0; i < g.size(); ++i) {
            covered.insert(g.node(NodeId{i}).op);  // the ops a row's graph uses, composite rows included
        }
    }
    for (std::size_t k = 0; k < kOpCount; ++k) {
        const auto op = static_cast<OpKind>(k);
        if (op == OpKind::Input || op == OpKind::Parameter || op == OpKind::State || op == OpKind::Fill) {
            continue;  // leaves: exercised by every row
        }
        EXPECT_TRUE(covered.contains(op)) << to_string(op) << " has no row in op_cases()";
    }
}

TEST(IrOps, ForwardFloatMatchesDoubleAndGradientsMatchFiniteDifferences) {
    std::mt19937 rng(2026);
    for (const OpCase& c : op_cases()) {
        SCOPED_TRACE(c.name);
        Graph g;
        std::vector<NodeId> inputs;
        for (std::size_t i = 0; i < c.inputs.size(); ++i) {
            inputs.push_back(g.add_input("x" + std::to_string(i), f32(c.inputs[i])));
        }
        const NodeId y = c.build(g, inputs);
        ASSERT_NO_THROW(verify(g));

        Bindings<double> values;
        Bindings<float> values_f32;
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            Buffer<double> b(c.inputs[i], random_values(c.inputs[i].numel(), c, rng));
            values_f32[inputs[i]] = Buffer<float>(b.shape, std::vector<float>(b.data.begin(), b.data.end()));
            values[inputs[i]] = std::move(b);
        }
        const Buffer<double> forward = evaluate(g, values)[y.index];
        const Buffer<float> forward_f32 = evaluate(g, values_f32)[y.index];
        ASSERT_EQ(forward.shape, g.type(y).shape);
        for (std::size_t i = 0; i < forward.data.size(); ++i) {
            EXPECT_NEAR(forward_f32.data[i], forward.data[i], 1e-5 * (1 + std::fabs(forward.data[i]))) << "element " << i;
        }

        const OpInfo& info = op_info(g.node(y).op);
        if (info.gradient == nullptr || !c.finite_differences) {
            continue;  // Step: zero gradient; RoundTo/RoundGrad: straight-through, tested in IrRounding below
        }
        // Through autodiff (the rules composed), so composite rows (Concat = SliceBackward + Add) are checked too.
        const NodeId cotangent = g.add_input("g", g.type(y));
        const NodeId loss = reduce_sum(g, mul(g, y, cotangent), {});
        const std::vector<NodeId> grads = autodiff::gradients(g, loss, inputs);
        ASSERT_EQ(grads.size(), inputs.size());
        ASSERT_NO_THROW(verify(g));
        values[cotangent] = Buffer<double>(g.type(y).shape, random_values(g.type(y).shape.numel(), OpCase{}, rng));
        const std::vector<Buffer<double>> all = evaluate(g, values);

        for (std::size_t i = 0; i < inputs.size(); ++i) {
            ASSERT_TRUE(grads[i].valid()) << "input " << i;
            ASSERT_EQ(g.type(grads[i]).shape, c.inputs[i]) << "gradient of input " << i << " has the input's shape";
            const Buffer<double>& analytic = all[grads[i].index];
            for (std::size_t j = 0; j < analytic.data.size(); ++j) {
                Bindings<double> plus = values;
                Bindings<double> minus = values;
                const double x = values[inputs[i]].data[j];
                const double h = 1e-6 * std::max(1.0, std::fabs(x));
                plus[inputs[i]].data[j] = x + h;
                minus[inputs[i]].data[j] = x - h;
                const double numeric = (weighted_sum(evaluate(g, plus)[y.index], values[cotangent]) -
                                        weighted_sum(evaluate(g, minus)[y.index], values[cotangent])) /
                                       (2 * h);
                EXPECT_NEAR(analytic.data[j], numeric, 1e-6 + 1e-6 * std::fabs(numeric))
                    << "d/d input " << i << " element " << j;
            }
        }
    }
}

TEST(IrOps, CostsAreNonNegativeAndMatMulCountsTwoMnk) {
    for (const OpCase& c : op_cases()) {
        Graph g;
        std::vector<NodeId> inputs;
        std::vector<TensorType> types;
        for (const Shape& s : c.inputs) {
            inputs.push_back(g.add_input("x", f32(s)));
            types.push_back(f32(s));
        }
        const Node& node = g.node(c.build(g, inputs));
        types.clear();  // the node's own inputs: a row may build some (a Constant of ids) besides the case's
        for (const NodeId input : node.inputs) {
            types.push_back(g.type(input));
        }
        const OpCost cost = op_info(node.op).cost(node, types);
        EXPECT_GE(cost.flops, 0) << c.name;
        EXPECT_GE(cost.bytes_read, 0) << c.name;
        EXPECT_GE(cost.bytes_written, 0) << c.name;
    }
    Graph g;
    const NodeId a = g.add_input("a", f32(Shape{2, 8, 16}));
    const NodeId b = g.add_input("b", f32(Shape{16, 4}));
    const Node& node = g.node(matmul(g, a, b));
    const std::vector<TensorType> types = {g.type(a), g.type(b)};
    const OpCost cost = op_info(OpKind::MatMul).cost(node, types);
    EXPECT_EQ(cost.flops, 2.0 * 2 * 8 * 4 * 16);
    EXPECT_EQ(cost.bytes_read, 4.0 * (2 * 8 * 16 + 16 * 4));
    EXPECT_EQ(cost.bytes_written, 4.0 * 2 * 8 * 4);
    EXPECT_EQ(cost.unit, ComputeUnit::Matrix);
}

// ---- hand-computed forward cases ---------------------------------------------------------------------------

Buffer<double> run(Graph& g, NodeId out, const Bindings<double>& bindings) { return evaluate(g, bindings)[out.index]; }

TEST(IrOps, GatherPicksRowsAndRejectsIdsOutOfRange) {
    Graph g;
    const NodeId table = g.add_input("table", f32(Shape{3, 2}));
    const NodeId ids = g.add_input("ids", TensorType{DType::I64, Shape{4}});
    const NodeId rows = gather(g, table, ids);
    EXPECT_EQ(g.type(rows).shape, (Shape{4, 2}));
    Bindings<double> b;
    b[table] = Buffer<double>(Shape{3, 2}, {0, 1, 10, 11, 20, 21});
    b[ids] = Buffer<double>(Shape{4}, {2, 0, 0, 1});
    EXPECT_EQ(evaluate(g, b)[rows.index].data, (std::vector<double>{20, 21, 0, 1, 0, 1, 10, 11}));
    for (const double bad : {3.0, -1.0, 0.5}) {
        b[ids].data[1] = bad;
        try {
            evaluate(g, b);
            FAIL() << "accepted id " << bad;
        } catch (const UsageError& e) {
            EXPECT_NE(std::string(e.what()).find("is not a whole number in [0, 3)"), std::string::npos) << e.what();
        }
    }
}

TEST(IrOps, OneHotMarksEachIdAndRejectsIdsOutOfRange) {
    Graph g;
    const NodeId ids = g.add_input("ids", TensorType{DType::I64, Shape{2, 2}});
    const NodeId hot = one_hot(g, ids, 3);
    EXPECT_EQ(g.type(hot).shape, (Shape{2, 2, 3}));
    Bindings<double> b;
    b[ids] = Buffer<double>(Shape{2, 2}, {2, 0, 1, 1});
    EXPECT_EQ(evaluate(g, b)[hot.index].data, (std::vector<double>{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0}));
    b[ids].data[3] = 3;
    EXPECT_THROW(evaluate(g, b), UsageError);
    EXPECT_THROW(one_hot(g, ids, 0), GraphError);
}

TEST(IrOps, MatMulReduceTransposeBroadcastByHand) {
    Graph g;
    const NodeId a = g.add_input("a", f32(Shape{2, 3}));
    const NodeId b = g.add_input("b", f32(Shape{3, 2}));
    const NodeId product = matmul(g, a, b);
    const NodeId rows = reduce_sum(g, a, {1});
    const NodeId swapped = transpose(g, a, {1, 0});
    const NodeId wide = broadcast_to(g, rows, Shape{3, 2});
    const Bindings<double> bind = {{a, Buffer<double>(Shape{2, 3}, {1, 2, 3, 4, 5, 6})},
                                   {b, Buffer<double>(Shape{3, 2}, {7, 8, 9, 10, 11, 12})}};
    EXPECT_EQ(run(g, product, bind).data, (std::vector<double>{58, 64, 139, 154}));
    EXPECT_EQ(run(g, rows, bind).data, (std::vector<double>{6, 15}));
    EXPECT_EQ(run(g, swapped, bind).data, (std::vector<double>{1, 4, 2, 5, 3, 6}));
    EXPECT_EQ(run(g, wide, bind).data, (std::vector<double>{6, 15, 6, 15, 6, 15}));
}

TEST(IrOps, ConvolutionAndPoolingByHand) {
    Graph g;
    const NodeId x = g.add_input("x", f32(Shape{1, 1, 3, 3}));
    const NodeId w = g.add_input("w", f32(Shape{1, 1, 2, 2}));
    const NodeId y = conv2d(g, x, w);
    const NodeId padded = conv2d(g, x, w, Conv2dAttrs{{2, 2}, {1, 1, 0, 0}, {1, 1}, 1});
    const NodeId pooled = max_pool2d(g, x, PoolAttrs{{2, 2}, {1, 1}, {0, 0, 0, 0}});
    const Bindings<double> bind = {{x, Buffer<double>(Shape{1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})},
                                   {w, Buffer<double>(Shape{1, 1, 2, 2}, {1, 0, 0, -1})}};
    // Each output: top-left minus bottom-right of its 2x2 window.
    EXPECT_EQ(run(g, y, bind).data, (std::vector<double>{-4, -4, -4, -4}));
    // Padded by one row/column at the top/left, stride 2: windows start at (-1,-1), (-1,1), (1,-1), (1,1).
    EXPECT_EQ(g.type(padded).shape, (Shape{1, 1, 2, 2}));
    EXPECT_EQ(run(g, padded, bind).data, (std::vector<double>{-1, -3, -7, -4}));
    EXPECT_EQ(run(g, pooled, bind).data, (std::vector<double>{5, 6, 8, 9}));
}

TEST(IrOps, SliceConcatSelectAndConstantByHand) {
    Graph g;
    const NodeId x = g.add_input("x", f32(Shape{2, 3}));
    const NodeId column = slice_axis(g, x, 1, 1, 1);                        // x[:, 1:2]
    const NodeId odd = slice(g, x, SliceAttrs{{0, 0}, {2, 2}, {1, 2}});      // x[:, ::2]
    const NodeId joined = concat(g, {odd, column}, 1);                       // [x0 x2 x1] per row
    const NodeId mask = constant(g, Shape{3}, {1, 0, 1});
    const NodeId chosen = select(g, mask, x, scalar(g, -1.0));
    const NodeId placed = g.add(OpKind::SliceBackward, SliceBackwardAttrs{SliceAttrs{{1, 1}, {1, 2}, {1, 1}}, Shape{2, 3}},
                                {slice(g, x, SliceAttrs{{0, 0}, {1, 2}, {1, 1}})});
    const Bindings<double> bind = {{x, Buffer<double>(Shape{2, 3}, {1, 2, 3, 4, 5, 6})}};
    EXPECT_EQ(run(g, column, bind).data, (std::vector<double>{2, 5}));
    EXPECT_EQ(run(g, odd, bind).data, (std::vector<double>{1, 3, 4, 6}));
    EXPECT_EQ(run(g, joined, bind).data, (std::vector<double>{1, 3, 2, 4, 6, 5}));
    EXPECT_EQ(run(g, chosen, bind).data, (std::vector<double>{1, -1, 3, 4, -1, 6}));
    EXPECT_EQ(run(g, placed, bind).data, (std::vector<double>{0, 0, 0, 0, 1, 2}));
    EXPECT_THROW(slice(g, x, SliceAttrs{{0, 2}, {2, 2}, {1, 1}}), GraphError);  // reads column 3 of 3
    EXPECT_THROW(constant(g, Shape{2}, {1, 2, 3}), GraphError);
}

TEST(IrOps, LogSoftmaxByHandAndStableForLargeInputs) {
    Graph g;
    const NodeId x = g.add_input("x", f32(Shape{2, 3}));
    const NodeId y = log_softmax(g, x, 1);
    const Buffer<double> out = run(g, y, {{x, Buffer<double>(Shape{2, 3}, {0, 0, 0, 1000, 1000, 1000 + std::log(2.0)})}});
    EXPECT_NEAR(out.data[0], -std::log(3.0), 1e-12);
    EXPECT_NEAR(out.data[3], -std::log(4.0), 1e-12);  // exp would overflow without the max shift
    EXPECT_NEAR(out.data[5], std::log(2.0) - std::log(4.0), 1e-12);
}

TEST(IrOps, BinaryBroadcastingFollowsNumpy) {
    Graph g;
    const NodeId a = g.add_input("a", f32(Shape{2, 1}));
    const NodeId b = g.add_input("b", f32(Shape{3}));
    const NodeId s = sub(g, a, b);
    EXPECT_EQ(g.type(s).shape, (Shape{2, 3}));
    const Buffer<double> out =
        run(g, s, {{a, Buffer<double>(Shape{2, 1}, {10, 20})}, {b, Buffer<double>(Shape{3}, {1, 2, 3})}});
    EXPECT_EQ(out.data, (std::vector<double>{9, 8, 7, 19, 18, 17}));
}

TEST(IrOps, NaNPropagatesThroughReluAndMaximum) {
    Graph g;
    const NodeId x = g.add_input("x", f32(Shape{2}));
    const NodeId r = relu(g, x);
    const NodeId m = maximum(g, x, scalar(g, 0.0));
    const Bindings<double> bind = {{x, Buffer<double>(Shape{2}, {std::nan(""), -1.0})}};
    EXPECT_TRUE(std::isnan(run(g, r, bind).data[0]));
    EXPECT_EQ(run(g, r, bind).data[1], 0.0);
    EXPECT_TRUE(std::isnan(run(g, m, bind).data[0]));
}

// ---- the rounding ops --------------------------------------------------------------------------------------

struct RoundingGraph {
    Graph g;
    NodeId x;
    NodeId step;
    RoundingGraph() {
        x = g.add_input("x", f32(Shape{64}));
        step = g.add_input("step", f32(Shape{}));
    }
    Bindings<float> bind(const std::vector<float>& values, float step_value) const {
        return {{x, Buffer<float>(Shape{64}, values)}, {step, Buffer<float>(Shape{}, {step_value})}};
    }
};

std::vector<float> spread_values() {
    std::vector<float> v(64);
    for (std::size_t i = 0; i < v.size(); ++i) {
        v[i] = std::sin(static_cast<float>(i) * 0.7f) * 0.37f;
    }
    return v;
}

// Dropout keeps each element with probability 1 - ratio, scaled by 1 / (1 - ratio); the mask is a function of (seed,
// step, tensor id, element), so the gradient sees the forward's mask and another step or layer draws another.
TEST(IrDropout, KeepsOneMinusRatioScaledAndTheGradientSeesTheSameMask) {
    Graph g;
    const std::int64_t n = 100'000;
    const NodeId x = g.add_input("x", {DType::F32, Shape{n}});
    const NodeId step = g.add_input("step", {DType::F32, Shape{}});
    const NodeId y = dropout(g, x, step, DropoutAttrs{0.3, 11, 2});
    const NodeId other_layer = dropout(g, x, step, DropoutAttrs{0.3, 11, 3});
    const NodeId cotangent = g.add_input("g", {DType::F32, Shape{n}});
    const NodeId loss = reduce_sum(g, mul(g, y, cotangent), {});
    const std::vector<NodeId> wrt = {x};
    const NodeId dx = autodiff::gradients(g, loss, wrt)[0];
    auto run = [&](double step_value) {
        Bindings<double> values;
        values[x] = Buffer<double>(Shape{n}, std::vector<double>(static_cast<std::size_t>(n), 2.0));
        values[step] = Buffer<double>(Shape{}, {step_value});
        values[cotangent] = Buffer<double>(Shape{n}, std::vector<double>(static_cast<std::size_t>(n), 1.0));
        return evaluate(g, values);
    };
    const std::vector<Buffer<double>> first = run(1), again = run(1), second = run(2);
    std::int64_t kept = 0, same_as_next_step = 0, same_as_other_layer = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        const double v = first[y.index].data[i];
        ASSERT_TRUE(v == 0 || std::fabs(v - 2 / 0.7) < 1e-12) << i;
        kept += v != 0 ? 1 : 0;
        EXPECT_EQ(first[dx.index].data[i], v / 2) << "the gradient's mask is the forward's, element " << i;
        EXPECT_EQ(again[y.index].data[i], v);
        same_as_next_step += (second[y.index].data[i] != 0) == (v != 0) ? 1 : 0;
        same_as_other_layer += (first[other_layer.index].data[i] != 0) == (v != 0) ? 1 : 0;
    }
    // Binomial(1e5, 0.7): a standard deviation of 145; 5 of them.
    EXPECT_NEAR(static_cast<double>(kept), 0.7 * n, 725);
    // Independent masks agree on 0.7^2 + 0.3^2 = 58% of the elements; one mask reused would agree on all.
    EXPECT_NEAR(static_cast<double>(same_as_next_step), 0.58 * n, 1000);
    EXPECT_NEAR(static_cast<double>(same_as_other_layer), 0.58 * n, 1000);
}

TEST(IrRounding, RoundToUsesThePerTensorBiasFromMaxAbs) {
    RoundingGraph r;
    const NodeId y = round_to(r.g, r.x, r.step, RoundAttrs{numerics::FormatKind::Cfp8_143});
    const std::vector<float> in = spread_values();
    const std::vector<float> out = evaluate(r.g, r.bind(in, 0))[y.index].data.to_vector();
    // Independently: the largest bias whose max, 1.875 * 2^(15 - bias), still covers max |x|.
    float max_abs = 0;
    for (const float v : in) {
        max_abs = std::max(max_abs, std::fabs(v));
    }
    int bias = 0;
    for (int b = 0; b <= numerics::kMaxBias; ++b) {
        if (1.875 * std::ldexp(1.0, 15 - b) >= max_abs) {
            bias = b;
        }
    }
    const numerics::FormatSpec spec = numerics::make_format(numerics::FormatKind::Cfp8_143, bias);
    for (std::size_t i = 0; i < in.size(); ++i) {
        EXPECT_EQ(out[i], numerics::decode_one(numerics::encode_one(in[i], spec).code, spec)) << i;
    }
    EXPECT_NE(out, in);  // something was rounded
}

TEST(IrRounding, StochasticRoundingDependsOnTheStepAndTheTensor) {
    RoundingGraph r;
    RoundAttrs attrs{numerics::FormatKind::Cfp8_152, numerics::Rounding::Stochastic};
    const NodeId a = round_to(r.g, r.x, r.step, attrs);
    attrs.tensor_id = 1;
    const NodeId b = round_to(r.g, r.x, r.step, attrs);
    const auto step0 = evaluate(r.g, r.bind(spread_values(), 0));
    const auto again = evaluate(r.g, r.bind(spread_values(), 0));
    const auto step1 = evaluate(r.g, r.bind(spread_values(), 1));
    EXPECT_EQ(step0[a.index].data, again[a.index].data);
    EXPECT_NE(step0[a.index].data, step1[a.index].data);
    EXPECT_NE(step0[a.index].data, step0[b.index].data);
}

TEST(IrRounding, GradientsAreStraightThroughAndRoundGradRoundsTheGradient) {
    RoundingGraph r;
    const RoundAttrs attrs{numerics::FormatKind::Bf16};
    const NodeId y = round_to(r.g, r.x, r.step, attrs);
    const NodeId z = round_grad(r.g, r.x, r.step, attrs);
    const NodeId g_in = r.g.add_input("g", f32(Shape{64}));
    const std::vector<NodeId> dy = op_info(OpKind::RoundTo).gradient(r.g, y, g_in);
    const std::vector<NodeId> dz = op_info(OpKind::RoundGrad).gradient(r.g, z, g_in);
    EXPECT_EQ(dy[0], g_in);
    EXPECT_FALSE(dy[1].valid());
    EXPECT_FALSE(dz[1].valid());
    std::vector<float> gradient(64);
    for (std::size_t i = 0; i < gradient.size(); ++i) {
        gradient[i] = 1.0f + static_cast<float>(i) * 1e-4f;  // not representable in bf16
    }
    Bindings<float> bindings = r.bind(spread_values(), 0);
    bindings[g_in] = Buffer<float>(Shape{64}, gradient);
    const auto values = evaluate(r.g, bindings);
    EXPECT_EQ(values[z.index].data, spread_values());  // identity forward
    for (std::size_t i = 0; i < gradient.size(); ++i) {
        const float rounded = numerics::decode_one(
            numerics::encode_one(gradient[i], numerics::make_format(numerics::FormatKind::Bf16)).code,
            numerics::make_format(numerics::FormatKind::Bf16));
        EXPECT_EQ(values[dz[0].index].data[i], rounded) << i;
    }
}

TEST(IrRounding, NonFiniteTensorsPassUnchangedAndBadAttributesAreRejected) {
    RoundingGraph r;
    const NodeId y = round_to(r.g, r.x, r.step, RoundAttrs{numerics::FormatKind::Cfp8_143});
    std::vector<float> in = spread_values();
    in[3] = std::nanf("");
    const std::vector<float> out = evaluate(r.g, r.bind(in, 0))[y.index].data.to_vector();
    EXPECT_TRUE(std::isnan(out[3]));
    EXPECT_EQ(out[4], in[4]);
    EXPECT_THROW(round_to(r.g, r.x, r.step, RoundAttrs{numerics::FormatKind::Fp32}), GraphError);
    EXPECT_THROW(round_to(r.g, r.x, r.x, RoundAttrs{}), GraphError);  // step must be a scalar
}

}  // namespace
}  // namespace dojo::ir
