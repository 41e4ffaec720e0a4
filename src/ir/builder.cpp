#include "dojo/ir/builder.h"

#include <algorithm>
#include <memory>
#include <numeric>

#include "dojo/util/error.h"

namespace dojo::ir {

NodeId fill(Graph& g, double value, TensorType type, std::string name) {
    return g.add(OpKind::Fill, FillAttrs{value, std::move(type)}, {}, std::move(name));
}

NodeId scalar(Graph& g, double value) { return fill(g, value, TensorType{DType::F32, Shape{}}); }

NodeId constant(Graph& g, Shape shape, std::vector<float> values, std::string name) {
    return g.add(OpKind::Constant,
                 ConstantAttrs{TensorType{DType::F32, std::move(shape)},
                               std::make_shared<const std::vector<float>>(std::move(values))},
                 {}, std::move(name));
}

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

NodeId select(Graph& g, NodeId cond, NodeId a, NodeId b, std::string name) {
    return g.add(OpKind::Select, NoAttrs{}, {cond, a, b}, std::move(name));
}

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

NodeId slice(Graph& g, NodeId x, SliceAttrs attrs, std::string name) {
    return g.add(OpKind::Slice, std::move(attrs), {x}, std::move(name));
}

NodeId slice_axis(Graph& g, NodeId x, int axis, std::int64_t start, std::int64_t size, std::int64_t step,
                  std::string name) {
    const Shape shape = g.type(x).shape;
    const auto d = static_cast<std::size_t>(normalize_axis(axis, shape.rank(), "slice_axis"));
    SliceAttrs attrs{std::vector<std::int64_t>(shape.dims().size(), 0), shape.dims(),
                     std::vector<std::int64_t>(shape.dims().size(), 1)};
    attrs.starts[d] = start;
    attrs.sizes[d] = size;
    attrs.steps[d] = step;
    return slice(g, x, std::move(attrs), std::move(name));
}

NodeId gather(Graph& g, NodeId table, NodeId ids, std::string name) {
    return g.add(OpKind::Gather, NoAttrs{}, {table, ids}, std::move(name));
}

NodeId one_hot(Graph& g, NodeId ids, std::int64_t depth, std::string name) {
    return g.add(OpKind::OneHot, OneHotAttrs{depth}, {ids}, std::move(name));
}

NodeId concat(Graph& g, const std::vector<NodeId>& parts, int axis, std::string name) {
    if (parts.empty()) {
        throw GraphError("concat of no tensors");
    }
    std::vector<std::int64_t> dims = g.type(parts.front()).shape.dims();
    const auto d = static_cast<std::size_t>(normalize_axis(axis, static_cast<int>(dims.size()), "concat"));
    dims[d] = 0;
    for (const NodeId part : parts) {
        const Shape shape = g.type(part).shape;
        if (shape.rank() != static_cast<int>(dims.size())) {
            throw GraphError("concat: parts of different ranks");
        }
        dims[d] += shape[static_cast<int>(d)];
    }
    const Shape whole(dims);
    NodeId sum;
    std::int64_t offset = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const std::vector<std::int64_t> part = g.type(parts[i]).shape.dims();
        SliceAttrs box{std::vector<std::int64_t>(part.size(), 0), part, std::vector<std::int64_t>(part.size(), 1)};
        box.starts[d] = offset;
        offset += part[d];
        const NodeId placed = g.add(OpKind::SliceBackward, SliceBackwardAttrs{box, whole}, {parts[i]},
                                    i + 1 == parts.size() && parts.size() == 1 ? name : "");
        sum = sum.valid() ? add(g, sum, placed, i + 1 == parts.size() ? name : "") : placed;
    }
    return sum;
}

NodeId reduce_mean(Graph& g, NodeId x, std::vector<int> axes, bool keep_dims, std::string name) {
    const Shape shape = g.type(x).shape;
    std::int64_t count = 1;
    if (axes.empty()) {
        count = shape.numel();
    }
    for (const int axis : axes) {
        count *= shape[normalize_axis(axis, shape.rank(), "reduce_mean")];
    }
    const NodeId sum = reduce_sum(g, x, std::move(axes), keep_dims);
    return mul(g, sum, scalar(g, 1.0 / static_cast<double>(std::max<std::int64_t>(count, 1))), std::move(name));
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

NodeId dropout(Graph& g, NodeId x, NodeId step, DropoutAttrs attrs, std::string name) {
    return g.add(OpKind::Dropout, attrs, {x, step}, std::move(name));
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
