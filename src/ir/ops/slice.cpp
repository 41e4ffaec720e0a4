// Slice (a strided box of a tensor) and its adjoint SliceBackward (the box written into zeros). ONNX Slice, Split,
// Gather with constant indices and Concat all lower onto these two.
#include <algorithm>

#include "op_support.h"

namespace dojo::ir::ops {
namespace {

// Checks a slice against the shape of the tensor it reads; returns the slice's output shape.
Shape checked_slice(const Node& node, const SliceAttrs& a, const Shape& x) {
    const auto rank = static_cast<std::size_t>(x.rank());
    if (a.starts.size() != rank || a.sizes.size() != rank || a.steps.size() != rank) {
        fail(node, "needs one start, size and step per axis of " + x.to_string());
    }
    for (std::size_t d = 0; d < rank; ++d) {
        const std::int64_t dim = x[static_cast<int>(d)];
        if (a.starts[d] < 0 || a.sizes[d] < 0 || a.steps[d] < 1 ||
            (a.sizes[d] > 0 && a.starts[d] + (a.sizes[d] - 1) * a.steps[d] >= dim)) {
            fail(node, "axis " + std::to_string(d) + ": start " + std::to_string(a.starts[d]) + ", size " +
                           std::to_string(a.sizes[d]) + ", step " + std::to_string(a.steps[d]) +
                           " does not fit in dimension " + std::to_string(dim));
        }
    }
    return Shape(a.sizes);
}

// Visits the elements of the box in row-major order: f(i, at) with i the box's flat index and `at` the element's
// flat index in the sliced tensor of shape `x`.
template <typename F>
void for_each_in_box(const SliceAttrs& a, const Shape& x, F&& f) {
    const std::vector<std::int64_t> x_strides = strides_of(x);
    const std::size_t rank = a.sizes.size();
    std::int64_t base = 0;
    std::int64_t count = 1;
    std::vector<std::int64_t> strides(rank);
    for (std::size_t d = 0; d < rank; ++d) {
        base += a.starts[d] * x_strides[d];
        strides[d] = a.steps[d] * x_strides[d];
        count *= a.sizes[d];
    }
    if (count == 0) {
        return;
    }
    std::vector<std::int64_t> coords(rank, 0);
    std::int64_t at = base;
    for (std::int64_t i = 0; i < count; ++i) {
        f(static_cast<std::size_t>(i), static_cast<std::size_t>(at));
        for (std::size_t d = rank; d-- > 0;) {  // odometer step
            at += strides[d];
            if (++coords[d] < a.sizes[d]) {
                break;
            }
            at -= strides[d] * a.sizes[d];
            coords[d] = 0;
        }
    }
}

TensorType slice_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    return TensorType{DType::F32, checked_slice(node, attrs_of<SliceAttrs>(node), in[0].shape)};
}

template <typename T>
void slice_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Storage<T>& x = in[0]->data;
    for_each_in_box(attrs_of<SliceAttrs>(node), in[0]->shape, [&](std::size_t i, std::size_t at) { out.data[i] = x[at]; });
}

std::vector<NodeId> slice_grad(Graph& g, NodeId y, NodeId grad) {
    const SliceAttrs attrs = attrs_of<SliceAttrs>(g.node(y));
    const Shape x = g.type(g.node(y).inputs[0]).shape;
    return {g.add(OpKind::SliceBackward, SliceBackwardAttrs{attrs, x}, {grad})};
}

TensorType slice_backward_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    const SliceBackwardAttrs& a = attrs_of<SliceBackwardAttrs>(node);
    if (!(checked_slice(node, a.slice, a.shape) == in[0].shape)) {
        fail(node, "gradient " + in[0].shape.to_string() + " does not match the slice's shape");
    }
    return TensorType{DType::F32, a.shape};
}

template <typename T>
void slice_backward_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const SliceBackwardAttrs& a = attrs_of<SliceBackwardAttrs>(node);
    const Storage<T>& g = in[0]->data;
    std::fill(out.data.begin(), out.data.end(), T(0));
    for_each_in_box(a.slice, a.shape, [&](std::size_t i, std::size_t at) { out.data[at] = g[i]; });  // distinct `at`
}

std::vector<NodeId> slice_backward_grad(Graph& g, NodeId y, NodeId grad) {
    const SliceAttrs attrs = attrs_of<SliceBackwardAttrs>(g.node(y)).slice;
    return {g.add(OpKind::Slice, attrs, {grad})};
}

OpCost copy_cost(const Node& node, std::span<const TensorType> in) {
    OpCost cost = elementwise_cost(node, in, 0);
    cost.bytes_read = std::min(cost.bytes_read, cost.bytes_written);  // only the box is read
    return cost;
}

}  // namespace

extern const OpInfo kSliceOp = {OpKind::Slice,         "Slice",  1, kAttrsIndex<SliceAttrs>, &slice_shape,
                                &slice_kernel<float>, &slice_kernel<double>, &slice_grad, &copy_cost};
extern const OpInfo kSliceBackwardOp = {OpKind::SliceBackward, "SliceBackward", 1, kAttrsIndex<SliceBackwardAttrs>,
                                        &slice_backward_shape, &slice_backward_kernel<float>,
                                        &slice_backward_kernel<double>, &slice_backward_grad, &copy_cost};

}  // namespace dojo::ir::ops
