// plan_memory: per-stage bytes and where they live (memory_fit.h).
#include "dojo/sim/memory_fit.h"

#include <map>

#include "dojo/sim/op_time.h"
#include "fused_attention.h"
#include "kept_activations.h"

namespace dojo::sim {

using compiler::Plan;
using ir::NodeId;

namespace {

// What each device of a stage keeps from a micro-batch's forward task to its backward task, per stage in the graph's
// F32 bytes: `per_micro_batch` for each micro-batch in flight, `shared` once (a value computed from parameters alone,
// such as a weight's rounding to the compute format, is the same for every micro-batch). `kept` per node. With
// selective recomputation a stage whose attention cores are recomputed keeps its checkpoints. Where the device's
// kernels keep their inputs (kept_activations.h), without recomputation or with selective recomputation's
// checkpoints; full recomputation's checkpoints are segment boundaries, which no row-wise kernel recomputes. Where
// attention is fused (fused_attention.h), no score value is kept, and each core's log-sum-exp rows are.
struct Kept {
    std::vector<bool> kept;
    std::vector<double> per_micro_batch, shared;
};

Kept kept_activations(const Plan& plan, const Device& device) {
    const ir::Graph& g = plan.step.graph;
    const Plan::Recomputation& rc = plan.recomputation;
    const bool selective = !rc.recomputed.empty();
    const bool full = plan.strategy.recompute && !selective;
    auto checkpointed = [&](std::uint32_t i) {  // a stage whose attention cores are recomputed
        return selective && plan.stage[i] >= 0 && rc.segments[static_cast<std::size_t>(plan.stage[i])] > 0;
    };
    const FusedAttention attention = fused_attention(plan, device);
    std::vector<bool> base = plan.saved;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (checkpointed(i)) {
            base[i] = rc.checkpoint[i];
        }
        base[i] = base[i] && !attention.score[i];
    }
    Kept k;
    k.kept = device.keeps_kernel_inputs && !full ? kept_by_row_kernels(plan, base) : base;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        k.kept[i] = k.kept[i] && !attention.score[i];  // not even as a row-wise chain's input
    }
    const std::vector<bool> shared = same_for_every_micro_batch(plan);
    k.per_micro_batch = attention.statistic_bytes;
    k.shared.assign(static_cast<std::size_t>(plan.strategy.pp), 0.0);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (k.kept[i] && plan.stage[i] >= 0) {
            (shared[i] ? k.shared : k.per_micro_batch)[static_cast<std::size_t>(plan.stage[i])] +=
                plan.tensor.bytes_per_device(g, NodeId{i});
        }
    }
    return k;
}

}  // namespace

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
    // ZeRO stage 1 with a 16-bit compute format: the FP32 master parameters are optimizer state too (Rajbhandari
    // et al. 2020, arXiv 1910.02054, sec. 5.1: mixed-precision Adam's 12 bytes a parameter, the FP32 parameters,
    // momentum and variance, are what P_os partitions; Megatron-LM's distributed optimizer likewise). Each device
    // computes with the weights' 16-bit roundings (kept once, below) and keeps 1/dp of the masters. In FP32 the
    // masters are the weights it computes with, whole on every device.
    const bool masters_sharded = plan.strategy.zero && width < 1.0;
    std::vector<double> full_parameters(static_cast<std::size_t>(pp), 0.0);
    for (const NodeId p : g.parameters()) {
        const auto s = static_cast<std::size_t>(plan.stage[p.index]);
        MemoryUse& m = use[s];
        const double bytes = plan.tensor.bytes_per_device(g, p);
        m.parameters_bytes += masters_sharded ? bytes / plan.strategy.dp : bytes;
        full_parameters[s] += bytes;
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
    const Plan::Recomputation& rc = plan.recomputation;
    const Kept kept = kept_activations(plan, device);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (kept.kept[i] && plan.stage[i] >= 0) {
            note(use[static_cast<std::size_t>(plan.stage[i])], NodeId{i},
                 plan.tensor.bytes_per_device(g, NodeId{i}) * width);
        }
    }
    const bool full_recompute = plan.strategy.recompute && rc.recomputed.empty();
    for (int s = 0; s < pp; ++s) {
        MemoryUse& m = use[static_cast<std::size_t>(s)];
        const auto at = static_cast<std::size_t>(s);
        const double in_flight = micro_batches_in_flight(plan.strategy, s);
        if (full_recompute && rc.segments[at] > 0) {
            // Checkpoints for every micro-batch in flight, one segment's saved values at a time.
            m.activations_bytes = (rc.checkpoint_bytes[at] * in_flight + rc.segment_bytes[at]) * width;
        } else {
            // Selective recomputation: the checkpoints, and one attention core's values at a time (on chip where
            // attention is fused).
            const double core =
                plan.strategy.recompute && rc.segments[at] > 0 && !device.attention_fused ? rc.segment_bytes[at] : 0.0;
            m.activations_bytes = (kept.per_micro_batch[at] * in_flight + kept.shared[at] + core) * width;
        }
        const double weights = m.parameters_bytes + m.gradients_bytes + m.optimizer_bytes;
        // Where it all does not fit in SRAM, a copy of the parameters at the compute width next to the activations
        // keeps the forward and backward passes' weight reads on chip; masters, gradients and optimizer state stay
        // in the device's memory (in fp32 the copy is the parameters themselves, not held twice).
        const double copy = full_parameters[at] * width;
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
