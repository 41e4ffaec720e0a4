#include "dojo/ir/verify.h"

#include <string>
#include <vector>

#include "dojo/util/error.h"

namespace dojo::ir {

void verify(const Graph& graph) {
    for (std::uint32_t index = 0; index < graph.size(); ++index) {
        const NodeId id{index};
        const Node& node = graph.node(id);
        const OpInfo& info = op_info(node.op);
        const std::string where = graph.describe(id);
        if (node.attrs.index() != info.attrs_index) {
            throw GraphError(where + ": attributes are not the kind its op takes");
        }
        if (static_cast<int>(node.inputs.size()) != info.arity) {
            throw GraphError(where + ": has " + std::to_string(node.inputs.size()) + " inputs, its op takes " +
                             std::to_string(info.arity));
        }
        std::vector<TensorType> input_types;
        for (const NodeId input : node.inputs) {
            if (!input.valid() || input.index >= index) {
                throw GraphError(where + ": an input is not an earlier node (graphs are stored in topological order)");
            }
            input_types.push_back(graph.type(input));
        }
        const TensorType inferred = info.shape(node, input_types);
        if (!(inferred == node.type)) {
            throw GraphError(where + ": stored type " + node.type.to_string() + " differs from its shape rule's " +
                             inferred.to_string());
        }
    }
    for (const std::vector<NodeId>* list : {&graph.inputs(), &graph.parameters(), &graph.states(), &graph.outputs()}) {
        for (const NodeId id : *list) {
            graph.node(id);  // throws if out of range
        }
    }
}

}  // namespace dojo::ir
