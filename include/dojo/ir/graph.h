/** \file
 * Graph: a training or inference computation as data. Building a graph computes nothing; weights are bound only
 * when something executes it, so a 175-billion-parameter model is built and compiled from shapes alone.
 *
 * Invariants (checked by verify.h between passes):
 *   - nodes are stored in a topological order: every input of node i has an index below i;
 *   - every node's type is what its op's shape rule gives for its inputs and attributes;
 *   - every node's attributes are the alternative its op takes.
 * A graph owns its nodes; NodeId values stay valid as nodes are added (nodes are never removed in place: passes
 * build new graphs). References returned by node() and type() do not: add() may move the storage, so copy what
 * you still need (a shape, attributes) before adding nodes.
 */
#pragma once

#include <string>
#include <vector>

#include "dojo/ir/op.h"
#include "dojo/ir/types.h"

namespace dojo::ir {

struct Node {
    OpKind op = OpKind::Input;
    OpAttrs attrs;
    std::vector<NodeId> inputs;
    TensorType type;   ///< of the one tensor this node produces
    std::string name;  ///< for messages and import/export; may be empty
};

/// The name of a graph's one step input (F32 scalar, the training step number), which ops that draw by step read:
/// stochastic rounding (RoundTo/RoundGrad) and Dropout. The runtime sets it before each step.
inline constexpr const char* kStepInputName = "step";

class Graph {
public:
    /// Adds a node; its type comes from the op's shape rule. Throws GraphError (naming the node) on a wrong input
    /// count, an unknown input id, attributes of the wrong kind, or inputs the op does not accept.
    NodeId add(OpKind op, OpAttrs attrs, std::vector<NodeId> inputs, std::string name = "");

    /// A per-step input, e.g. a batch of images. Listed in inputs().
    NodeId add_input(std::string name, TensorType type);
    /// A trainable parameter. Listed in parameters().
    NodeId add_parameter(std::string name, TensorType type);
    /// Persistent, non-trainable state (e.g. optimizer moments). Listed in states().
    NodeId add_state(std::string name, TensorType type);
    /// Marks `id` as a graph output (e.g. the loss). Order is kept.
    void mark_output(NodeId id);

    const Node& node(NodeId id) const;
    const TensorType& type(NodeId id) const { return node(id).type; }
    std::size_t size() const { return nodes_.size(); }
    const std::vector<NodeId>& inputs() const { return inputs_; }
    const std::vector<NodeId>& parameters() const { return parameters_; }
    const std::vector<NodeId>& states() const { return states_; }
    const std::vector<NodeId>& outputs() const { return outputs_; }

    /// "node 'fc1' (#3 MatMul)" or "node #3 (MatMul)": how messages refer to a node.
    std::string describe(NodeId id) const;

private:
    std::vector<Node> nodes_;
    std::vector<NodeId> inputs_;
    std::vector<NodeId> parameters_;
    std::vector<NodeId> states_;
    std::vector<NodeId> outputs_;
};

/// The op table's cost of one execution of node `id` (its row's cost rule on its inputs' types).
OpCost cost_of(const Graph& graph, NodeId id);

}  // namespace dojo::ir
