// Leaf ops: Input, Parameter and State (values bound from outside), Fill (one repeated value) and Constant (values
// held in the graph).
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

TensorType leaf_shape(const Node& node, std::span<const TensorType>) { return attrs_of<LeafAttrs>(node).type; }

TensorType fill_shape(const Node& node, std::span<const TensorType>) {
    const TensorType& type = attrs_of<FillAttrs>(node).type;
    if (!dtype_info(type.dtype).is_float) {
        fail(node, "fill of " + type.to_string() + ": only floating types can be filled");
    }
    return type;
}

template <typename T>
void fill_kernel(const Node& node, std::span<const Buffer<T>* const>, Buffer<T>& out) {
    std::fill(out.data.begin(), out.data.end(), static_cast<T>(attrs_of<FillAttrs>(node).value));
}

TensorType constant_shape(const Node& node, std::span<const TensorType>) {
    const ConstantAttrs& a = attrs_of<ConstantAttrs>(node);
    if (!dtype_info(a.type.dtype).is_float) {
        fail(node, "constant of " + a.type.to_string() + ": only floating types hold values");
    }
    if (!a.values || static_cast<std::int64_t>(a.values->size()) != a.type.shape.numel()) {
        fail(node, "holds " + std::to_string(a.values ? a.values->size() : 0) + " values for shape " +
                       a.type.shape.to_string());
    }
    return a.type;
}

template <typename T>
void constant_kernel(const Node& node, std::span<const Buffer<T>* const>, Buffer<T>& out) {
    const std::vector<float>& values = *attrs_of<ConstantAttrs>(node).values;
    std::copy(values.begin(), values.end(), out.data.begin());
}

OpCost no_cost(const Node&, std::span<const TensorType>) { return {}; }

OpCost fill_cost(const Node& node, std::span<const TensorType>) {
    OpCost cost;
    cost.bytes_written = bytes_of(node.type);
    return cost;
}

}  // namespace

extern const OpInfo kConstantOp = {OpKind::Constant, "Constant", 0, kAttrsIndex<ConstantAttrs>, &constant_shape,
                                   &constant_kernel<float>, &constant_kernel<double>, nullptr, &fill_cost};
extern const OpInfo kInputOp = {OpKind::Input, "Input", 0, kAttrsIndex<LeafAttrs>, &leaf_shape, nullptr, nullptr,
                                nullptr, &no_cost};
extern const OpInfo kParameterOp = {OpKind::Parameter, "Parameter", 0, kAttrsIndex<LeafAttrs>, &leaf_shape, nullptr,
                                    nullptr, nullptr, &no_cost};
extern const OpInfo kStateOp = {OpKind::State, "State", 0, kAttrsIndex<LeafAttrs>, &leaf_shape, nullptr, nullptr,
                                nullptr, &no_cost};
extern const OpInfo kFillOp = {OpKind::Fill, "Fill", 0, kAttrsIndex<FillAttrs>, &fill_shape, &fill_kernel<float>,
                               &fill_kernel<double>, nullptr, &fill_cost};

}  // namespace dojo::ir::ops
