#include "dojo/ir/builder.h"

#include <numeric>

namespace dojo::ir {

NodeId fill(Graph& g, double value, TensorType type, std::string name) {
    return g.add(OpKind::Fill, FillAttrs{value, std::move(type)}, {}, std::move(name));
}

NodeId scalar(Graph& g, double value) { return fill(g, value, TensorType{DType::F32, Shape{}}); }

#define DOJO_UNARY_BUILDER(function, kind) \
    NodeId function(Graph& g, NodeId x, std::string name) { return g.add(OpKind::kind, NoAttrs{}, {x}, std::move(name)); }
#define DOJO_BINARY_BUILDER(function, kind)                                       \
    NodeId function(Graph& g, NodeId a, NodeId b, std::string name) {             \
        return g.add(OpKind::kind, NoAttrs{}, {a, b}, std::move(name));           \
    }

DOJO_UNARY_BUILDER(neg, Neg)
DOJO_UNARY_BUILDER(exp, Exp)
DOJO_UNARY_BUILDER(log, Log)
DOJO_UNARY_BUILDER(sqrt, Sqrt)
DOJO_UNARY_BUILDER(tanh, Tanh)
DOJO_UNARY_BUILDER(sigmoid, Sigmoid)
DOJO_UNARY_BUILDER(relu, Relu)
DOJO_UNARY_BUILDER(step, Step)
DOJO_UNARY_BUILDER(erf, Erf)
DOJO_BINARY_BUILDER(add, Add)
DOJO_BINARY_BUILDER(sub, Sub)
DOJO_BINARY_BUILDER(mul, Mul)
DOJO_BINARY_BUILDER(div, Div)
DOJO_BINARY_BUILDER(maximum, Maximum)
DOJO_BINARY_BUILDER(matmul, MatMul)

#undef DOJO_UNARY_BUILDER
#undef DOJO_BINARY_BUILDER

NodeId reduce_sum(Graph& g, NodeId x, std::vector<int> axes, bool keep_dims, std::string name) {
    return g.add(OpKind::ReduceSum, ReduceAttrs{std::move(axes), keep_dims}, {x}, std::move(name));
}

NodeId reshape(Graph& g, NodeId x, Shape shape, std::string name) {
    return g.add(OpKind::Reshape, ReshapeAttrs{std::move(shape)}, {x}, std::move(name));
}

NodeId transpose(Graph& g, NodeId x, std::vector<int> perm, std::string name) {
    return g.add(OpKind::Transpose, TransposeAttrs{std::move(perm)}, {x}, std::move(name));
}

NodeId broadcast_to(Graph& g, NodeId x, Shape shape, std::string name) {
    return g.add(OpKind::BroadcastTo, BroadcastAttrs{std::move(shape)}, {x}, std::move(name));
}

NodeId log_softmax(Graph& g, NodeId x, int axis, std::string name) {
    return g.add(OpKind::LogSoftmax, AxisAttrs{axis}, {x}, std::move(name));
}

NodeId conv2d(Graph& g, NodeId x, NodeId w, Conv2dAttrs attrs, std::string name) {
    return g.add(OpKind::Conv2d, attrs, {x, w}, std::move(name));
}

NodeId max_pool2d(Graph& g, NodeId x, PoolAttrs attrs, std::string name) {
    return g.add(OpKind::MaxPool2d, attrs, {x}, std::move(name));
}

NodeId round_to(Graph& g, NodeId x, NodeId step, RoundAttrs attrs, std::string name) {
    return g.add(OpKind::RoundTo, attrs, {x, step}, std::move(name));
}

NodeId round_grad(Graph& g, NodeId x, NodeId step, RoundAttrs attrs, std::string name) {
    return g.add(OpKind::RoundGrad, attrs, {x, step}, std::move(name));
}

NodeId transpose_last_two(Graph& g, NodeId x) {
    const int rank = g.type(x).shape.rank();
    std::vector<int> perm(static_cast<std::size_t>(rank));
    std::iota(perm.begin(), perm.end(), 0);
    if (rank >= 2) {
        std::swap(perm[static_cast<std::size_t>(rank) - 1], perm[static_cast<std::size_t>(rank) - 2]);
    }
    return transpose(g, x, perm);
}

NodeId sum_to_shape(Graph& g, NodeId x, Shape shape) {
    const Shape from = g.type(x).shape;  // a copy: adding nodes below may move the graph's storage
    if (from == shape) {
        return x;
    }
    const int extra = from.rank() - shape.rank();
    std::vector<int> axes;
    for (int axis = 0; axis < from.rank(); ++axis) {
        if (axis < extra || (shape[axis - extra] == 1 && from[axis] != 1)) {
            axes.push_back(axis);
        }
    }
    const NodeId summed = axes.empty() ? x : reduce_sum(g, x, axes, /*keep_dims=*/true);
    return g.type(summed).shape == shape ? summed : reshape(g, summed, shape);
}

}  // namespace dojo::ir
