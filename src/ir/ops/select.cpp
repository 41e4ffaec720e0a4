// Select (cond, a, b) -> cond != 0 ? a : b with multidirectional broadcasting: ONNX Where on float data, e.g. the
// causal mask of attention. The condition is data, not a differentiable input.
#include "dojo/ir/builder.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

TensorType select_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    try {
        return TensorType{DType::F32, broadcast_shapes(broadcast_shapes(in[0].shape, in[1].shape), in[2].shape)};
    } catch (const GraphError& error) {
        fail(node, error.what());
    }
}

template <typename T>
void select_kernel(const Node&, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Buffer<T>& cond = *in[0];
    const Buffer<T>& a = *in[1];
    const Buffer<T>& b = *in[2];
    parallel_for(static_cast<std::int64_t>(out.data.size()), kMinParallelElements,
                 [&](std::int64_t begin, std::int64_t end) {
                     BroadcastWalker walk(out.shape, {&cond.shape, &a.shape, &b.shape});
                     walk.seek(begin);
                     for (std::int64_t i = begin; i < end; ++i, walk.next()) {
                         const bool take_a = cond.data[static_cast<std::size_t>(walk.offset(0))] != T(0);
                         out.data[static_cast<std::size_t>(i)] =
                             take_a ? a.data[static_cast<std::size_t>(walk.offset(1))]
                                    : b.data[static_cast<std::size_t>(walk.offset(2))];
                     }
                 });
}

// The gradient goes to whichever operand was selected, summed back over its broadcast axes.
std::vector<NodeId> select_grad(Graph& g, NodeId y, NodeId grad) {
    const NodeId cond = g.node(y).inputs[0];
    const Shape a = g.type(g.node(y).inputs[1]).shape;
    const Shape b = g.type(g.node(y).inputs[2]).shape;
    const NodeId zero = scalar(g, 0.0);
    const NodeId da = select(g, cond, grad, zero);
    const NodeId db = select(g, cond, zero, grad);
    return {NodeId{}, sum_to_shape(g, da, a), sum_to_shape(g, db, b)};
}

OpCost select_cost(const Node& node, std::span<const TensorType> in) { return elementwise_cost(node, in, 1); }

}  // namespace

extern const OpInfo kSelectOp = {OpKind::Select,         "Select",  3, kAttrsIndex<NoAttrs>, &select_shape,
                                 &select_kernel<float>, &select_kernel<double>, &select_grad, &select_cost};

}  // namespace dojo::ir::ops
