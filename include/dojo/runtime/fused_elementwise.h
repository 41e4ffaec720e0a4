/** \file
 * Fused elementwise kernels: a chain of elementwise maps (ir/elementwise.h) and broadcasts (BroadcastTo, a copy)
 * over one output shape runs as one loop
 * over blocks of elements that stay in cache, instead of one pass over memory per op. A lowered BatchNorm or an
 * optimizer update is a dozen such ops; fused, its intermediate tensors are never written to memory.
 *
 * A group's members have the group's shape; each of their inputs is either an earlier member or an external
 * buffer that broadcasts to the shape. Members whose values something outside the group reads (a later node, a
 * graph output, a node the caller keeps) are exported: written to their buffers. The others live only in a block
 * of scratch. Every member computes F(a, b) with the same scalar function as its reference kernel, in float, so a
 * fused group produces exactly the values the unfused ops produce (bit for bit, any thread count).
 *
 * Grouping (find_fusion_groups) is greedy in graph order: a map joins the group of an input member of the same
 * shape while that group is open; a group closes when a node outside it reads one of its members, so a group can
 * run at the position of its last member and every outside reader comes later.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"

namespace dojo::runtime {

struct FusionGroup {
    std::vector<ir::NodeId> members;  ///< in graph order; the last one is where the group runs
    std::vector<bool> exported;       ///< [k]: members[k]'s value is written to its buffer
    std::vector<ir::NodeId> externals;  ///< the buffers members read from outside the group (each listed once)
};

/// Groups of at least two elementwise maps among the nodes `live` marks; `kept[i]`: node i's value must be
/// materialized whatever reads it (outputs, nodes the caller reads); `closing[i]` (empty: none): node i is the
/// last member of its group, so the group runs as soon as node i's value exists (a node the caller must see
/// before its readers run, e.g. a gradient to all-reduce). Groups are disjoint.
std::vector<FusionGroup> find_fusion_groups(const ir::Graph& graph, const std::vector<bool>& live,
                                            const std::vector<bool>& kept, const std::vector<bool>& closing = {});

/// One group, ready to run.
class FusedElementwise {
public:
    FusedElementwise(const ir::Graph& graph, FusionGroup group);

    /// Reads the externals' buffers in `values` (indexed by node), writes the exported members' buffers.
    void run(std::vector<ir::Buffer<float>>& values) const;

    const FusionGroup& group() const { return group_; }

private:
    struct Operand {
        bool member = false;  // an earlier member (index into members) or an external (index into externals)
        std::uint32_t index = 0;
    };
    struct Step {
        ir::OpKind op;
        bool binary = false;
        Operand a, b;  // b unused by unary ops
    };
    struct Scratch {  // one per thread: a block per member, and the current row's operand pointers
        std::vector<float> block;
        std::vector<float*> at;
        std::vector<const float*> base;
        std::vector<std::int64_t> stride;
    };
    FusionGroup group_;
    ir::Shape shape_;
    ir::BroadcastRows layout_;  // the output's rows and each external's offsets and strides along them
    std::vector<Step> steps_;   // one per member
    mutable std::vector<Scratch> scratch_;  // grown by the first run() only
};

}  // namespace dojo::runtime
