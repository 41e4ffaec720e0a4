// Kept activations (kept_activations.h).
#include "kept_activations.h"

#include "row_kernels.h"

namespace dojo::sim {
namespace {

using ir::NodeId;

// A row-wise pass (row_kernels.h), or a rounding to the compute format, which a kernel applies as it stores.
bool row_pass(const ir::Graph& g, NodeId id) {
    return row_wise(g, id) || g.node(id).op == ir::OpKind::RoundTo;
}

std::uint32_t root(std::vector<std::uint32_t>& parent, std::uint32_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

// Per node: the row-wise forward chain it belongs to (its root node), or -1; `inputs` gets, per root, what the
// chain reads from outside it.
std::vector<long> forward_row_chains(const compiler::Plan& plan, std::vector<std::vector<NodeId>>& inputs) {
    const ir::Graph& g = plan.step.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(g.size());
    std::vector<bool> in_chain(n, false);
    for (std::uint32_t i = 0; i <= plan.last_forward.index && i < n; ++i) {
        const NodeId id{i};
        in_chain[i] = plan.live[i] && !plan.per_step[i] && !ir::is_leaf(g.node(id).op) && row_pass(g, id);
    }
    std::vector<std::uint32_t> parent(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        parent[i] = i;
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        for (const NodeId input : g.node(NodeId{i}).inputs) {
            if (in_chain[i] && in_chain[input.index]) {
                parent[root(parent, input.index)] = root(parent, i);
            }
        }
    }
    std::vector<long> chain(n, -1);
    inputs.assign(n, {});
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!in_chain[i]) {
            continue;
        }
        chain[i] = static_cast<long>(root(parent, i));
        for (const NodeId input : g.node(NodeId{i}).inputs) {
            if (!in_chain[input.index]) {
                inputs[static_cast<std::size_t>(chain[i])].push_back(input);
            }
        }
    }
    return chain;
}

}  // namespace

std::vector<bool> kept_by_row_kernels(const compiler::Plan& plan, const std::vector<bool>& base) {
    const ir::Graph& g = plan.step.graph;
    std::vector<std::vector<NodeId>> inputs;
    const std::vector<long> chain = forward_row_chains(plan, inputs);
    std::vector<bool> only_row_wise_backward(g.size(), true);  // every reader outside its chain: a backward row pass
    for (std::uint32_t r = 0; r < g.size(); ++r) {
        if (!plan.live[r]) {
            continue;
        }
        const bool backward_row_pass = r > plan.last_forward.index && !plan.per_step[r] && row_pass(g, NodeId{r});
        for (const NodeId input : g.node(NodeId{r}).inputs) {
            const bool inside = chain[input.index] >= 0 && chain[input.index] == chain[r];
            if (!inside && !backward_row_pass) {
                only_row_wise_backward[input.index] = false;
            }
        }
    }
    std::vector<bool> kept = base;
    std::vector<bool> reads_again(inputs.size(), false);  // [chain root]: its backward kernels recompute a member
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (base[i] && chain[i] >= 0 && only_row_wise_backward[i]) {
            kept[i] = false;
            reads_again[static_cast<std::size_t>(chain[i])] = true;
        }
    }
    for (std::size_t root = 0; root < inputs.size(); ++root) {
        if (!reads_again[root]) {
            continue;
        }
        for (const NodeId input : inputs[root]) {
            if (input.index <= plan.last_forward.index && !plan.per_step[input.index] &&
                !ir::is_leaf(g.node(input).op)) {
                kept[input.index] = true;
            }
        }
    }
    return kept;
}

std::vector<bool> same_for_every_micro_batch(const compiler::Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::vector<bool> from_inputs(g.size(), false);
    for (const NodeId input : g.inputs()) {  // a micro-batch's samples and targets; the step number is not one
        from_inputs[input.index] = g.node(input).name != ir::kStepInputName;
    }
    std::vector<bool> same(g.size(), false);
    for (std::uint32_t i = 0; i < g.size(); ++i) {  // graph order: inputs before their readers
        for (const NodeId input : g.node(NodeId{i}).inputs) {
            from_inputs[i] = from_inputs[i] || from_inputs[input.index];
        }
        same[i] = !from_inputs[i];
    }
    return same;
}

}  // namespace dojo::sim
