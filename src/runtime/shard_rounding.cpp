// Which roundings of a data-parallel rank round as the global batch (lower_cpu_steps.h: mark_sharded_rounding).
#include "dojo/ir/rounding.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"
#include "lower_cpu_steps.h"

namespace dojo::runtime {
namespace {

// Whether `node`'s tensor leads with the batch, given which of its inputs do (`leads`, by node): its outermost
// dimension is whole samples' rows, so that each rank holds one contiguous block of the global tensor. A transpose
// must keep the outermost dimension; a reshape must keep whole samples per row; a matrix product leads if its left
// operand does; any other op leads if an input that leads has the same outermost extent (elementwise maps,
// convolutions, pooling, reductions over inner axes).
bool lead_with_batch(const ir::Graph& graph, const ir::Node& node, const std::vector<bool>& leads,
                     std::int64_t local_batch) {
    const ir::Shape& out = node.type.shape;
    if (out.rank() == 0) {
        return false;
    }
    const auto leading = [&](ir::NodeId input) { return static_cast<bool>(leads[input.index]); };
    switch (node.op) {
    case ir::OpKind::Transpose:
        return leading(node.inputs[0]) && std::get<ir::TransposeAttrs>(node.attrs).perm.at(0) == 0;
    case ir::OpKind::Reshape:
        return leading(node.inputs[0]) && local_batch > 0 && out.dims()[0] % local_batch == 0;
    case ir::OpKind::MatMul:
        return leading(node.inputs[0]) && graph.type(node.inputs[0]).shape.dims()[0] == out.dims()[0];
    default:
        for (const ir::NodeId input : node.inputs) {
            const ir::Shape& in = graph.type(input).shape;
            if (leading(input) && in.rank() > 0 && in.dims()[0] == out.dims()[0]) {
                return true;
            }
        }
        return false;
    }
}

}  // namespace

std::vector<bool> mark_sharded_rounding(const ExecPlan& p, const ExecutorOptions& options) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    std::vector<bool> rounds_shard(n, false);
    if (options.batch_shard_inputs.empty()) {
        return rounds_shard;
    }
    DOJO_CHECK(static_cast<bool>(options.agree_max_abs)) << "batch shard inputs need agree_max_abs";
    // Which tensors lead with the batch (their rows split into the ranks' contiguous blocks, so a rank's tensor is
    // one contiguous piece of the global one), and which merely depend on it (a weight gradient: summed over it).
    std::vector<bool> from_batch(n, false);
    std::vector<bool> leads(n, false);
    std::int64_t local_batch = 0;
    for (const ir::NodeId id : options.batch_shard_inputs) {
        DOJO_CHECK(graph.node(id).op == ir::OpKind::Input && graph.type(id).shape.rank() > 0)
            << "batch shard input " << id.index << " must be an Input with a batch dimension";
        from_batch[id.index] = leads[id.index] = true;
        local_batch = graph.type(id).shape.dims()[0];
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        if (node.inputs.empty()) {
            continue;
        }
        for (const ir::NodeId input : node.inputs) {
            from_batch[i] = from_batch[i] || from_batch[input.index];
        }
        leads[i] = leads[i] || lead_with_batch(graph, node, leads, local_batch);
        if (node.op != ir::OpKind::RoundTo || !from_batch[i] || !p.live[i] ||
            !ir::rounding_sees_whole_tensor(std::get<ir::RoundAttrs>(node.attrs))) {
            continue;
        }
        if (!leads[i]) {
            throw Error("node " + std::to_string(i) + " (" + node.name + ") rounds a tensor of shape " +
                        node.type.shape.to_string() + " that derives from the batch but does not lead with it, " +
                        "so the ranks' shards of it are not contiguous pieces of one process's tensor; round each " +
                        "rank's shard on its own instead (dojo train --rounding-scope rank)");
        }
        rounds_shard[i] = true;
    }
    return rounds_shard;
}

}  // namespace dojo::runtime
