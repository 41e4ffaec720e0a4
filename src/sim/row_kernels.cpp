// Row kernels (row_kernels.h).
#include "row_kernels.h"

#include <algorithm>

#include "dojo/ir/elementwise.h"
#include "dojo/sim/op_time.h"

namespace dojo::sim {
namespace {

using ir::NodeId;
using ir::OpKind;

// A row of a value stays on chip when it fits a thread block's shared memory at FP32: 64 KiB, well inside the A100's
// 164 KiB and the H100's 228 KiB per SM (CUDA C++ Programming Guide, compute capabilities 8.0 and 9.0), leaving
// room for the chain's other rows.
constexpr double kRowBytes = 64.0 * 1024;

bool last_axis_only(const ir::Graph& g, const ir::Node& node) {
    if ((node.op != OpKind::ReduceSum && node.op != OpKind::LogSoftmax) || node.inputs.empty()) {
        return false;
    }
    const int rank = static_cast<int>(g.type(node.inputs[0]).shape.rank());
    if (node.op == OpKind::ReduceSum) {
        const std::vector<int>& axes = std::get<ir::ReduceAttrs>(node.attrs).axes;
        return axes.size() == 1 && (axes[0] == rank - 1 || axes[0] == -1);
    }
    const int axis = std::get<ir::AxisAttrs>(node.attrs).axis;
    return axis == rank - 1 || axis == -1;
}

}  // namespace

bool row_wise(const ir::Graph& g, NodeId id) {
    const ir::Node& node = g.node(id);
    return ir::is_elementwise_map(node.op) || last_axis_only(g, node);
}

std::vector<std::vector<std::uint32_t>> live_readers(const compiler::Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::vector<std::vector<std::uint32_t>> readers(g.size());
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (plan.live[i]) {
            for (const NodeId input : g.node(NodeId{i}).inputs) {
                readers[input.index].push_back(i);
            }
        }
    }
    return readers;
}

std::vector<double> row_kernel_savings(const compiler::Plan& plan, const Device& device,
                                       const std::vector<bool>& on_chip_already) {
    const ir::Graph& g = plan.step.graph;
    std::vector<double> saved(g.size(), 0.0);
    if (!device.row_kernels_fused) {
        return saved;
    }
    // Each node's kernel: its fused group's last member, or itself; -1 where the kernel is not row-wise.
    std::vector<long> kernel(g.size(), -1);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        kernel[i] = plan.live[i] && !ir::is_leaf(g.node(NodeId{i}).op) && row_wise(g, NodeId{i}) ? long{i} : -1L;
    }
    std::vector<bool> exported(g.size(), true);
    for (const compiler::FusionGroup& group : plan.fusion_groups) {
        bool all_row_wise = true;
        for (const NodeId m : group.members) {
            all_row_wise = all_row_wise && row_wise(g, m);
        }
        for (std::size_t k = 0; k < group.members.size(); ++k) {
            kernel[group.members[k].index] = all_row_wise ? long{group.members.back().index} : -1L;
            exported[group.members[k].index] = group.exported[k];
        }
    }
    const std::vector<std::vector<std::uint32_t>> readers = live_readers(plan);
    auto pass_of = [&](std::uint32_t i) { return plan.per_step[i] ? 2 : i <= plan.last_forward.index ? 0 : 1; };
    const bool narrow = stores_narrow(device, plan.precision);
    for (std::uint32_t v = 0; v < g.size(); ++v) {
        const long producer = kernel[v];
        const ir::Shape& shape = g.type(NodeId{v}).shape;
        if (producer < 0 || on_chip_already[v] || !exported[v] || readers[v].empty() || shape.rank() == 0 ||
            4.0 * static_cast<double>(shape[shape.rank() - 1]) > kRowBytes) {
            continue;
        }
        bool on_chip = true;
        std::vector<long> reading;  // the other kernels that read v, each once (its own group reads it inside)
        for (const std::uint32_t r : readers[v]) {
            if (kernel[r] == producer) {
                continue;
            }
            on_chip = on_chip && kernel[r] >= 0 && pass_of(r) == pass_of(v);
            if (on_chip && std::find(reading.begin(), reading.end(), kernel[r]) == reading.end()) {
                reading.push_back(kernel[r]);
            }
        }
        if (!on_chip || reading.empty()) {  // read elsewhere, or written for its own sake (a gradient, an output)
            continue;
        }
        const double width = plan.per_step[v] || !narrow ? 1.0 : 0.5;
        const double f32 = 4.0 * static_cast<double>(shape.numel()) * width;
        auto share = [&](long k) { return plan.tensor.divided[static_cast<std::size_t>(k)] ? plan.strategy.tp : 1; };
        saved[static_cast<std::size_t>(producer)] += f32 / share(producer);
        for (const long k : reading) {
            saved[static_cast<std::size_t>(k)] += f32 / share(k);
        }
    }
    return saved;
}

}  // namespace dojo::sim
