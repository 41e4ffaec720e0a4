// ReduceSum over a set of axes.
#include <algorithm>

#include "dojo/ir/builder.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

// The reduced axes, normalised, sorted and unique; all axes when none are given.
std::vector<int> reduced_axes(const Node& node, int rank) {
    const ReduceAttrs& attrs = attrs_of<ReduceAttrs>(node);
    std::vector<int> axes;
    if (attrs.axes.empty()) {
        for (int axis = 0; axis < rank; ++axis) {
            axes.push_back(axis);
        }
        return axes;
    }
    for (const int axis : attrs.axes) {
        axes.push_back(normalize_axis(axis, rank, label(node)));
    }
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) {
        fail(node, "an axis is listed twice");
    }
    return axes;
}

Shape kept_shape(const Shape& in, const std::vector<int>& axes) {  // reduced axes set to 1
    std::vector<std::int64_t> dims = in.dims();
    for (const int axis : axes) {
        dims[static_cast<std::size_t>(axis)] = 1;
    }
    return Shape(std::move(dims));
}

TensorType reduce_sum_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    const std::vector<int> axes = reduced_axes(node, in[0].shape.rank());
    const Shape kept = kept_shape(in[0].shape, axes);
    if (attrs_of<ReduceAttrs>(node).keep_dims) {
        return TensorType{DType::F32, kept};
    }
    std::vector<std::int64_t> dims;
    for (int axis = 0; axis < kept.rank(); ++axis) {
        if (!std::binary_search(axes.begin(), axes.end(), axis)) {
            dims.push_back(kept[axis]);
        }
    }
    return TensorType{DType::F32, Shape(std::move(dims))};
}

// Walks the input in row-major order adding into its output element, so each output is summed in increasing
// input index order.
template <typename T>
void reduce_sum_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Buffer<T>& x = *in[0];
    const Shape kept = kept_shape(x.shape, reduced_axes(node, x.shape.rank()));
    std::fill(out.data.begin(), out.data.end(), T(0));
    // Rows of the input, each adding into one output element (stride 0) or into a run of them (stride 1), in
    // row-major input order: the same sums, in the same order, as an element-by-element walk.
    BroadcastRows rows(x.shape, {&kept});
    const std::int64_t length = rows.row_length();
    const T* row = x.data.data();
    for (std::int64_t r = 0; r < rows.rows(); ++r, rows.next_row(), row += length) {
        T* o = out.data.data() + rows.offset(0);
        if (rows.inner_stride(0) == 0) {
            T sum = *o;
            for (std::int64_t j = 0; j < length; ++j) {
                sum += row[j];
            }
            *o = sum;
        } else {
            for (std::int64_t j = 0; j < length; ++j) {
                o[j] += row[j];
            }
        }
    }
}

std::vector<NodeId> reduce_sum_grad(Graph& g, NodeId y, NodeId grad) {
    const Node& node = g.node(y);
    const Shape x_shape = g.type(node.inputs[0]).shape;
    const Shape kept = kept_shape(x_shape, reduced_axes(node, x_shape.rank()));
    const NodeId shaped = g.type(grad).shape == kept ? grad : reshape(g, grad, kept);
    return {broadcast_to(g, shaped, x_shape)};
}

OpCost reduce_sum_cost(const Node& node, std::span<const TensorType> in) {
    OpCost cost = elementwise_cost(node, in, 0);
    cost.flops = static_cast<double>(in[0].shape.numel());
    return cost;
}

}  // namespace

extern const OpInfo kReduceSumOp = {OpKind::ReduceSum,          "ReduceSum", 1, kAttrsIndex<ReduceAttrs>,
                                    &reduce_sum_shape,          &reduce_sum_kernel<float>,
                                    &reduce_sum_kernel<double>, &reduce_sum_grad, &reduce_sum_cost};

}  // namespace dojo::ir::ops
