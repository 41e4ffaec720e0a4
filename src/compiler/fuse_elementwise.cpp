// The elementwise fusion pass (fuse_elementwise.h): greedy grouping of maps in graph order.
#include "dojo/compiler/fuse_elementwise.h"

#include <algorithm>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/elementwise.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;

// Rows shorter than this (externals broadcasting along inner axes) leave too little to vectorise.
constexpr std::int64_t kMinRowLength = 16;
std::int64_t row_length(const ir::Graph& graph, const ir::Shape& shape, const std::vector<NodeId>& externals) {
    std::vector<const ir::Shape*> shapes;
    for (const NodeId e : externals) {
        shapes.push_back(&graph.type(e).shape);
    }
    return ir::BroadcastRows(shape, shapes).row_length();
}

}  // namespace

std::vector<FusionGroup> find_fusion_groups(const ir::Graph& graph, const std::vector<bool>& live,
                                            const std::vector<bool>& kept, const std::vector<bool>& closing) {
    const std::size_t n = graph.size();
    std::vector<int> group_of(n, -1);
    std::vector<bool> exported(n, false);
    std::vector<FusionGroup> groups;
    std::vector<bool> closed;
    auto in_group = [&](NodeId id, int g) { return g >= 0 && group_of[id.index] == g; };

    for (std::uint32_t i = 0; i < n; ++i) {
        if (!live[i]) {
            continue;
        }
        const ir::Node& node = graph.node(NodeId{i});
        const bool eligible = (ir::is_elementwise_map(node.op) || node.op == ir::OpKind::BroadcastTo) &&
                              node.type.dtype == ir::DType::F32 &&
                              node.type.shape.numel() >= kFusionMinElements;
        // The node's inputs from outside group g (all of them for g < 0), each once, less those g already reads.
        auto outside_inputs = [&](int g) {
            const std::vector<NodeId> none;
            const std::vector<NodeId>& known = g >= 0 ? groups[static_cast<std::size_t>(g)].externals : none;
            std::vector<NodeId> list;
            for (const NodeId input : node.inputs) {
                if (!in_group(input, g) && std::find(list.begin(), list.end(), input) == list.end() &&
                    std::find(known.begin(), known.end(), input) == known.end()) {
                    list.push_back(input);
                }
            }
            return list;
        };
        int join = -1;
        std::vector<NodeId> new_externals;
        if (eligible) {
            for (const NodeId input : node.inputs) {
                const int g = group_of[input.index];
                if (g >= 0 && !closed[static_cast<std::size_t>(g)] && graph.type(input).shape == node.type.shape) {
                    join = g;
                    break;
                }
            }
            if (join >= 0) {
                new_externals = outside_inputs(join);
                std::vector<NodeId> all = groups[static_cast<std::size_t>(join)].externals;
                all.insert(all.end(), new_externals.begin(), new_externals.end());
                if (row_length(graph, node.type.shape, all) < kMinRowLength) {
                    join = -1;  // joining would cut the group into short rows: start afresh (or not at all) below
                }
            }
            if (join < 0) {
                new_externals = outside_inputs(-1);
            }
        }
        // Members of other groups that this node reads are read from outside: their groups close, their values
        // are written out.
        for (const NodeId input : node.inputs) {
            const int g = group_of[input.index];
            if (g >= 0 && g != join) {
                closed[static_cast<std::size_t>(g)] = true;
                exported[input.index] = true;
            }
        }
        if (join >= 0) {
            FusionGroup& group = groups[static_cast<std::size_t>(join)];
            group.members.push_back(NodeId{i});
            group.externals.insert(group.externals.end(), new_externals.begin(), new_externals.end());
            group_of[i] = join;
        } else if (eligible && row_length(graph, node.type.shape, new_externals) >= kMinRowLength) {
            groups.push_back(FusionGroup{{NodeId{i}}, {}, new_externals});
            closed.push_back(false);
            group_of[i] = static_cast<int>(groups.size() - 1);
        }
        if (kept[i]) {
            exported[i] = true;
        }
        if (!closing.empty() && closing[i] && group_of[i] >= 0) {
            closed[static_cast<std::size_t>(group_of[i])] = true;
        }
    }

    std::vector<FusionGroup> fused;
    for (FusionGroup& group : groups) {
        if (group.members.size() < 2) {
            continue;  // a lone map runs its own kernel
        }
        for (const NodeId m : group.members) {
            group.exported.push_back(exported[m.index]);
        }
        fused.push_back(std::move(group));
    }
    return fused;
}

}  // namespace dojo::compiler
