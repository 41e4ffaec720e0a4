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

namespace {

// What programs are cut from: the training graph itself (tp = 1), or one tensor-parallel device's graph.
struct Source {
    const ir::Graph& graph;
    std::vector<NodeId> training;              // [node]: the training-graph node it is or serves
    std::vector<bool> live;                    // [node]
    std::vector<NodeId> results;               // the loss and the assignments' new values, as nodes of `graph`
    std::map<std::uint32_t, StageProgram::Leaf> leaves;  // [leaf node]: what it holds (`here` unset)
    std::vector<NodeId> all_reduce_after;      // nodes of `graph` summed over the tensor-parallel group
};

std::vector<StageProgram> cut(const Plan& plan, const Source& src) {
    const ir::Graph& g = src.graph;
    const std::size_t n = g.size();
    const int programs = kParts * plan.strategy.pp;
    std::vector<StageProgram> out(static_cast<std::size_t>(programs));
    for (int p = 0; p < programs; ++p) {
        out[static_cast<std::size_t>(p)].stage = p / kParts;
        out[static_cast<std::size_t>(p)].part = static_cast<ProgramPart>(p % kParts);
    }
    std::vector<int> home(n, -1);  // computed node -> its program, by its training node's stage and part
    for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint32_t t = src.training[i].index;
        if (src.live[i] && plan.live[t] && plan.stage[t] >= 0 && !ir::is_leaf(g.node(NodeId{i}).op)) {
            home[i] = program_of(plan, t);
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
    for (const NodeId r : src.results) {
        exported[r.index] = exported[r.index] || home[r.index] >= 0;
    }
    // Values every device computes for itself (computed_locally: from fills, constants and the learning rate): a
    // program that reads one computes its own copy rather than receiving it, as the plan has no transfer for it.
    // (Received instead, two stages' update programs could each wait for the other's scalars.)
    const std::vector<bool> step_constant = computed_locally(g);
    // Each program's graph, in the source graph's order (a topological order stays one).
    std::vector<std::map<std::uint32_t, NodeId>> local(static_cast<std::size_t>(programs));  // source -> here
    // With recomputation, a backward program computes its stage's forward values again from the checkpoints
    // (compiler/recompute.h) instead of receiving them: a forward value of its own stage that is not a checkpoint.
    const Plan::Recomputation& rc = plan.recomputation;
    auto recomputed = [&](int p, std::uint32_t v) {
        const int stage = p / kParts;
        return plan.strategy.recompute && static_cast<ProgramPart>(p % kParts) == ProgramPart::Backward &&
               home[v] == kParts * stage + static_cast<int>(ProgramPart::Forward) &&
               rc.segments[static_cast<std::size_t>(stage)] > 0 && !rc.checkpoint[src.training[v].index];
    };
    // Adds source node `i` (its inputs first where they are missing) to program `p`.
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
                if (from.op == OpKind::Parameter || from.op == OpKind::State || from.op == OpKind::Input) {
                    leaf = from.op == OpKind::Parameter ? prog.graph.add_parameter(from.name, from.type)
                           : from.op == OpKind::State   ? prog.graph.add_state(from.name, from.type)
                                                        : prog.graph.add_input(from.name, from.type);
                    StageProgram::Leaf held = src.leaves.at(in.index);
                    held.here = leaf;
                    prog.leaves.push_back(held);
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
    // The group's all-reduces, in each program that computes the value (its home, or a recomputing backward).
    for (const NodeId a : src.all_reduce_after) {
        for (std::size_t p = 0; p < out.size(); ++p) {
            const auto it = local[p].find(a.index);
            if (it != local[p].end() && !ir::is_leaf(out[p].graph.node(it->second).op)) {
                out[p].all_reduce_after.push_back(it->second);
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

}  // namespace

std::vector<StageProgram> insert_transfers(const Plan& plan) {
    if (plan.strategy.tp > 1) {
        throw UsageError("insert_transfers: a tensor-parallel plan (tp=" + std::to_string(plan.strategy.tp) +
                         ") is cut per device: pass each device's program (compiler/split_tensor_parallel.h)");
    }
    const ir::Graph& g = plan.step.graph;
    Source src{g, {}, plan.live, {plan.step.loss}, {}, {}};
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        src.training.push_back(NodeId{i});
        const OpKind op = g.node(NodeId{i}).op;
        if (op == OpKind::Parameter || op == OpKind::State || op == OpKind::Input) {
            src.leaves.emplace(i, StageProgram::Leaf{NodeId{}, NodeId{i}, -1, 1});
        }
    }
    for (const autodiff::Assignment& a : plan.step.updates) {
        src.results.push_back(a.value);
    }
    return cut(plan, src);
}

std::vector<StageProgram> insert_transfers(const Plan& plan, const DeviceProgram& device) {
    const ir::Graph& g = device.graph;
    Source src{g, device.origin, std::vector<bool>(g.size(), true), {device.local[plan.step.loss.index]}, {},
               device.all_reduce_after};
    for (const DeviceProgram::Leaf& leaf : device.leaves) {
        src.leaves.emplace(leaf.here.index, StageProgram::Leaf{NodeId{}, leaf.training, leaf.split_axis, leaf.groups});
    }
    for (const autodiff::Assignment& a : plan.step.updates) {
        if (device.local[a.value.index].valid()) {
            src.results.push_back(device.local[a.value.index]);
        }
    }
    return cut(plan, src);
}

}  // namespace dojo::compiler
