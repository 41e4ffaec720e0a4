// LogSoftmax along one axis: y = x - max - log(sum(exp(x - max))), stable for any magnitude of x.
#include <algorithm>
#include <cmath>

#include "dojo/ir/builder.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

TensorType log_softmax_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    normalize_axis(attrs_of<AxisAttrs>(node).axis, in[0].shape.rank(), label(node));
    return in[0];
}

template <typename T>
void log_softmax_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Shape& shape = in[0]->shape;
    const int axis = normalize_axis(attrs_of<AxisAttrs>(node).axis, shape.rank(), label(node));
    const std::int64_t length = shape[axis];
    const std::int64_t inner = strides_of(shape)[static_cast<std::size_t>(axis)];
    const std::int64_t outer = shape.numel() / (length * inner);
    const Storage<T>& x = in[0]->data;
    parallel_for(outer, std::max<std::int64_t>(1, kMinParallelElements / std::max<std::int64_t>(length * inner, 1)),
                 [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t o = first; o < last; ++o) {
        for (std::int64_t i = 0; i < inner; ++i) {
            const std::int64_t base = o * length * inner + i;
            T max = x[static_cast<std::size_t>(base)];
            for (std::int64_t j = 1; j < length; ++j) {
                max = std::max(max, x[static_cast<std::size_t>(base + j * inner)]);
            }
            T sum = 0;
            for (std::int64_t j = 0; j < length; ++j) {
                sum += std::exp(x[static_cast<std::size_t>(base + j * inner)] - max);
            }
            const T log_sum = std::log(sum);
            for (std::int64_t j = 0; j < length; ++j) {
                const auto at = static_cast<std::size_t>(base + j * inner);
                out.data[at] = x[at] - max - log_sum;
            }
        }
    }
    });
}

// dx = g - softmax(x) * sum(g) along the axis, softmax(x) = exp(y).
std::vector<NodeId> log_softmax_grad(Graph& g, NodeId y, NodeId grad) {
    const int axis = attrs_of<AxisAttrs>(g.node(y)).axis;
    const NodeId total = reduce_sum(g, grad, {axis}, /*keep_dims=*/true);
    return {sub(g, grad, mul(g, exp(g, y), total))};
}

OpCost log_softmax_cost(const Node& node, std::span<const TensorType> in) {
    return elementwise_cost(node, in, 5);  // max, subtract, exp, sum, subtract
}

}  // namespace

extern const OpInfo kLogSoftmaxOp = {OpKind::LogSoftmax,          "LogSoftmax", 1, kAttrsIndex<AxisAttrs>,
                                     &log_softmax_shape,          &log_softmax_kernel<float>,
                                     &log_softmax_kernel<double>, &log_softmax_grad, &log_softmax_cost};

}  // namespace dojo::ir::ops
