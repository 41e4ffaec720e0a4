// Layout ops: Reshape (same elements, new shape), Transpose (permute axes), BroadcastTo (replicate).
#include <algorithm>
#include <numeric>

#include "dojo/ir/builder.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

// ---- Reshape ------------------------------------------------------------------------------------------------

TensorType reshape_shape(const Node& node, std::span<const TensorType> in) {
    const Shape& to = attrs_of<ReshapeAttrs>(node).shape;
    if (to.numel() != in[0].shape.numel()) {
        fail(node, "cannot reshape " + in[0].shape.to_string() + " (" + std::to_string(in[0].shape.numel()) +
                       " elements) to " + to.to_string() + " (" + std::to_string(to.numel()) + " elements)");
    }
    return TensorType{in[0].dtype, to};
}

template <typename T>
void copy_kernel(const Node&, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    out.data = in[0]->data;
}

std::vector<NodeId> reshape_grad(Graph& g, NodeId y, NodeId grad) {
    return {reshape(g, grad, g.type(g.node(y).inputs[0]).shape)};
}

OpCost view_cost(const Node&, std::span<const TensorType>) { return {}; }  // a reshape moves no data

// ---- Transpose ----------------------------------------------------------------------------------------------

TensorType transpose_shape(const Node& node, std::span<const TensorType> in) {
    const std::vector<int>& perm = attrs_of<TransposeAttrs>(node).perm;
    const Shape& x = in[0].shape;
    std::vector<int> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int> identity(static_cast<std::size_t>(x.rank()));
    std::iota(identity.begin(), identity.end(), 0);
    if (sorted != identity) {
        fail(node, "perm must be a permutation of 0.." + std::to_string(x.rank() - 1) + " for input " + x.to_string());
    }
    std::vector<std::int64_t> dims;
    for (const int axis : perm) {
        dims.push_back(x[axis]);
    }
    return TensorType{in[0].dtype, Shape(std::move(dims))};
}

template <typename T>
void transpose_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const std::vector<int>& perm = attrs_of<TransposeAttrs>(node).perm;
    const std::vector<std::int64_t> in_strides = strides_of(in[0]->shape);
    // A view of the input with permuted strides, walked in the output's order.
    std::vector<std::int64_t> dims = out.shape.dims();
    std::vector<std::int64_t> strides;
    for (const int axis : perm) {
        strides.push_back(in_strides[static_cast<std::size_t>(axis)]);
    }
    std::vector<std::int64_t> coords(dims.size(), 0);
    std::int64_t offset = 0;
    for (std::size_t i = 0; i < out.data.size(); ++i) {
        out.data[i] = in[0]->data[static_cast<std::size_t>(offset)];
        for (std::size_t axis = dims.size(); axis-- > 0;) {
            offset += strides[axis];
            if (++coords[axis] < dims[axis]) {
                break;
            }
            offset -= strides[axis] * dims[axis];
            coords[axis] = 0;
        }
    }
}

std::vector<NodeId> transpose_grad(Graph& g, NodeId y, NodeId grad) {
    const std::vector<int>& perm = attrs_of<TransposeAttrs>(g.node(y)).perm;
    std::vector<int> inverse(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) {
        inverse[static_cast<std::size_t>(perm[i])] = static_cast<int>(i);
    }
    return {transpose(g, grad, inverse)};
}

OpCost copy_cost(const Node& node, std::span<const TensorType> in) { return elementwise_cost(node, in, 0); }

// ---- BroadcastTo --------------------------------------------------------------------------------------------

TensorType broadcast_shape(const Node& node, std::span<const TensorType> in) {
    const Shape& to = attrs_of<BroadcastAttrs>(node).shape;
    bool ok = to.rank() >= in[0].shape.rank();
    if (ok) {
        try {
            ok = broadcast_shapes(in[0].shape, to) == to;
        } catch (const GraphError&) {
            ok = false;
        }
    }
    if (!ok) {
        fail(node, "cannot broadcast " + in[0].shape.to_string() + " to " + to.to_string());
    }
    return TensorType{in[0].dtype, to};
}

template <typename T>
void broadcast_kernel(const Node&, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    BroadcastRows rows(out.shape, {&in[0]->shape});
    const std::int64_t length = rows.row_length();
    T* y = out.data.data();
    for (std::int64_t r = 0; r < rows.rows(); ++r, rows.next_row(), y += length) {
        const T* x = in[0]->data.data() + rows.offset(0);
        if (rows.inner_stride(0) == 1) {
            std::copy(x, x + length, y);
        } else {
            std::fill(y, y + length, *x);
        }
    }
}

std::vector<NodeId> broadcast_grad(Graph& g, NodeId y, NodeId grad) {
    return {sum_to_shape(g, grad, g.type(g.node(y).inputs[0]).shape)};
}

}  // namespace

extern const OpInfo kReshapeOp = {OpKind::Reshape,      "Reshape", 1, kAttrsIndex<ReshapeAttrs>, &reshape_shape,
                                  &copy_kernel<float>, &copy_kernel<double>, &reshape_grad, &view_cost};
extern const OpInfo kTransposeOp = {OpKind::Transpose,        "Transpose", 1, kAttrsIndex<TransposeAttrs>,
                                    &transpose_shape,         &transpose_kernel<float>,
                                    &transpose_kernel<double>, &transpose_grad, &copy_cost};
extern const OpInfo kBroadcastToOp = {OpKind::BroadcastTo,       "BroadcastTo", 1, kAttrsIndex<BroadcastAttrs>,
                                      &broadcast_shape,          &broadcast_kernel<float>,
                                      &broadcast_kernel<double>, &broadcast_grad, &copy_cost};

}  // namespace dojo::ir::ops
