#include "dojo/ir/graph.h"

#include <string>

#include "dojo/util/error.h"

namespace dojo::ir {
namespace {

std::string label(const Node& node, std::size_t index) {
    const std::string op(to_string(node.op));
    return node.name.empty() ? "node #" + std::to_string(index) + " (" + op + ")"
                             : "node '" + node.name + "' (#" + std::to_string(index) + " " + op + ")";
}

}  // namespace

NodeId Graph::add(OpKind op, OpAttrs attrs, std::vector<NodeId> inputs, std::string name) {
    if (static_cast<std::size_t>(op) >= kOpCount) {
        throw GraphError("op kind " + std::to_string(static_cast<int>(op)) + " does not exist");
    }
    const OpInfo& info = op_info(op);
    Node node{op, std::move(attrs), std::move(inputs), TensorType{}, std::move(name)};
    const std::string where = label(node, nodes_.size());
    if (static_cast<int>(node.inputs.size()) != info.arity) {
        throw GraphError(where + " takes " + std::to_string(info.arity) + " input(s), got " +
                         std::to_string(node.inputs.size()));
    }
    if (node.attrs.index() != info.attrs_index) {
        throw GraphError(where + " was given attributes of the wrong kind (alternative " +
                         std::to_string(node.attrs.index()) + ", expected " + std::to_string(info.attrs_index) + ")");
    }
    std::vector<TensorType> input_types;
    input_types.reserve(node.inputs.size());
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
        const NodeId input = node.inputs[i];
        if (!input.valid() || input.index >= nodes_.size()) {
            throw GraphError(where + ": input " + std::to_string(i) + " is not a node of this graph");
        }
        input_types.push_back(nodes_[input.index].type);
    }
    node.type = info.shape(node, input_types);
    nodes_.push_back(std::move(node));
    return NodeId{static_cast<std::uint32_t>(nodes_.size() - 1)};
}

NodeId Graph::add_input(std::string name, TensorType type) {
    const NodeId id = add(OpKind::Input, LeafAttrs{std::move(type)}, {}, std::move(name));
    inputs_.push_back(id);
    return id;
}

NodeId Graph::add_parameter(std::string name, TensorType type) {
    const NodeId id = add(OpKind::Parameter, LeafAttrs{std::move(type)}, {}, std::move(name));
    parameters_.push_back(id);
    return id;
}

NodeId Graph::add_state(std::string name, TensorType type) {
    const NodeId id = add(OpKind::State, LeafAttrs{std::move(type)}, {}, std::move(name));
    states_.push_back(id);
    return id;
}

void Graph::mark_output(NodeId id) {
    node(id);  // validates
    outputs_.push_back(id);
}

const Node& Graph::node(NodeId id) const {
    if (!id.valid() || id.index >= nodes_.size()) {
        throw GraphError("node id " + (id.valid() ? std::to_string(id.index) : std::string("<invalid>")) +
                         " is not in this graph of " + std::to_string(nodes_.size()) + " nodes");
    }
    return nodes_[id.index];
}

std::string Graph::describe(NodeId id) const { return label(node(id), id.index); }

OpCost cost_of(const Graph& graph, NodeId id) {
    const Node& node = graph.node(id);
    std::vector<TensorType> inputs;
    inputs.reserve(node.inputs.size());
    for (const NodeId input : node.inputs) {
        inputs.push_back(graph.type(input));
    }
    return op_info(node.op).cost(node, inputs);
}

}  // namespace dojo::ir
