// Fused attention (fused_attention.h).
#include "fused_attention.h"

#include <algorithm>
#include <set>

#include "dojo/compiler/attention_cores.h"
#include "dojo/ir/op.h"
#include "dojo/sim/op_time.h"
#include "row_kernels.h"

namespace dojo::sim {
namespace {

using ir::NodeId;
using ir::OpKind;

// Per node: the forward and backward values of attention's score shape that stay on chip (FusedAttention::score).
std::vector<bool> score_values(const compiler::Plan& plan, const std::vector<std::int64_t>& core) {
    const ir::Graph& g = plan.step.graph;
    std::vector<bool> score(g.size(), false);
    std::set<std::vector<std::int64_t>> shapes;  // the forward scores' shapes
    for (std::uint32_t i = 0; i <= plan.last_forward.index; ++i) {
        const bool product_with_v = g.node(NodeId{i}).op == OpKind::MatMul && core[i] >= 0 && core[i] != i;
        if (core[i] >= 0 && !product_with_v) {
            score[i] = true;
            shapes.insert(g.type(NodeId{i}).shape.dims());
        }
    }
    for (std::uint32_t i = plan.last_forward.index + 1; i < g.size(); ++i) {  // graph order: inputs first
        const ir::Node& node = g.node(NodeId{i});
        if (!plan.live[i] || plan.per_step[i] || ir::is_leaf(node.op) || shapes.count(node.type.shape.dims()) == 0) {
            continue;
        }
        const bool reads_score = std::any_of(node.inputs.begin(), node.inputs.end(),
                                             [&](NodeId input) { return score[input.index]; });
        // A product that reads a score is a gradient of Q, K or V (written); one that reads none but has the score's
        // shape is the output's gradient times V^T, the probabilities' gradient.
        const bool activations = node.op == OpKind::MatMul && node.inputs.size() == 2 &&
                                  g.type(node.inputs[0]).shape.rank() >= 3 && g.type(node.inputs[1]).shape.rank() >= 3;
        score[i] = node.op == OpKind::MatMul ? activations && !reads_score : reads_score;
    }
    return score;
}

}  // namespace

FusedAttention fused_attention(const compiler::Plan& plan, const Device& device) {
    const ir::Graph& g = plan.step.graph;
    FusedAttention f;
    f.score.assign(g.size(), false);
    f.in_core.assign(g.size(), false);
    f.bytes_on_chip.assign(g.size(), 0.0);
    f.statistic_bytes.assign(static_cast<std::size_t>(plan.strategy.pp), 0.0);
    if (!device.attention_fused) {
        return f;
    }
    const std::vector<std::int64_t> core = compiler::attention_cores(plan);
    f.score = score_values(plan, core);
    // Each node's kernel: its fused group's last member, or itself.
    std::vector<std::uint32_t> kernel(g.size());
    std::vector<bool> exported(g.size(), true);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        kernel[i] = i;
        f.in_core[i] = core[i] >= 0;
    }
    for (const compiler::FusionGroup& group : plan.fusion_groups) {
        for (std::size_t k = 0; k < group.members.size(); ++k) {
            kernel[group.members[k].index] = group.members.back().index;
            exported[group.members[k].index] = group.exported[k];
        }
    }
    const std::vector<std::vector<std::uint32_t>> readers = live_readers(plan);
    const double width = stores_narrow(device, plan.precision) ? 0.5 : 1.0;
    auto share = [&](std::uint32_t k) { return plan.tensor.divided[k] ? plan.strategy.tp : 1; };
    for (std::uint32_t v = 0; v < g.size(); ++v) {
        if (!f.score[v]) {
            continue;
        }
        const double bytes = 4.0 * static_cast<double>(g.type(NodeId{v}).shape.numel()) * width;
        const std::uint32_t producer = kernel[v];
        if (exported[v]) {
            f.bytes_on_chip[producer] += bytes / share(producer);
        }
        std::vector<std::uint32_t> reading;  // the other kernels that read v, each once
        for (const std::uint32_t r : readers[v]) {
            if (kernel[r] != producer && std::find(reading.begin(), reading.end(), kernel[r]) == reading.end()) {
                reading.push_back(kernel[r]);
                f.bytes_on_chip[kernel[r]] += bytes / share(kernel[r]);
            }
        }
        if (v <= plan.last_forward.index && core[v] == v && plan.stage[v] >= 0) {  // a core's Q K^T: one per row
            const ir::Shape& shape = g.type(NodeId{v}).shape;
            f.statistic_bytes[static_cast<std::size_t>(plan.stage[v])] +=
                plan.tensor.bytes_per_device(g, NodeId{v}) / static_cast<double>(shape[shape.rank() - 1]);
        }
    }
    return f;
}

}  // namespace dojo::sim
