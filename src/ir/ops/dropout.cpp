// Dropout in training: a mask drawn per element from the counter-based generator stochastic rounding uses, keyed by
// the step, so the backward pass and every thread count see the same mask (DropoutAttrs).
#include <cmath>

#include "dojo/ir/builder.h"
#include "dojo/numerics/philox.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

TensorType dropout_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    if (in[1].shape.numel() != 1) {
        fail(node, "the step input must be a scalar, got " + in[1].shape.to_string());
    }
    const double ratio = attrs_of<DropoutAttrs>(node).ratio;
    if (!(ratio >= 0 && ratio < 1)) {
        fail(node, "the dropout ratio must be in [0, 1), got " + std::to_string(ratio));
    }
    return in[0];
}

template <typename T>
void dropout_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const DropoutAttrs& attrs = attrs_of<DropoutAttrs>(node);
    const double step = static_cast<double>(in[1]->data[0]);
    const std::uint64_t stream = (static_cast<std::uint64_t>(std::max(0.0, step)) << 32) | attrs.tensor_id;
    // Kept where the word is at least ratio * 2^32; the threshold is exact in double.
    const auto threshold = static_cast<std::uint64_t>(std::ceil(attrs.ratio * 4294967296.0));
    const T scale = static_cast<T>(1.0 / (1.0 - attrs.ratio));
    const std::span<const T> x = in[0]->data;
    const auto n = static_cast<std::int64_t>(x.size());
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) {
        const bool kept = numerics::stochastic_word(attrs.seed, stream, static_cast<std::uint64_t>(i)) >= threshold;
        out.data[static_cast<std::size_t>(i)] = kept ? x[static_cast<std::size_t>(i)] * scale : T{0};
    }
}

// The same mask on the gradient: the same attributes and step.
std::vector<NodeId> dropout_grad(Graph& g, NodeId y, NodeId grad) {
    return {dropout(g, grad, g.node(y).inputs[1], attrs_of<DropoutAttrs>(g.node(y))), NodeId{}};
}

OpCost dropout_cost(const Node& node, std::span<const TensorType> in) {
    return elementwise_cost(node, in.first(1), 2);  // draw, select and scale
}

}  // namespace

extern const OpInfo kDropoutOp = {OpKind::Dropout,         "Dropout", 2, kAttrsIndex<DropoutAttrs>, &dropout_shape,
                                  &dropout_kernel<float>, &dropout_kernel<double>, &dropout_grad, &dropout_cost};

}  // namespace dojo::ir::ops
