#include "dojo/autodiff/grad.h"

#include <map>

#include "dojo/ir/builder.h"
#include "dojo/util/error.h"

namespace dojo::autodiff {

using ir::Graph;
using ir::NodeId;

std::vector<NodeId> gradients(Graph& graph, NodeId loss, std::span<const NodeId> wrt) {
    if (graph.type(loss).shape.numel() != 1) {
        throw GraphError(graph.describe(loss) + " is the loss but has shape " + graph.type(loss).shape.to_string() +
                         "; reduce it to one element (e.g. a mean over the batch) before differentiating");
    }
    const std::size_t end = loss.index + 1;  // nodes added below are never revisited

    // Which original nodes depend on some wrt (forward), and which of those the loss depends on (backward).
    std::vector<bool> from_wrt(end, false);
    for (const NodeId w : wrt) {
        graph.node(w);  // validates
        if (w.index < end) {
            from_wrt[w.index] = true;
        }
    }
    for (std::size_t i = 0; i < end; ++i) {
        for (const NodeId input : graph.node(NodeId{static_cast<std::uint32_t>(i)}).inputs) {
            from_wrt[i] = from_wrt[i] || from_wrt[input.index];
        }
    }

    std::map<NodeId, NodeId> grad;  // accumulated gradient of each node's output
    grad[loss] = ir::fill(graph, 1.0, graph.type(loss));
    for (std::size_t i = end; i-- > 0;) {
        const NodeId id{static_cast<std::uint32_t>(i)};
        const auto found = grad.find(id);
        if (found == grad.end() || !from_wrt[i]) {
            continue;
        }
        const ir::OpInfo& info = ir::op_info(graph.node(id).op);
        if (info.gradient == nullptr) {
            continue;  // leaves and piecewise-constant ops pass no gradient on
        }
        const std::vector<NodeId> inputs = graph.node(id).inputs;  // a copy: the rule adds nodes
        const std::vector<NodeId> input_grads = info.gradient(graph, id, found->second);
        for (std::size_t k = 0; k < inputs.size(); ++k) {
            if (!input_grads[k].valid() || !from_wrt[inputs[k].index]) {
                continue;
            }
            const auto existing = grad.find(inputs[k]);
            grad[inputs[k]] = existing == grad.end() ? input_grads[k] : ir::add(graph, existing->second, input_grads[k]);
        }
    }

    std::vector<NodeId> result;
    for (const NodeId w : wrt) {
        const auto found = grad.find(w);
        result.push_back(found != grad.end() ? found->second : ir::fill(graph, 0.0, graph.type(w)));
    }
    return result;
}

}  // namespace dojo::autodiff
