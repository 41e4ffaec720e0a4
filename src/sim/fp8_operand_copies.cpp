// FP8 operand copies (fp8_operand_copies.h).
#include "fp8_operand_copies.h"

#include "dojo/ir/op.h"
#include "kept_activations.h"

namespace dojo::sim {
namespace {

using ir::NodeId;

// A transpose that swaps the last two axes and keeps the others: a product reads it where it lies, its contraction
// axis then strided (transposed_operands = "in_place").
bool swaps_last_two(const ir::Graph& g, NodeId id) {
    const ir::Node& node = g.node(id);
    if (node.op != ir::OpKind::Transpose) {
        return false;
    }
    const std::vector<int>& perm = std::get<ir::TransposeAttrs>(node.attrs).perm;
    const int rank = static_cast<int>(perm.size());
    for (int k = 0; k < rank - 2; ++k) {
        if (perm[static_cast<std::size_t>(k)] != k) {
            return false;
        }
    }
    return rank >= 2 && perm[static_cast<std::size_t>(rank - 2)] == rank - 1 &&
           perm[static_cast<std::size_t>(rank - 1)] == rank - 2;
}

}  // namespace

std::vector<double> fp8_operand_copy_bytes(const compiler::Plan& plan, const Device& device,
                                           const std::vector<bool>& fp8) {
    const ir::Graph& g = plan.step.graph;
    std::vector<double> bytes(g.size(), 0.0);
    if (!device.fp8_operands_k_major) {
        return bytes;
    }
    const std::vector<bool> per_step = same_for_every_micro_batch(plan);
    const double micro_batches = plan.strategy.micro_batches;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (!fp8[i] || node.op != ir::OpKind::MatMul || !plan.live[i] || node.inputs.size() != 2) {
            continue;
        }
        // A [.., M, K] has K contiguous unless it is a transpose read in place; B [.., K, N] only when it is one.
        const NodeId a = node.inputs[0], b = node.inputs[1];
        for (const NodeId copied : {swaps_last_two(g, a) ? a : NodeId{}, swaps_last_two(g, b) ? NodeId{} : b}) {
            if (!copied.valid()) {
                continue;
            }
            const double elements = plan.tensor.bytes_per_device(g, copied) / 4.0;  // the graph's F32 bytes
            const double runs = per_step[copied.index] || plan.per_step[copied.index] ? micro_batches : 1.0;
            bytes[i] += 2.0 * elements / runs;
        }
    }
    return bytes;
}

}  // namespace dojo::sim
