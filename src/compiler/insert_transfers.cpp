// insert_transfers (insert_transfers.h): the plan's training graph cut into per-stage programs with explicit receives.
#include "dojo/compiler/insert_transfers.h"

#include <algorithm>
#include <functional>
#include <map>

#include "dojo/ir/op.h"
#include "dojo/util/error.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;
using ir::OpKind;

constexpr int kParts = 3;


// The program a live, computed node belongs to: 3 * stage + part.
int program_of(const Plan& plan, std::uint32_t i) {
    const ProgramPart part = i <= plan.last_forward.index ? ProgramPart::Forward
                             : plan.per_step[i]           ? ProgramPart::Update
                                                          : ProgramPart::Backward;
    return kParts * plan.stage[i] + static_cast<int>(part);
}

}  // namespace

const char* to_string(ProgramPart part) {
    switch (part) {
        case ProgramPart::Forward: return "forward";
        case ProgramPart::Backward: return "backward";
        case ProgramPart::Update: return "update";
    }
    return "?";
}

std::vector<StageProgram> insert_transfers(const Plan& plan) {
    if (plan.strategy.tp > 1) {
        throw UsageError("insert_transfers: tensor-parallel plans (tp=" + std::to_string(plan.strategy.tp) +
                         ") are not cut into programs yet; use tp=1");
    }
    const ir::Graph& g = plan.step.graph;
    const std::size_t n = g.size();
    const int programs = kParts * plan.strategy.pp;
    std::vector<StageProgram> out(static_cast<std::size_t>(programs));
    for (int p = 0; p < programs; ++p) {
        out[static_cast<std::size_t>(p)].stage = p / kParts;
        out[static_cast<std::size_t>(p)].part = static_cast<ProgramPart>(p % kParts);
    }
    std::vector<int> home(n, -1);  // computed node -> its program
    for (std::uint32_t i = 0; i < n; ++i) {
        if (plan.live[i] && plan.stage[i] >= 0 && !ir::is_leaf(g.node(NodeId{i}).op)) {
            home[i] = program_of(plan, i);
        }
    }
    // Values some other program reads, and what the step hands back: they are outputs of their home program.
    std::vector<bool> exported(n, false);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (home[i] < 0) {
            continue;
        }
        for (const NodeId in : g.node(NodeId{i}).inputs) {
            if (home[in.index] >= 0 && home[in.index] != home[i]) {
                exported[in.index] = true;
            }
        }
    }
    exported[plan.step.loss.index] = true;
    for (const autodiff::Assignment& a : plan.step.updates) {
        if (home[a.value.index] >= 0) {
            exported[a.value.index] = true;
        }
    }
    // Values every device computes for itself (computed_locally: from fills, constants and the learning rate): a
    // program that reads one computes its own copy rather than receiving it, as the plan has no transfer for it.
    // (Received instead, two stages' update programs could each wait for the other's scalars.)
    const std::vector<bool> step_constant = computed_locally(g);
    // Each program's graph, in the training graph's order (a topological order stays one).
    std::vector<std::map<std::uint32_t, NodeId>> local(static_cast<std::size_t>(programs));  // training -> here
    // With recomputation, a backward program computes its stage's forward values again from the checkpoints
    // (compiler/recompute.h) instead of receiving them: a forward value of its own stage that is not a checkpoint.
    const Plan::Recomputation& rc = plan.recomputation;
    auto recomputed = [&](int p, std::uint32_t v) {
        const int stage = p / kParts;
        return plan.strategy.recompute && static_cast<ProgramPart>(p % kParts) == ProgramPart::Backward &&
               home[v] == kParts * stage + static_cast<int>(ProgramPart::Forward) &&
               rc.segments[static_cast<std::size_t>(stage)] > 0 && !rc.checkpoint[v];
    };
    // Adds training node `i` (its inputs first where they are missing) to program `p`.
    std::function<NodeId(int, std::uint32_t)> add_node = [&](int p, std::uint32_t i) -> NodeId {
        StageProgram& prog = out[static_cast<std::size_t>(p)];
        std::map<std::uint32_t, NodeId>& here = local[static_cast<std::size_t>(p)];
        const ir::Node& node = g.node(NodeId{i});
        std::vector<NodeId> inputs;
        for (const NodeId in : node.inputs) {
            auto it = here.find(in.index);
            if (it == here.end() && home[in.index] >= 0 && home[in.index] != p &&
                (step_constant[in.index] || recomputed(p, in.index))) {
                add_node(p, in.index);  // its own copy
                it = here.find(in.index);
            }
            if (it == here.end()) {
                const ir::Node& from = g.node(in);
                NodeId leaf;
                if (from.op == OpKind::Parameter) {
                    leaf = prog.graph.add_parameter(from.name, from.type);
                    prog.leaves.push_back({leaf, in});
                } else if (from.op == OpKind::State) {
                    leaf = prog.graph.add_state(from.name, from.type);
                    prog.leaves.push_back({leaf, in});
                } else if (from.op == OpKind::Input) {
                    leaf = prog.graph.add_input(from.name, from.type);
                    prog.leaves.push_back({leaf, in});
                } else if (ir::is_leaf(from.op)) {  // a fill or a constant: copied
                    leaf = prog.graph.add(from.op, from.attrs, {}, from.name);
                } else {
                    leaf = prog.graph.add_input("recv #" + std::to_string(in.index), from.type);
                    const int source = home[in.index];
                    if (source < 0) {
                        throw Error("insert_transfers: " + g.describe(NodeId{i}) + " reads " + g.describe(in) +
                                    ", which no program computes (the plan's liveness is inconsistent)");
                    }
                    prog.receives.push_back({leaf, in, source / kParts, static_cast<ProgramPart>(source % kParts)});
                }
                prog.origin.push_back(in);
                it = here.emplace(in.index, leaf).first;
            }
            inputs.push_back(it->second);
        }
        const NodeId id = prog.graph.add(node.op, node.attrs, std::move(inputs), node.name);
        prog.origin.push_back(NodeId{i});
        here.emplace(i, id);
        return id;
    };
    for (std::uint32_t i = 0; i < n; ++i) {
        if (home[i] < 0) {
            continue;
        }
        const NodeId id = add_node(home[i], i);
        if (exported[i]) {
            out[static_cast<std::size_t>(home[i])].graph.mark_output(id);
        }
    }
    // Every received value is an output of the program that computes it (a recomputed node may read a checkpoint
    // that no node of the backward program read before).
    for (std::size_t p = 0; p < out.size(); ++p) {
        for (const StageProgram::Receive& r : out[p].receives) {
            const int source = home[r.value.index];
            if (!exported[r.value.index]) {
                exported[r.value.index] = true;
                out[static_cast<std::size_t>(source)].graph.mark_output(
                    local[static_cast<std::size_t>(source)].at(r.value.index));
            }
        }
    }
    // Programs that hold only leaves compute nothing: leave them empty.
    for (std::size_t p = 0; p < out.size(); ++p) {
        if (out[p].graph.outputs().empty()) {
            out[p] = StageProgram{};
            out[p].stage = static_cast<int>(p) / kParts;
            out[p].part = static_cast<ProgramPart>(static_cast<int>(p) % kParts);
        }
    }
    return out;
}

}  // namespace dojo::compiler
