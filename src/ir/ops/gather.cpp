// Gather (rows of a table picked by ids: embedding lookups, ONNX Gather on axis 0 with data indices), its adjoint
// GatherBackward (rows added back into a zero table at the ids), and OneHot (ids as rows of an identity matrix: the
// token labels of a language model's loss). Ids are data: whole numbers stored as floats, checked when the kernel
// runs (an id out of range is the user's input, reported as such).
#include <cmath>

#include "dojo/ir/builder.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

void require_ids(const Node& node, const TensorType& ids) {
    if (ids.dtype != DType::F32 && ids.dtype != DType::I64) {
        fail(node, "ids must be I64 (or F32 holding whole numbers), got " + std::string(dtype_info(ids.dtype).name));
    }
}

// The output shape: the ids' shape followed by a table row's shape.
Shape gathered_shape(const Shape& table, const Shape& ids) {
    std::vector<std::int64_t> dims = ids.dims();
    dims.insert(dims.end(), table.dims().begin() + 1, table.dims().end());
    return Shape(std::move(dims));
}

// Every id must be a whole number in [0, rows): checked before anything is written, so a bad id (the user's data)
// leaves no half-written output.
template <typename T>
void check_ids(const Node& node, const Storage<T>& ids, std::int64_t rows) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const T id = ids[i];
        if (!(id >= T(0)) || id >= static_cast<T>(rows) || std::floor(id) != id) {
            fail(node, "id " + std::to_string(static_cast<double>(id)) + " at position " + std::to_string(i) +
                           " is not a whole number in [0, " + std::to_string(rows) + ")");
        }
    }
}

TensorType gather_shape(const Node& node, std::span<const TensorType> in) {
    if (in[0].dtype != DType::F32) {
        fail(node, "the table must be F32");
    }
    require_ids(node, in[1]);
    if (in[0].shape.rank() < 1) {
        fail(node, "the table needs at least one axis (its rows)");
    }
    return TensorType{DType::F32, gathered_shape(in[0].shape, in[1].shape)};
}

template <typename T>
void gather_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Buffer<T>& table = *in[0];
    const Buffer<T>& ids = *in[1];
    const std::int64_t rows = table.shape[0];
    const std::int64_t width = rows == 0 ? 0 : table.shape.numel() / rows;
    const auto count = static_cast<std::int64_t>(ids.data.size());
    check_ids(node, ids.data, rows);
    parallel_for(count, std::max<std::int64_t>(1, kMinParallelElements / std::max<std::int64_t>(width, 1)),
                 [&](std::int64_t first, std::int64_t last) {
                     for (std::int64_t i = first; i < last; ++i) {
                         const auto row = static_cast<std::int64_t>(ids.data[static_cast<std::size_t>(i)]);
                         std::copy_n(table.data.begin() + row * width, width, out.data.begin() + i * width);
                     }
                 });
}

std::vector<NodeId> gather_grad(Graph& g, NodeId y, NodeId grad) {
    const Node& node = g.node(y);
    const NodeId ids = node.inputs[1];
    const Shape table = g.type(node.inputs[0]).shape;
    return {g.add(OpKind::GatherBackward, GatherBackwardAttrs{table}, {grad, ids}), NodeId{}};
}

OpCost gather_cost(const Node& node, std::span<const TensorType> in) {
    OpCost cost;
    cost.bytes_read = bytes_of(node.type) + bytes_of(in[1]);  // the rows read, not the whole table
    cost.bytes_written = bytes_of(node.type);
    cost.unit = ComputeUnit::None;
    return cost;
}

TensorType gather_backward_shape(const Node& node, std::span<const TensorType> in) {
    const Shape& table = attrs_of<GatherBackwardAttrs>(node).table;
    if (in[0].dtype != DType::F32) {
        fail(node, "the gradient must be F32");
    }
    require_ids(node, in[1]);
    if (table.rank() < 1 || !(in[0].shape == gathered_shape(table, in[1].shape))) {
        fail(node, "gradient " + in[0].shape.to_string() + " does not match ids " + in[1].shape.to_string() +
                       " and table " + table.to_string());
    }
    return TensorType{DType::F32, table};
}

// Rows are added in id-position order; threads split the row's columns, never a sum, so the result does not
// depend on the thread count.
template <typename T>
void gather_backward_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Buffer<T>& g = *in[0];
    const Buffer<T>& ids = *in[1];
    const std::int64_t rows = out.shape[0];
    const std::int64_t width = rows == 0 ? 0 : out.shape.numel() / rows;
    const auto count = static_cast<std::int64_t>(ids.data.size());
    check_ids(node, ids.data, rows);
    std::fill(out.data.begin(), out.data.end(), T(0));
    parallel_for(width, std::max<std::int64_t>(1, kMinParallelElements / std::max<std::int64_t>(count, 1)),
                 [&](std::int64_t first, std::int64_t last) {
                     for (std::int64_t i = 0; i < count; ++i) {
                         const auto row = static_cast<std::int64_t>(ids.data[static_cast<std::size_t>(i)]);
                         T* into = out.data.data() + row * width;
                         const T* from = g.data.data() + i * width;
                         for (std::int64_t j = first; j < last; ++j) {
                             into[j] += from[j];
                         }
                     }
                 });
}

std::vector<NodeId> gather_backward_grad(Graph& g, NodeId y, NodeId grad) {  // linear in g: its adjoint is Gather
    return {gather(g, grad, g.node(y).inputs[1]), NodeId{}};
}

OpCost gather_backward_cost(const Node& node, std::span<const TensorType> in) {
    OpCost cost;
    cost.flops = static_cast<double>(in[0].shape.numel());
    cost.bytes_read = bytes_of(in[0]) + bytes_of(in[1]) + bytes_of(in[0]);  // g, ids, and the rows added into
    cost.bytes_written = bytes_of(node.type);
    cost.unit = ComputeUnit::Vector;
    return cost;
}

TensorType one_hot_shape(const Node& node, std::span<const TensorType> in) {
    require_ids(node, in[0]);
    const std::int64_t depth = attrs_of<OneHotAttrs>(node).depth;
    if (depth < 1) {
        fail(node, "depth must be at least 1, got " + std::to_string(depth));
    }
    std::vector<std::int64_t> dims = in[0].shape.dims();
    dims.push_back(depth);
    return TensorType{DType::F32, Shape(std::move(dims))};
}

template <typename T>
void one_hot_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Buffer<T>& ids = *in[0];
    const std::int64_t depth = attrs_of<OneHotAttrs>(node).depth;
    check_ids(node, ids.data, depth);
    std::fill(out.data.begin(), out.data.end(), T(0));
    for (std::size_t i = 0; i < ids.data.size(); ++i) {
        out.data[i * static_cast<std::size_t>(depth) + static_cast<std::size_t>(ids.data[i])] = T(1);
    }
}

OpCost one_hot_cost(const Node& node, std::span<const TensorType> in) {
    OpCost cost;
    cost.bytes_read = bytes_of(in[0]);
    cost.bytes_written = bytes_of(node.type);
    cost.unit = ComputeUnit::None;
    return cost;
}

}  // namespace

extern const OpInfo kOneHotOp = {OpKind::OneHot,          "OneHot",  1, kAttrsIndex<OneHotAttrs>, &one_hot_shape,
                                 &one_hot_kernel<float>, &one_hot_kernel<double>, nullptr, &one_hot_cost};
extern const OpInfo kGatherOp = {OpKind::Gather,          "Gather",  2, kAttrsIndex<NoAttrs>, &gather_shape,
                                 &gather_kernel<float>, &gather_kernel<double>, &gather_grad, &gather_cost};
extern const OpInfo kGatherBackwardOp = {OpKind::GatherBackward,
                                         "GatherBackward",
                                         2,
                                         kAttrsIndex<GatherBackwardAttrs>,
                                         &gather_backward_shape,
                                         &gather_backward_kernel<float>,
                                         &gather_backward_kernel<double>,
                                         &gather_backward_grad,
                                         &gather_backward_cost};

}  // namespace dojo::ir::ops
