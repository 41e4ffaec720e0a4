/** \file
 * The elementwise fusion pass: which chains of elementwise maps (ir/elementwise.h), broadcasts (BroadcastTo) and
 * element-by-element roundings (a RoundTo with neither a configurable bias nor stochastic draws, i.e. bf16 nearest-even)
 * over one output shape run as one loop over blocks of elements that stay in cache, instead of one pass over memory
 * per op. (RoundGrad, whose forward is the identity, is no member: the runtime's value of it is its input's buffer,
 * runtime/executor.h.) A lowered BatchNorm or an optimizer update is a dozen such ops; fused, its intermediate tensors
 * are never written to memory.
 *
 * The runtime runs each group as one kernel (runtime/fused_elementwise.h), and the simulator times each group as
 * one pass (sim/simulate.h: the externals read once, the exported members written once), so what the simulator
 * times is what the runtime runs.
 *
 * A group's members have the group's shape (its first member's), except its sums; each of their inputs is either an
 * earlier member or an external buffer that broadcasts to the shape. A sum is a ReduceSum of a member whose reduced
 * axes include the innermost, so that each row of the pass (the shape cut into rows along which every external is
 * contiguous or broadcast) adds into one output element: the runtime sums a row while the pass computes it, and no
 * member reads a sum (it is complete only after the pass). Members whose values something outside the group reads
 * (a later node, a graph output, a node the caller keeps; always a sum) are exported: written to their buffers.
 * The others are never stored.
 *
 * Grouping is greedy in graph order: a map joins the group of an input member of the same shape while that group
 * is open, and another open group of that shape whose member it reads merges in (neither has been read from
 * outside, so both can run where the node is; members stay in graph order); a sum joins its input's open group
 * when the group's rows are its rows. A group closes when a node outside it reads one of its members, so a group
 * can run at the position of its last member and every outside reader comes later. Only F32 values of at least
 * kFusionMinElements elements fuse (below that a pass over memory costs less than the group's bookkeeping), and only
 * where the externals leave contiguous rows of at least 16 elements to vectorise.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "dojo/ir/graph.h"

namespace dojo::compiler {

inline constexpr std::int64_t kFusionMinElements = 4096;

struct FusionGroup {
    std::vector<ir::NodeId> members;    ///< in graph order; the last one is where the group runs
    std::vector<bool> exported;         ///< [k]: members[k]'s value is written to its buffer
    std::vector<ir::NodeId> externals;  ///< the buffers members read from outside the group (each listed once)
};

/// Groups of at least two elementwise maps among the nodes `live` marks; `kept[i]`: node i's value must be
/// materialized whatever reads it (outputs, nodes the caller reads); `closing[i]` (empty: none): node i is the
/// last member of its group, so the group runs as soon as node i's value exists (a node the caller must see
/// before its readers run, e.g. a gradient to all-reduce); `kind[i]` (empty: all alike): only nodes of one kind
/// share a group (a plan's stage, per-step or per-micro-batch, divided or not by tensor parallelism). Groups are
/// disjoint.
std::vector<FusionGroup> find_fusion_groups(const ir::Graph& graph, const std::vector<bool>& live,
                                            const std::vector<bool>& kept, const std::vector<bool>& closing = {},
                                            const std::vector<int>& kind = {});

}  // namespace dojo::compiler
