// Which buffers the executor stores channel-blocked (lower_cpu_steps.h: choose_channel_blocked).
#include "dojo/runtime/channel_blocked.h"
#include "dojo/runtime/fused_elementwise.h"
#include "dojo/runtime/onednn_kernels.h"
#include "lower_cpu_steps.h"

namespace dojo::runtime {

void choose_channel_blocked(ExecPlan& p, const std::vector<bool>& pinned, const std::vector<bool>& aliased,
                            const std::vector<bool>& fast_pool, const std::vector<bool>& rounds_shard) {
    const ir::Graph& graph = *p.graph;
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    const std::vector<std::uint32_t>& source = p.source;
    const std::vector<compiler::FusionGroup>& groups = p.groups;
    const std::vector<int>& member_of = p.member_of;
    const OneDnnKernels& onednn = *p.onednn;
    using Fit = OneDnnKernels::BlockedFit;
    // A buffer (its owner's: aliases share it) may be blocked where its writer and every reader can take it so: a
    // convolution running in the blocked layout, or a fused group that can run in the blocked order...
    std::vector<bool> fits(n, false);
    std::vector<bool> convolved(n, false);  // ...and it pays where a convolution touches it (below)
    // ...or a node whose kernel runs in either layout, its tensors all in the same one: the fast max-pooling, and a
    // RoundTo (runtime/round_channel_blocked.h) that no group runs and no shard rounds.
    auto layout_free = [&](std::uint32_t i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        if (!p.live[i] || aliased[i] || !can_store_channel_blocked(node.type.shape)) {
            return false;
        }
        return fast_pool[i] || (node.op == ir::OpKind::RoundTo && member_of[i] < 0 &&
                                 !rounds_shard[i]);
    };
    for (std::uint32_t v = 0; v < n; ++v) {
        const ir::Node& node = graph.node(ir::NodeId{v});
        if (!p.stored[v] || aliased[v] || pinned[v] || ir::is_bound_leaf(node.op) ||
            !can_store_channel_blocked(node.type.shape)) {
            continue;
        }
        if (member_of[v] >= 0) {  // an exported member
            const compiler::FusionGroup& group = groups[static_cast<std::size_t>(member_of[v])];
            fits[v] = FusedElementwise::can_be_blocked(graph, group, ir::NodeId{v}) &&
                      FusedElementwise::can_run_blocked(graph, group);
        } else if (onednn.has(ir::NodeId{v})) {
            fits[v] = convolved[v] = onednn.blocked_fit(ir::NodeId{v}) == Fit::Fits;
        } else if (layout_free(v)) {
            fits[v] = true;
        }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        if (!p.live[i] || aliased[i] || ir::is_bound_leaf(node.op)) {
            continue;  // not run (an alias's readers read its owner's buffer: they are checked as its readers)
        }
        for (const ir::NodeId u : node.inputs) {
            const std::uint32_t v = source[u.index];
            if (!fits[v] || (member_of[i] >= 0 && member_of[u.index] == member_of[i])) {
                continue;  // already out, or read inside its own group
            }
            if (member_of[i] >= 0) {  // an external of a group
                const compiler::FusionGroup& group = groups[static_cast<std::size_t>(member_of[i])];
                fits[v] = FusedElementwise::can_be_blocked(graph, group, u) &&
                          FusedElementwise::can_run_blocked(graph, group);
            } else if (onednn.has(ir::NodeId{i}) && onednn.blocked_fit(u) == Fit::Fits) {
                convolved[v] = true;
            } else if (!layout_free(i)) {
                fits[v] = false;  // a reference kernel: plain layouts only
            }
        }
    }
    // A group's buffers of its shape are blocked all or none (it runs in one order), and so are a layout-free
    // node's tensors: one that cannot be keeps the others plain, which may keep another group's plain in turn.
    // Units [0, groups) are the groups, the rest the layout-free nodes.
    std::vector<std::uint32_t> free_nodes;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (layout_free(i)) {
            free_nodes.push_back(i);
        }
    }
    const std::size_t units = groups.size() + free_nodes.size();
    auto each_buffer = [&](std::size_t g, auto&& f) {
        if (g >= groups.size()) {
            const std::uint32_t i = free_nodes[g - groups.size()];
            const ir::Node& node = graph.node(ir::NodeId{i});
            f(i);  // never an alias: its own buffer
            for (std::size_t k = 0; k < node.inputs.size(); ++k) {
                if (node.op != ir::OpKind::RoundTo || k == 0) {  // not a rounding's step: a scalar
                    f(source[node.inputs[k].index]);
                }
            }
            return;
        }
        const compiler::FusionGroup& group = groups[g];
        for (std::size_t k = 0; k < group.members.size(); ++k) {
            if (group.exported[k] && FusedElementwise::can_be_blocked(graph, group, group.members[k])) {
                f(source[group.members[k].index]);
            }
        }
        for (const ir::NodeId e : group.externals) {
            if (FusedElementwise::can_be_blocked(graph, group, e)) {
                f(source[e.index]);
            }
        }
    };
    // Sets `flag` on all of a group's buffers where some have it and `spreads` from one of them, to a fixed point.
    auto spread = [&](std::vector<bool>& flag, bool to, auto&& spreads) {
        for (bool changed = true; changed;) {
            changed = false;
            for (std::size_t g = 0; g < units; ++g) {
                bool all = true;
                bool any = false;
                each_buffer(g, [&](std::uint32_t v) {
                    all = all && flag[v] == to;
                    any = any || spreads(v);
                });
                if (any && !all) {
                    each_buffer(g, [&](std::uint32_t v) { flag[v] = to; });
                    changed = true;
                }
            }
        }
    };
    spread(fits, false, [&](std::uint32_t v) { return !fits[v]; });
    // It pays where a convolution touches the buffer, or a group that touches one a convolution touches (x - mean,
    // which a BatchNorm's groups pass between them, say: blocked, its groups run wholly in the blocked order).
    // Spread to a fixed point, so that a group's buffers are blocked all or none.
    spread(convolved, true, [&](std::uint32_t v) { return fits[v] && convolved[v]; });
    for (std::uint32_t i = 0; i < n; ++i) {
        p.blocked[i] = fits[source[i]] && convolved[source[i]];
    }
}

}  // namespace dojo::runtime
