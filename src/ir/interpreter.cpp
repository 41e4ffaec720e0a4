#include "dojo/ir/interpreter.h"

#include <string>

#include "dojo/util/check.h"
#include "dojo/util/error.h"

namespace dojo::ir {

template <typename T>
void evaluate_node(const Graph& graph, NodeId id, std::vector<Buffer<T>>& values) {
    const Node& node = graph.node(id);
    const OpInfo& info = op_info(node.op);
    ReferenceKernel<T> kernel = nullptr;
    if constexpr (std::is_same_v<T, float>) {
        kernel = info.reference_f32;
    } else {
        kernel = info.reference_f64;
    }
    if (kernel == nullptr) {
        return;  // a bound leaf
    }
    // At most a few inputs: a fixed array avoids an allocation per node and step.
    const Buffer<T>* inputs[4] = {};
    DOJO_CHECK(node.inputs.size() <= std::size(inputs)) << graph.describe(id) << " has too many inputs";
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
        inputs[i] = &values[node.inputs[i].index];
    }
    kernel(node, std::span<const Buffer<T>* const>(inputs, node.inputs.size()), values[id.index]);
}

template <typename T>
std::vector<Buffer<T>> evaluate(const Graph& graph, const Bindings<T>& bindings) {
    std::vector<Buffer<T>> values(graph.size());
    for (std::uint32_t index = 0; index < graph.size(); ++index) {
        const NodeId id{index};
        const Node& node = graph.node(id);
        if (is_bound_leaf(node.op)) {
            const auto bound = bindings.find(id);
            if (bound == bindings.end()) {
                throw UsageError(graph.describe(id) + " has no value: bind every input, parameter and state before evaluating");
            }
            if (!(bound->second.shape == node.type.shape) ||
                static_cast<std::int64_t>(bound->second.data.size()) != node.type.shape.numel()) {
                throw UsageError(graph.describe(id) + " was bound to a tensor of shape " +
                                 bound->second.shape.to_string() + " with " +
                                 std::to_string(bound->second.data.size()) + " elements; the graph expects " +
                                 node.type.shape.to_string());
            }
            values[index] = bound->second;
            continue;
        }
        values[index] = Buffer<T>(node.type.shape);
        evaluate_node(graph, id, values);
    }
    return values;
}

template void evaluate_node(const Graph&, NodeId, std::vector<Buffer<float>>&);
template void evaluate_node(const Graph&, NodeId, std::vector<Buffer<double>>&);
template std::vector<Buffer<float>> evaluate(const Graph&, const Bindings<float>&);
template std::vector<Buffer<double>> evaluate(const Graph&, const Bindings<double>&);

}  // namespace dojo::ir
