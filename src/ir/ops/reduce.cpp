// ReduceSum over a set of axes.
#include <algorithm>

#include "dojo/ir/builder.h"
#include "dojo/ir/reduce.h"
#include "op_support.h"

namespace dojo::ir::ops {

// The reduced axes, normalised, sorted and unique; all axes when none are given.
static std::vector<int> reduced_axes(const Node& node, int rank) {
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

static Shape kept_shape(const Shape& in, const std::vector<int>& axes) {  // reduced axes set to 1
    std::vector<std::int64_t> dims = in.dims();
    for (const int axis : axes) {
        dims[static_cast<std::size_t>(axis)] = 1;
    }
    return Shape(std::move(dims));
}

namespace {

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

template <typename T>
T row_sum(const T* row, std::int64_t length) {  // ReduceSum's order (reduce.h: RowSum)
    RowSum<T> sum(length);
    sum.add(row, 0, length);
    return sum.total();
}

// The input is a sequence of rows (BroadcastRows over the kept shape), each adding into one output element
// (stride 0: the row's row_sum) or into a run of them (stride 1: element-wise). Every output element receives its
// rows' contributions in row order; threads split the output elements, never one element's sum, so the result is
// the same for every thread count.
template <typename T>
void reduce_sum_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Buffer<T>& x = *in[0];
    const Shape kept = kept_shape(x.shape, reduced_axes(node, x.shape.rank()));
    std::fill(out.data.begin(), out.data.end(), T(0));
    BroadcastRows rows(x.shape, {&kept});
    const std::int64_t length = rows.row_length();
    std::vector<std::int64_t> offsets(static_cast<std::size_t>(rows.rows()));  // each row's first output element
    for (std::int64_t r = 0; r < rows.rows(); ++r, rows.next_row()) {
        offsets[static_cast<std::size_t>(r)] = rows.offset(0);
    }
    const T* data = x.data.data();
    T* o = out.data.data();
    const std::int64_t outputs = static_cast<std::int64_t>(out.data.size());
    if (rows.inner_stride(0) == 0) {
        const std::int64_t work_per_output = std::max<std::int64_t>(1, x.shape.numel() / std::max<std::int64_t>(outputs, 1));
        parallel_for(outputs, std::max<std::int64_t>(1, kMinParallelElements / work_per_output),
                     [&](std::int64_t first, std::int64_t last) {
                         for (std::size_t r = 0; r < offsets.size(); ++r) {
                             if (offsets[r] >= first && offsets[r] < last) {
                                 o[offsets[r]] += row_sum(data + static_cast<std::int64_t>(r) * length, length);
                             }
                         }
                     });
        return;
    }
    parallel_for(length, std::max<std::int64_t>(1, kMinParallelElements / std::max<std::int64_t>(rows.rows(), 1)),
                 [&](std::int64_t first, std::int64_t last) {
                     for (std::size_t r = 0; r < offsets.size(); ++r) {
                         const T* row = data + static_cast<std::int64_t>(r) * length;
                         T* into = o + offsets[r];
                         for (std::int64_t j = first; j < last; ++j) {
                             into[j] += row[j];
                         }
                     }
                 });
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

namespace dojo::ir {

Shape reduce_kept_shape(const Graph& graph, NodeId node) {
    const Node& n = graph.node(node);
    const Shape& in = graph.type(n.inputs[0]).shape;
    return ops::kept_shape(in, ops::reduced_axes(n, in.rank()));
}

}  // namespace dojo::ir
