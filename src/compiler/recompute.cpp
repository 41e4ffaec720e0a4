// Activation recomputation (recompute.h): segments per stage, checkpoints, and the K that needs the least memory.
#include "dojo/compiler/recompute.h"

#include <algorithm>
#include <limits>

#include "dojo/compiler/attention_cores.h"
#include "dojo/ir/op.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;


struct Cut {
    std::vector<int> segment;  // per forward node of the stage, in order
    double checkpoint_bytes = 0, segment_bytes = 0;
};

// Megatron-LM's selective recomputation (Korthikanti et al. 2022, arXiv 2205.05198, sec. 5): the attention cores'
// values are not kept; each backward task runs its cores' forward again, one core at a time. What a core reads
// from outside it (Q, K, V) is kept. Per stage: checkpoint_bytes the kept values, segment_bytes the largest core.
void plan_selective(Plan& plan) {
    Plan::Recomputation& rc = plan.recomputation;
    const ir::Graph& g = plan.step.graph;
    const auto P = static_cast<std::size_t>(plan.strategy.pp);
    const std::vector<std::int64_t> core = attention_cores(plan);
    rc.checkpoint.assign(g.size(), false);
    rc.segment.assign(g.size(), -1);
    rc.recomputed.assign(g.size(), false);
    rc.segments.assign(P, 0);
    rc.checkpoint_bytes.assign(P, 0.0);
    rc.segment_bytes.assign(P, 0.0);
    std::vector<double> core_bytes(g.size(), 0.0);    // [node]: its core's saved values, at the core's Q K^T
    std::vector<double> cores_total(P, 0.0);           // [stage]: every core's saved values
    auto bytes = [&](std::uint32_t i) { return plan.tensor.bytes_per_device(g, NodeId{i}); };
    for (std::uint32_t i = 0; i <= plan.last_forward.index; ++i) {
        if (plan.stage[i] < 0 || ir::is_leaf(g.node(NodeId{i}).op)) {
            continue;
        }
        const auto s = static_cast<std::size_t>(plan.stage[i]);
        if (core[i] >= 0) {
            rc.recomputed[i] = true;
            rc.segments[s] = 1;
            const double saved = plan.saved[i] ? bytes(i) : 0.0;
            core_bytes[static_cast<std::size_t>(core[i])] += saved;
            cores_total[s] += saved;
            rc.segment_bytes[s] = std::max(rc.segment_bytes[s], core_bytes[static_cast<std::size_t>(core[i])]);
            for (const NodeId input : g.node(NodeId{i}).inputs) {
                if (core[input.index] < 0 && !ir::is_leaf(g.node(input).op) && !rc.checkpoint[input.index]) {
                    rc.checkpoint[input.index] = true;
                    rc.checkpoint_bytes[s] += plan.saved[input.index] ? 0.0 : bytes(input.index);
                }
            }
        } else if (plan.saved[i]) {
            rc.checkpoint[i] = true;
            rc.checkpoint_bytes[s] += bytes(i);
        }
    }
    // As for full recomputation: a stage where it would not save memory (one core, one micro-batch in flight)
    // keeps everything.
    for (std::size_t s = 0; s < P; ++s) {
        const double in_flight = micro_batches_in_flight(plan.strategy, static_cast<int>(s));
        if (rc.checkpoint_bytes[s] * in_flight + rc.segment_bytes[s] >=
            (rc.checkpoint_bytes[s] + cores_total[s]) * in_flight) {
            rc.segments[s] = 0;
        }
    }
    for (std::uint32_t i = 0; i <= plan.last_forward.index; ++i) {
        if (rc.recomputed[i] && rc.segments[static_cast<std::size_t>(plan.stage[i])] == 0) {
            rc.recomputed[i] = false;
        }
    }
}

}  // namespace

void plan_recomputation(Plan& plan) {
    Plan::Recomputation& rc = plan.recomputation;
    rc = Plan::Recomputation{};
    if (!plan.strategy.recompute) {
        return;
    }
    if (plan.strategy.selective) {
        plan_selective(plan);
        return;
    }
    const ir::Graph& g = plan.step.graph;
    const std::size_t n = g.size();
    const auto P = static_cast<std::size_t>(plan.strategy.pp);
    const std::uint32_t loss = plan.last_forward.index;
    rc.checkpoint.assign(n, false);
    rc.segment.assign(n, -1);
    rc.segments.assign(P, 1);
    rc.checkpoint_bytes.assign(P, 0.0);
    rc.segment_bytes.assign(P, 0.0);

    std::vector<std::vector<std::uint32_t>> forward(P);  // each stage's forward nodes, in order
    for (std::uint32_t i = 0; i <= loss; ++i) {
        if (plan.live[i] && !ir::is_leaf(g.node(NodeId{i}).op) && plan.stage[i] >= 0) {
            forward[static_cast<std::size_t>(plan.stage[i])].push_back(i);
        }
    }
    auto bytes = [&](std::uint32_t i) { return plan.tensor.bytes_per_device(g, NodeId{i}); };
    // Scratch shared by every stage and cut (allocated once: a 175B graph has hundreds of thousands of nodes).
    std::vector<int> position(n, -1);             // node -> its segment under the cut being tried
    std::vector<std::uint32_t> counted(n, 0);     // node -> the trial that last counted it as a checkpoint
    std::uint32_t trial = 0;

    for (std::size_t s = 0; s < P; ++s) {
        const std::vector<std::uint32_t>& nodes = forward[s];
        if (nodes.empty()) {
            continue;
        }
        const double in_flight =
            static_cast<double>(std::min<std::size_t>(P - s, static_cast<std::size_t>(plan.strategy.micro_batches)));
        double saved_total = 0;
        for (const std::uint32_t i : nodes) {
            saved_total += plan.saved[i] ? bytes(i) : 0.0;
        }
        Cut best;
        double best_memory = std::numeric_limits<double>::infinity();
        for (std::size_t k = 1; k <= nodes.size(); k *= 2) {
            Cut cut;
            std::vector<double> held(k, 0.0);
            double running = 0;
            for (const std::uint32_t i : nodes) {
                // Cut at equal shares of the saved bytes: a node starts segment floor(k x bytes before it / total).
                const int seg = saved_total > 0 ? std::min(static_cast<int>(static_cast<double>(k) * running / saved_total),
                                                           static_cast<int>(k) - 1)
                                                : 0;
                position[i] = seg;
                cut.segment.push_back(seg);
                const double b = plan.saved[i] ? bytes(i) : 0.0;
                running += b;
                held[static_cast<std::size_t>(seg)] += b;
            }
            // Checkpoints: values a node of this stage's forward pass reads from an earlier segment or another stage.
            ++trial;
            for (const std::uint32_t i : nodes) {
                for (const NodeId input : g.node(NodeId{i}).inputs) {
                    const std::uint32_t v = input.index;
                    if (counted[v] == trial || ir::is_leaf(g.node(input).op)) {
                        continue;
                    }
                    if (plan.stage[v] != static_cast<int>(s) || position[v] < position[i]) {
                        counted[v] = trial;
                        cut.checkpoint_bytes += bytes(v);
                    }
                }
            }
            cut.segment_bytes = *std::max_element(held.begin(), held.end());
            const double memory = cut.checkpoint_bytes * in_flight + cut.segment_bytes;
            if (memory < best_memory) {
                best_memory = memory;
                best = std::move(cut);
                rc.segments[s] = static_cast<int>(k);
            }
        }
        if (best_memory >= saved_total * in_flight) {
            rc.segments[s] = 0;  // recomputing would not save memory here (the last stages hold few micro-batches)
            continue;
        }
        for (std::size_t j = 0; j < nodes.size(); ++j) {
            rc.segment[nodes[j]] = best.segment[j];
        }
        rc.checkpoint_bytes[s] = best.checkpoint_bytes;
        rc.segment_bytes[s] = best.segment_bytes;
        for (const std::uint32_t i : nodes) {
            for (const NodeId input : g.node(NodeId{i}).inputs) {
                if (!ir::is_leaf(g.node(input).op) &&
                    (plan.stage[input.index] != static_cast<int>(s) || rc.segment[input.index] < rc.segment[i])) {
                    rc.checkpoint[input.index] = true;
                }
            }
        }
    }
}

}  // namespace dojo::compiler
