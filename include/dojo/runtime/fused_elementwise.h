/** \file
 * Fused elementwise kernels: runs a group of the elementwise fusion pass (compiler/fuse_elementwise.h, which says
 * what a group is) as one loop over blocks of elements that stay in cache. Members nobody outside the group reads
 * live only in a block of scratch. Every member computes F(a, b) with the same scalar function as its reference
 * kernel, in float, so a fused group produces exactly the values the unfused ops produce (bit for bit, any thread
 * count). A ReduceSum member sums each row of the pass into a per-row partial in ReduceSum's own order
 * (ir/reduce.h: RowSum; the fusion pass admits it only where the group's rows are the rows it sums), and after
 * the pass the partials are added into its output in row order, as its reference kernel adds them.
 *
 * Channel-blocked buffers (runtime/channel_blocked.h): where every external and exported member of the group's
 * shape is stored in the blocked layout the convolutions run in (all or none), every other external is constant over
 * each channel plane (a per-channel scale, a scalar) and every sum keeps the channels and sums the planes (a
 * BatchNorm's statistics: can_run_blocked()), the pass runs in the blocked order: a row is one sample's block of 16
 * channels, its per-channel operands a 16-value pattern repeated, and each sum adds 16 channels' planes at once,
 * lane by lane, in ReduceSum's own order for each channel. Every element and every sum is computed as in the plain
 * pass, so the results are the same bits in either layout.
 */
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/ir/broadcast.h"
#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"
#include "dojo/numerics/bias.h"
#include "dojo/numerics/convert.h"
#include "dojo/ir/reduce.h"

namespace dojo::runtime {

using compiler::FusionGroup;

/// One group, ready to run.
class FusedElementwise {
public:
    /// `blocked[node]` (empty: none): that node's buffer is channel-blocked. Either no buffer of the group is, or
    /// the group can_run_blocked() and every external and exported member of its shape is.
    FusedElementwise(const ir::Graph& graph, FusionGroup group, const std::vector<bool>& blocked = {});

    /// Whether `value`, an external or exported member of `group`, is one of the group's shape, and that shape can
    /// be stored channel-blocked.
    static bool can_be_blocked(const ir::Graph& graph, const FusionGroup& group, ir::NodeId value);
    /// Whether `group` can run in the channel-blocked order (above), its buffers of its shape blocked.
    static bool can_run_blocked(const ir::Graph& graph, const FusionGroup& group);

    /// Reads the externals' buffers in `values` (indexed by node), writes the exported members' buffers.
    void run(std::vector<ir::Buffer<float>>& values) const;

    /// Has every later run() also measure exported member `member`'s max-abs as it writes it (numerics::max_abs's
    /// value, whatever the order: a CFloat rounding of it then need not read the tensor once more for its bias).
    void track_max_abs(ir::NodeId member);
    /// The last run()'s max-abs of a tracked member.
    float max_abs(ir::NodeId member) const;

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
    struct LaneSums {  // a row's sums in the blocked pass: RowSum's lanes and tail for each of 16 channels
        float lanes[ir::RowSum<float>::kLanes][16];
        float tail[16];
    };
    struct Scratch {  // one per thread: a block per member, and the current row's operand pointers
        std::vector<float> block;
        std::vector<float*> at;
        std::vector<const float*> base;
        std::vector<std::int64_t> stride;
        std::vector<float> patterns;  // blocked order: a block per external, a per-channel one's 16 values repeated
        std::vector<LaneSums> lane_sums;  // [reduction] (blocked order)
        std::vector<ir::RowSum<float>> sums;  // [reduction]: the current row's
        std::vector<std::uint32_t> max_bits;   // [tracked]: numerics::max_abs_bits of this chunk's elements
    };
    // y = the step's result on operands a and b (strides 0 or 1) for `count` elements.
    static void apply_step(const Step& step, const float* a, std::int64_t sa, const float* b, std::int64_t sb,
                           float* y, std::int64_t count);
    void size_scratch(std::int64_t chunks) const;  // scratch for `chunks` threads (grown by the first run only)
    void run_plain_order(std::vector<ir::Buffer<float>>& values) const;
    void run_blocked_order(std::vector<ir::Buffer<float>>& values) const;
    void add_row_sums(std::vector<ir::Buffer<float>>& values) const;  // the sums' row partials into their outputs

    FusionGroup group_;
    ir::Shape shape_;
    ir::BroadcastRows layout_;  // the output's rows and each external's offsets and strides along them
    std::vector<Step> steps_;   // one per member
    std::vector<Reduction> reductions_;
    bool blocked_order_ = false;  // the pass runs in the blocked order (above)
    std::int64_t channels_ = 0, plane_ = 0;  // of the group's shape (blocked order)
    std::vector<bool> blocked_external_;  // [external]: its buffer is channel-blocked (blocked order)
    struct PlaneConstant {  // an external constant over each channel plane: its strides along N and C (0: broadcast)
        std::int64_t sample = 0, channel = 0;
    };
    std::vector<PlaneConstant> plane_constant_;  // [external] (blocked order)
    std::vector<int> tracked_of_;                 // [member]: index into max_abs_bits_, or -1 (track_max_abs)
    mutable std::vector<std::uint32_t> max_abs_bits_;  // [tracked]: the last run's
    void measure(Scratch& own, std::size_t member, const float* values, std::int64_t count) const {
        if (tracked_of_[member] >= 0) {
            std::uint32_t& bits = own.max_bits[static_cast<std::size_t>(tracked_of_[member])];
            bits = std::max(bits, numerics::max_abs_bits(values, static_cast<std::size_t>(count)));
        }
    }
    void combine_max_abs(std::int64_t chunks) const;  // the chunks' measures into max_abs_bits_
    mutable std::vector<Scratch> scratch_;  // grown by the first run() only
};

}  // namespace dojo::runtime
