// The ExecPlan as text (exec_plan.h: dump_exec_plan).
#include <map>

#include "dojo/ir/op.h"
#include "dojo/runtime/exec_plan.h"

namespace dojo::runtime {
namespace {

std::string node_text(const ir::Graph& g, ir::NodeId id) { return g.describe(id) + " " + g.type(id).to_string(); }

std::string ids(const ir::Graph& g, const std::vector<ir::NodeId>& nodes, const std::vector<bool>* marked = nullptr) {
    std::string out;
    for (std::size_t k = 0; k < nodes.size(); ++k) {
        out += (k == 0 ? "" : " ") + g.describe(nodes[k]) + (marked != nullptr && (*marked)[k] ? "*" : "");
    }
    return out;
}

// Where its value is: its bytes in the arena, an alias's source, its leaf's buffer (an update in place), or nowhere
// (a group member in registers).
std::string place(const ExecPlan& p, std::uint32_t i) {
    const ir::Graph& g = *p.graph;
    if (p.kernel[i] == NodeKernel::Alias) {
        return "= " + g.describe(ir::NodeId{p.source[i]});
    }
    if (p.source[i] != i) {
        return "in place of " + g.describe(ir::NodeId{p.source[i]});
    }
    if (p.value_bytes[i] == 0) {
        return "not stored";
    }
    return "@" + std::to_string(p.memory.offset_bytes[i]) + " +" + std::to_string(p.value_bytes[i]) +
           (p.blocked[i] ? " blocked" : "");
}

}  // namespace

std::string dump_exec_plan(const ExecPlan& p) {
    const ir::Graph& g = *p.graph;
    std::map<NodeKernel, std::size_t> counts;
    std::size_t bound = 0;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (p.kernel[i] != NodeKernel::None) {
            ++counts[p.kernel[i]];
        } else if (p.live[i]) {
            ++bound;
        }
    }
    std::string out = "exec plan: kernels " + std::string(to_string(p.kernels)) + ", " + std::to_string(g.size()) +
                      " nodes, " + std::to_string(bound) + " bound leaves, arena " +
                      std::to_string(p.memory.arena_bytes) + " bytes (lower bound " +
                      std::to_string(p.memory.peak_live_bytes) + "), " + std::to_string(p.groups.size()) +
                      " fused groups\n  by kernel:";
    for (const auto& [kernel, count] : counts) {
        out += " " + std::string(to_string(kernel)) + " " + std::to_string(count);
    }
    out += "\nleaves (bound by the caller)\n";
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (p.live[i] && p.kernel[i] == NodeKernel::None) {
            out += "  " + node_text(g, ir::NodeId{i}) + " " + place(p, i) + "\n";
        }
    }
    out += "run order\n";
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const NodeKernel k = p.kernel[i];
        if (k == NodeKernel::None) {
            continue;
        }
        out += "  " + node_text(g, ir::NodeId{i}) + ": " + std::string(to_string(k));
        if (p.member_of[i] >= 0) {
            out += " g" + std::to_string(p.member_of[i]);
        }
        if (k == NodeKernel::RoundGroupMaxAbs) {
            out += " (max-abs from g" + std::to_string(p.max_abs_from[i]) + ")";
        }
        out += ", " + place(p, i) + "\n";
    }
    out += "fused groups (* exported)\n";
    for (std::size_t k = 0; k < p.groups.size(); ++k) {
        const compiler::FusionGroup& group = p.groups[k];
        out += "  g" + std::to_string(k) + " at " + g.describe(group.members.back()) + ": " +
               ids(g, group.members, &group.exported) + " <- " + ids(g, group.externals) + "\n";
    }
    return out;
}

}  // namespace dojo::runtime
