// plan_memory: per-stage bytes and where they live (memory_fit.h).
#include "dojo/sim/memory_fit.h"

#include <map>

#include "dojo/sim/op_time.h"

namespace dojo::sim {

using compiler::Plan;
using ir::NodeId;

std::vector<MemoryUse> plan_memory(const Plan& plan, const Device& device) {
    const ir::Graph& g = plan.step.graph;
    const int pp = plan.strategy.pp;
    std::vector<MemoryUse> use(static_cast<std::size_t>(pp));
    // Activations: 2 bytes of the graph's F32 4 where the device stores the precision's width (op_time.h).
    const double width = stores_narrow(device, plan.precision) ? 0.5 : 1.0;
    auto note = [&](MemoryUse& m, NodeId id, double bytes) {
        if (bytes > m.largest_tensor_bytes) {
            m.largest_tensor_bytes = bytes;
            m.largest_tensor = g.node(id).name.empty() ? g.describe(id) : g.node(id).name;
        }
    };
    for (const NodeId p : g.parameters()) {
        MemoryUse& m = use[static_cast<std::size_t>(plan.stage[p.index])];
        const double bytes = plan.tensor.bytes_per_device(g, p);
        m.parameters_bytes += bytes;
        m.gradients_bytes += bytes;
        note(m, p, bytes);
    }
    std::map<std::uint32_t, NodeId> assigned;  // state -> the value it takes (its layout)
    for (const autodiff::Assignment& a : plan.step.updates) {
        assigned[a.target.index] = a.value;
    }
    for (const NodeId s : g.states()) {
        if (plan.stage[s.index] < 0) {
            continue;
        }
        MemoryUse& m = use[static_cast<std::size_t>(plan.stage[s.index])];
        const auto it = assigned.find(s.index);
        const NodeId layout_of = it == assigned.end() ? s : it->second;
        const double full = plan.tensor.bytes_per_device(g, s);
        const double bytes = plan.tensor.layout[layout_of.index].split() && !plan.tensor.layout[s.index].split()
                                 ? full / plan.tensor.tp
                                 : full;
        // ZeRO stage 1: each replica keeps and updates only its 1/dp share of the optimizer state.
        m.optimizer_bytes += plan.strategy.zero ? bytes / plan.strategy.dp : bytes;
        note(m, s, bytes);
    }
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (plan.saved[i]) {
            MemoryUse& m = use[static_cast<std::size_t>(plan.stage[i])];
            const double bytes = plan.tensor.bytes_per_device(g, NodeId{i}) * width;
            m.activations_bytes += bytes;
            note(m, NodeId{i}, bytes);
        }
    }
    for (int s = 0; s < pp; ++s) {
        MemoryUse& m = use[static_cast<std::size_t>(s)];
        const double in_flight = micro_batches_in_flight(plan.strategy, s);
        const Plan::Recomputation& rc = plan.recomputation;
        if (plan.strategy.recompute && rc.segments[static_cast<std::size_t>(s)] > 0) {
            // Checkpoints for every micro-batch in flight, one segment's saved values at a time.
            m.activations_bytes = (rc.checkpoint_bytes[static_cast<std::size_t>(s)] * in_flight +
                                   rc.segment_bytes[static_cast<std::size_t>(s)]) * width;
        } else {
            m.activations_bytes *= in_flight;
        }
        const double weights = m.parameters_bytes + m.gradients_bytes + m.optimizer_bytes;
        // Where it all does not fit in SRAM, a copy of the parameters at the compute width next to the activations
        // keeps the forward and backward passes' weight reads on chip; masters, gradients and optimizer state stay
        // in the device's memory (in fp32 the copy is the parameters themselves, not held twice).
        const double copy = m.parameters_bytes * width;
        const double in_memory = width < 1.0 ? weights : weights - m.parameters_bytes;
        if (device.local_bytes > 0 && m.total_bytes() <= device.local_bytes) {
            m.weights_level = m.activations_level = "SRAM";
        } else if (device.local_bytes > 0 && device.memory_bytes > 0 &&
                   m.activations_bytes + copy <= device.local_bytes && in_memory <= device.memory_bytes) {
            m.weights_level = device.memory_name;
            m.activations_level = "SRAM";
            m.working_copy_bytes = copy;
        } else if (device.local_bytes > 0 && m.activations_bytes <= device.local_bytes) {
            m.weights_level = device.memory_name;
            m.activations_level = "SRAM";
            m.fits = weights <= device.memory_bytes;
        } else {
            m.weights_level = m.activations_level = device.memory_name;
            m.fits = m.total_bytes() <= device.memory_bytes + device.local_bytes;
        }
    }
    return use;
}

}  // namespace dojo::sim
