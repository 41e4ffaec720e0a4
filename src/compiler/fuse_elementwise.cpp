// The elementwise fusion pass (fuse_elementwise.h): greedy grouping of maps in graph order.
#include "dojo/compiler/fuse_elementwise.h"

#include <algorithm>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/elementwise.h"
#include "dojo/ir/reduce.h"
#include "dojo/ir/rounding.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;

// Rows shorter than this (externals broadcasting along inner axes) leave too little to vectorise.
constexpr std::int64_t kMinRowLength = 16;
std::int64_t row_length(const ir::Graph& graph, const ir::Shape& shape, const std::vector<NodeId>& externals,
                        const std::vector<ir::Shape>& reduced = {}) {
    std::vector<const ir::Shape*> shapes;
    for (const NodeId e : externals) {
        shapes.push_back(&graph.type(e).shape);
    }
    for (const ir::Shape& kept : reduced) {
        shapes.push_back(&kept);
    }
    return ir::BroadcastRows(shape, shapes).row_length();
}

// The row a ReduceSum of a `shape` value sums into one output element (its kept shape broadcasting along the row),
// or 0 when its innermost axis is not reduced (each row then adds into a run of outputs: not fused).
std::int64_t reduction_row(const ir::Shape& shape, const ir::Shape& kept) {
    const ir::BroadcastRows rows(shape, {&kept});
    return rows.inner_stride(0) == 0 ? rows.row_length() : 0;
}

}  // namespace

std::vector<FusionGroup> find_fusion_groups(const ir::Graph& graph, const std::vector<bool>& live,
                                            const std::vector<bool>& kept, const std::vector<bool>& closing,
                                            const std::vector<int>& kind) {
    auto same_kind = [&](NodeId a, std::uint32_t b) { return kind.empty() || kind[a.index] == kind[b]; };
    const std::size_t n = graph.size();
    std::vector<int> group_of(n, -1);
    std::vector<bool> exported(n, false);
    std::vector<FusionGroup> groups;
    std::vector<bool> closed;
    std::vector<std::vector<ir::Shape>> reduced;  // [group]: its reductions' kept shapes
    std::vector<std::int64_t> reduced_row;         // [group]: the row its reductions sum (0: none yet)
    std::vector<bool> is_reduction(n, false);
    auto in_group = [&](NodeId id, int g) { return g >= 0 && group_of[id.index] == g; };
    auto group_shape = [&](int g) -> const ir::Shape& {
        return graph.type(groups[static_cast<std::size_t>(g)].members.front()).shape;
    };

    for (std::uint32_t i = 0; i < n; ++i) {
        if (!live[i]) {
            continue;
        }
        const ir::Node& node = graph.node(NodeId{i});
        const bool per_element_rounding = node.op == ir::OpKind::RoundTo &&
                                          !ir::rounding_sees_whole_tensor(std::get<ir::RoundAttrs>(node.attrs));
        const bool eligible = (ir::is_elementwise_map(node.op) || node.op == ir::OpKind::BroadcastTo ||
                               per_element_rounding) &&
                              node.type.dtype == ir::DType::F32 &&
                              node.type.shape.numel() >= kFusionMinElements;
        // A ReduceSum of an open group's member joins that group when the group's rows are exactly the rows it
        // sums (so the runtime adds them in the op table kernel's order); nothing in the group may read it.
        if (node.op == ir::OpKind::ReduceSum && node.type.dtype == ir::DType::F32) {
            const NodeId input = node.inputs[0];
            const int g = group_of[input.index];
            if (g >= 0 && !closed[static_cast<std::size_t>(g)] && !is_reduction[input.index] && same_kind(input, i)) {
                const ir::Shape sums_into = ir::reduce_kept_shape(graph, NodeId{i});
                const std::int64_t row = reduction_row(group_shape(g), sums_into);
                std::vector<ir::Shape> all = reduced[static_cast<std::size_t>(g)];
                all.push_back(sums_into);
                const std::size_t k = static_cast<std::size_t>(g);
                if (row >= kMinRowLength && (reduced_row[k] == 0 || reduced_row[k] == row) &&
                    row_length(graph, group_shape(g), groups[k].externals, all) == row) {
                    groups[k].members.push_back(NodeId{i});
                    reduced[k] = std::move(all);
                    reduced_row[k] = row;
                    group_of[i] = g;
                    is_reduction[i] = true;
                    exported[i] = true;  // a sum is always read after the pass
                    if (!closing.empty() && closing[i]) {
                        closed[k] = true;
                    }
                    continue;
                }
            }
        }
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
                if (g >= 0 && !closed[static_cast<std::size_t>(g)] && graph.type(input).shape == node.type.shape &&
                    same_kind(input, i)) {
                    join = g;
                    break;
                }
            }
            for (const NodeId input : node.inputs) {
                if (is_reduction[input.index] && group_of[input.index] == join) {
                    join = -1;  // a sum is complete only after the group's pass: read it from outside
                }
            }
            if (join >= 0) {
                new_externals = outside_inputs(join);
                std::vector<NodeId> all = groups[static_cast<std::size_t>(join)].externals;
                all.insert(all.end(), new_externals.begin(), new_externals.end());
                const std::size_t k = static_cast<std::size_t>(join);
                const std::int64_t rows = row_length(graph, node.type.shape, all, reduced[k]);
                if (rows < kMinRowLength || (reduced_row[k] != 0 && rows != reduced_row[k])) {
                    join = -1;  // joining would cut the group into short rows, or rows its sums do not sum: start
                                // afresh (or not at all) below
                }
            }
            // Another open group of the same shape whose member this node reads merges into the joined one
            // (neither has been read from outside, so together they run where this node is), unless that would
            // cut the rows: then it closes below.
            for (const NodeId input : node.inputs) {
                const int h = group_of[input.index];
                if (join < 0 || h < 0 || h == join || closed[static_cast<std::size_t>(h)] ||
                    is_reduction[input.index] || graph.type(input).shape != node.type.shape || !same_kind(input, i)) {
                    continue;
                }
                const std::size_t a = static_cast<std::size_t>(join);
                const std::size_t b = static_cast<std::size_t>(h);
                std::vector<NodeId> merged = groups[a].externals;  // neither group reads the other's members
                for (const NodeId e : groups[b].externals) {
                    if (std::find(merged.begin(), merged.end(), e) == merged.end()) {
                        merged.push_back(e);
                    }
                }
                std::vector<NodeId> all = merged;
                for (const NodeId e : node.inputs) {
                    if (!in_group(e, join) && !in_group(e, h) && std::find(all.begin(), all.end(), e) == all.end()) {
                        all.push_back(e);
                    }
                }
                std::vector<ir::Shape> sums = reduced[a];
                sums.insert(sums.end(), reduced[b].begin(), reduced[b].end());
                const std::int64_t wanted = reduced_row[a] != 0 ? reduced_row[a] : reduced_row[b];
                const std::int64_t rows = row_length(graph, node.type.shape, all, sums);
                if (rows < kMinRowLength || (wanted != 0 && rows != wanted) ||
                    (reduced_row[a] != 0 && reduced_row[b] != 0 && reduced_row[a] != reduced_row[b])) {
                    continue;
                }
                for (const NodeId m : groups[b].members) {
                    group_of[m.index] = join;
                    groups[a].members.push_back(m);
                }
                std::sort(groups[a].members.begin(), groups[a].members.end(),
                          [](NodeId x, NodeId y) { return x.index < y.index; });  // graph order is an order to run
                groups[a].externals = std::move(merged);
                reduced[a] = std::move(sums);
                reduced_row[a] = wanted;
                groups[b].members.clear();
                groups[b].externals.clear();
                closed[b] = true;
                new_externals = outside_inputs(join);
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
            reduced.emplace_back();
            reduced_row.push_back(0);
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
