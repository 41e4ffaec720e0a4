/** \file
 * Fused elementwise kernels: runs a group of the elementwise fusion pass (compiler/fuse_elementwise.h, which says
 * what a group is) as one loop over blocks of elements that stay in cache. Members nobody outside the group reads
 * live only in a block of scratch. Every member computes F(a, b) with the same scalar function as its reference
 * kernel, in float, so a fused group produces exactly the values the unfused ops produce (bit for bit, any thread
 * count). A ReduceSum member sums each row of the pass into a per-row partial in ReduceSum's own order
 * (ir/reduce.h: RowSum; the fusion pass admits it only where the group's rows are the rows it sums), and after
 * the pass the partials are added into its output in row order, as its reference kernel adds them.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/ir/broadcast.h"
#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"
#include "dojo/numerics/convert.h"
#include "dojo/ir/reduce.h"

namespace dojo::runtime {

using compiler::FusionGroup;

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
        int reduction = -1;  // ReduceSum: index into reductions_
        bool rounds = false;  // RoundTo (element by element): a copy of a, rounded with `format` and `convert`
        numerics::FormatSpec format{};
        numerics::ConvertOptions convert{};
        bool rounds_bf16_nearest = false;  // the rounding is BF16 nearest-even (round_to_bf16_nearest_values)
    };
    struct Reduction {
        std::uint32_t member = 0;               // index into members
        std::vector<std::int64_t> output_of;    // [row]: the output element the row adds into
        mutable std::vector<float> row_sums;    // [row]: the row's sum, written by the pass
    };
    struct Scratch {  // one per thread: a block per member, and the current row's operand pointers
        std::vector<float> block;
        std::vector<float*> at;
        std::vector<const float*> base;
        std::vector<std::int64_t> stride;
        std::vector<ir::RowSum<float>> sums;  // [reduction]: the current row's
    };
    FusionGroup group_;
    ir::Shape shape_;
    ir::BroadcastRows layout_;  // the output's rows and each external's offsets and strides along them
    std::vector<Step> steps_;   // one per member
    std::vector<Reduction> reductions_;
    mutable std::vector<Scratch> scratch_;  // grown by the first run() only
};

}  // namespace dojo::runtime
