// Attention cores of a step's forward pass (attention_cores.h).
#include "dojo/compiler/attention_cores.h"

#include "dojo/ir/op.h"

namespace dojo::compiler {

using ir::NodeId;

bool score_shaped(const ir::Shape& shape) {
    return shape.rank() >= 3 && shape[shape.rank() - 1] == shape[shape.rank() - 2];
}

std::vector<std::int64_t> attention_cores(const Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::vector<std::int64_t> core(g.size(), -1);
    for (std::uint32_t i = 0; i <= plan.last_forward.index; ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (!plan.live[i] || ir::is_leaf(node.op)) {
            continue;
        }
        const ir::Shape& out = node.type.shape;
        if (node.op == ir::OpKind::MatMul) {
            const std::int64_t probabilities = core[node.inputs[0].index];
            if (probabilities >= 0 && probabilities != static_cast<std::int64_t>(node.inputs[0].index)) {
                core[i] = probabilities;  // attention over V
            } else if (score_shaped(out) && g.type(node.inputs[0]).shape.rank() >= 3 &&
                       g.type(node.inputs[1]).shape.rank() >= 3) {
                core[i] = i;  // Q K^T
            }
            continue;
        }
        for (const NodeId input : node.inputs) {  // a score: the product or a node after it, not attention over V
            const std::int64_t c = core[input.index];
            const bool score = c >= 0 && (g.node(input).op != ir::OpKind::MatMul || c == input.index);
            if (score && g.type(input).shape == out) {
                core[i] = c;
            }
        }
    }
    return core;
}

}  // namespace dojo::compiler
