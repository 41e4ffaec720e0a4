// MatMul: [..., m, k] x [..., k, n] -> [..., m, n] with broadcast batch dimensions.
#include <algorithm>

#include "dojo/ir/builder.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

Shape batch_of(const Shape& s) {
    return Shape(std::vector<std::int64_t>(s.dims().begin(), s.dims().end() - 2));
}

TensorType matmul_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    const Shape& a = in[0].shape;
    const Shape& b = in[1].shape;
    if (a.rank() < 2 || b.rank() < 2) {
        fail(node, "operands " + a.to_string() + " x " + b.to_string() +
                       " need rank >= 2 ([..., m, k] x [..., k, n]); reshape vectors to matrices first");
    }
    if (a[a.rank() - 1] != b[b.rank() - 2]) {
        fail(node, "inner dimensions differ: " + a.to_string() + " x " + b.to_string() + " (" +
                       std::to_string(a[a.rank() - 1]) + " vs " + std::to_string(b[b.rank() - 2]) + ")");
    }
    Shape batch;
    try {
        batch = broadcast_shapes(batch_of(a), batch_of(b));
    } catch (const GraphError& error) {
        fail(node, std::string("batch dimensions: ") + error.what());
    }
    std::vector<std::int64_t> dims = batch.dims();
    dims.push_back(a[a.rank() - 2]);
    dims.push_back(b[b.rank() - 1]);
    return TensorType{DType::F32, Shape(std::move(dims))};
}

// out[batch, i, j] = sum_p a[batch, i, p] * b[batch, p, j], p increasing, accumulated in T.
template <typename T>
void matmul_kernel(const Node&, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Buffer<T>& a = *in[0];
    const Buffer<T>& b = *in[1];
    const std::int64_t m = a.shape[a.shape.rank() - 2];
    const std::int64_t k = a.shape[a.shape.rank() - 1];
    const std::int64_t n = b.shape[b.shape.rank() - 1];
    const Shape out_batch = batch_of(out.shape);
    const Shape a_batch = batch_of(a.shape);
    const Shape b_batch = batch_of(b.shape);
    // Rows of all batches are independent: split them over threads (each keeps its own summation order).
    parallel_for(out_batch.numel() * m, std::max<std::int64_t>(1, kMinParallelElements / std::max<std::int64_t>(k * n, 1)),
                 [&](std::int64_t begin, std::int64_t end) {
        BroadcastWalker walk(out_batch, {&a_batch, &b_batch});
        std::int64_t batch = begin / m;
        walk.seek(batch);
        for (std::int64_t row = begin; row < end; ++row) {
            if (row / m != batch) {
                batch = row / m;
                walk.seek(batch);
            }
            const std::int64_t i = row % m;
            const T* pa = a.data.data() + walk.offset(0) * m * k;
            const T* pb = b.data.data() + walk.offset(1) * k * n;
            T* out_row = out.data.data() + batch * m * n + i * n;
            // Loop order p-j: each output element accumulates over p in increasing order from zero (the documented
            // order), while the inner loop runs over contiguous j and vectorizes.
            std::fill(out_row, out_row + n, T(0));
            for (std::int64_t p = 0; p < k; ++p) {
                const T a_ip = pa[i * k + p];
                const T* b_row = pb + p * n;
                for (std::int64_t j = 0; j < n; ++j) {
                    out_row[j] += a_ip * b_row[j];
                }
            }
        }
    });
}

std::vector<NodeId> matmul_grad(Graph& g, NodeId y, NodeId grad) {
    const NodeId a = g.node(y).inputs[0];
    const NodeId b = g.node(y).inputs[1];
    const NodeId da = matmul(g, grad, transpose_last_two(g, b));  // [..., m, n] x [..., n, k]
    const NodeId db = matmul(g, transpose_last_two(g, a), grad);  // [..., k, m] x [..., m, n]
    return {sum_to_shape(g, da, g.type(a).shape), sum_to_shape(g, db, g.type(b).shape)};
}

OpCost matmul_cost(const Node& node, std::span<const TensorType> in) {
    const Shape& a = in[0].shape;
    OpCost cost;
    cost.flops = 2.0 * static_cast<double>(node.type.shape.numel()) * static_cast<double>(a[a.rank() - 1]);
    cost.bytes_read = bytes_of(in[0]) + bytes_of(in[1]);
    cost.bytes_written = bytes_of(node.type);
    cost.unit = ComputeUnit::Matrix;
    return cost;
}

}  // namespace

extern const OpInfo kMatMulOp = {OpKind::MatMul,           "MatMul", 2, kAttrsIndex<NoAttrs>, &matmul_shape,
                                 &matmul_kernel<float>,    &matmul_kernel<double>, &matmul_grad, &matmul_cost};

}  // namespace dojo::ir::ops
