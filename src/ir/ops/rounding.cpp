// Numerics emulation: RoundTo (round onto a format's grid, straight-through gradient) and RoundGrad (identity whose
// gradient is rounded). Together they let an FP32 training step compute exactly what BF16/CFloat storage would.
#include <algorithm>
#include <cmath>

#include "dojo/ir/builder.h"
#include "dojo/ir/rounding.h"
#include "dojo/numerics/bias.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

TensorType rounding_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    if (in[1].shape.numel() != 1) {
        fail(node, "the step input must be a scalar, got " + in[1].shape.to_string());
    }
    const RoundAttrs& attrs = attrs_of<RoundAttrs>(node);
    if (attrs.format == numerics::FormatKind::Fp32) {
        fail(node, "rounding to fp32 is the identity; do not insert the op");
    }
    if (!(attrs.headroom_binades >= 0)) {
        fail(node, "headroom must be >= 0 binades");
    }
    return in[0];
}

// Writes `in` rounded as the attrs say (see RoundAttrs) to `out`: the whole tensor, in one pass after its max-abs.
void round_whole(const RoundAttrs& attrs, double step, std::span<const float> in, std::span<float> out) {
    const bool needs_max_abs = numerics::traits(attrs.format).configurable_bias;
    round_piece(attrs, step, in, out, needs_max_abs ? numerics::max_abs(in) : 0.0f, 0);
}

template <typename T>
void round_to_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const double step = static_cast<double>(in[1]->data[0]);
    if constexpr (std::is_same_v<T, float>) {
        round_whole(attrs_of<RoundAttrs>(node), step, in[0]->data, out.data);
    } else {  // the double path (gradient checking): round the FP32 value, widen exactly
        std::vector<float> narrow(in[0]->data.begin(), in[0]->data.end());
        round_whole(attrs_of<RoundAttrs>(node), step, narrow, narrow);
        std::copy(narrow.begin(), narrow.end(), out.data.begin());
    }
}

template <typename T>
void identity_kernel(const Node&, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    std::copy(in[0]->data.begin(), in[0]->data.end(), out.data.begin());
}

std::vector<NodeId> round_to_grad(Graph&, NodeId, NodeId grad) { return {grad, NodeId{}}; }  // straight through

std::vector<NodeId> round_grad_grad(Graph& g, NodeId y, NodeId grad) {
    const RoundAttrs attrs = attrs_of<RoundAttrs>(g.node(y));
    const NodeId step = g.node(y).inputs[1];
    return {round_to(g, grad, step, attrs), NodeId{}};
}

// The identity forward moves no data: a compiled step reads the input where RoundGrad's value is read (the runtime's
// fast path does: runtime/executor.h), as it does for a reshape.
OpCost identity_cost(const Node&, std::span<const TensorType>) { return {}; }

OpCost round_cost(const Node& node, std::span<const TensorType> in) {
    return elementwise_cost(node, in.first(1), 2);  // max-abs, round
}

}  // namespace

extern const OpInfo kRoundToOp = {OpKind::RoundTo,        "RoundTo", 2, kAttrsIndex<RoundAttrs>, &rounding_shape,
                                  &round_to_kernel<float>, &round_to_kernel<double>, &round_to_grad, &round_cost};
extern const OpInfo kRoundGradOp = {OpKind::RoundGrad,        "RoundGrad", 2, kAttrsIndex<RoundAttrs>, &rounding_shape,
                                    &identity_kernel<float>, &identity_kernel<double>, &round_grad_grad,
                                    &identity_cost};

}  // namespace dojo::ir::ops

namespace dojo::ir {

std::optional<RoundingSetup> rounding_setup(const RoundAttrs& attrs, double step, float whole_max_abs) {
    RoundingSetup setup{numerics::make_format(attrs.format), {}};
    if (numerics::traits(attrs.format).configurable_bias) {
        if (!std::isfinite(whole_max_abs)) {
            return std::nullopt;
        }
        setup.spec = numerics::make_format(
            attrs.format, numerics::choose_bias(attrs.format, whole_max_abs, attrs.headroom_binades).bias);
    }
    setup.options.rounding = attrs.rounding;
    setup.options.seed = attrs.seed;
    setup.options.stream = (static_cast<std::uint64_t>(step) << 32) | attrs.tensor_id;
    return setup;
}

void round_piece(const RoundAttrs& attrs, double step, std::span<const float> in, std::span<float> out,
                 float whole_max_abs, std::uint64_t first_index, int threads) {
    std::optional<RoundingSetup> setup = rounding_setup(attrs, step, whole_max_abs);
    if (!setup) {
        std::copy(in.begin(), in.end(), out.begin());
        return;
    }
    setup->options.first_index = first_index;
    setup->options.threads = threads;
    numerics::round_to_format(in, out, setup->spec, setup->options);
}

bool rounding_sees_whole_tensor(const RoundAttrs& attrs) {
    return numerics::traits(attrs.format).configurable_bias || attrs.rounding == numerics::Rounding::Stochastic;
}

}  // namespace dojo::ir
