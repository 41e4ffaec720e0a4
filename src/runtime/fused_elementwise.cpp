#include "dojo/runtime/fused_elementwise.h"

#include <omp.h>

#include <algorithm>
#include <bit>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/elementwise.h"
#include "dojo/ir/reduce.h"
#include "dojo/ir/rounding.h"
#include "dojo/runtime/channel_blocked.h"
#include "dojo/util/check.h"

namespace dojo::runtime {
namespace {

using ir::NodeId;

// Below this many elements per thread, a thread costs more than the work it takes.
constexpr std::int64_t kMinElementsPerThread = 4096;
// Elements per block: a member's block is 4 KiB, a group's blocks stay in the L2 cache; long enough that the
// per-member dispatch of each block costs little next to its vector work.
constexpr std::int64_t kBlock = 1024;

constexpr std::size_t kAlignFloats = 16;  // a cache line
// The first cache-line boundary at or after `p` (a block that straddles no line boundary loads at full speed).
float* aligned(float* p) {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    return p + (kAlignFloats - address / sizeof(float) % kAlignFloats) % kAlignFloats;
}

// The shape the pass walks: its first member's, or, where that is a sum (a group of one ReduceSum, which the
// executor forms for a sum of a buffer), the shape it sums.
const ir::Shape& pass_shape(const ir::Graph& graph, const FusionGroup& group) {
    const ir::Node& first = graph.node(group.members.front());
    return first.op == ir::OpKind::ReduceSum ? graph.type(first.inputs[0]).shape : first.type.shape;
}

// The pass's rows: over the group's shape (pass_shape()), with the externals and the reductions' kept shapes
// broadcasting along them. With `plane_rows` no row crosses a channel plane (a [1, C, 1, 1] operand, contiguous along
// C and broadcast along H, keeps the axes apart): the blocked order's sums then have the plain order's rows.
ir::BroadcastRows rows_of(const ir::Graph& graph, const FusionGroup& group, bool plane_rows) {
    std::vector<ir::Shape> kept;
    const ir::Shape& shape = pass_shape(graph, group);
    if (plane_rows) {
        kept.push_back(ir::Shape({1, shape[1], 1, 1}));
    }
    for (const NodeId m : group.members) {
        if (graph.node(m).op == ir::OpKind::ReduceSum) {
            kept.push_back(ir::reduce_kept_shape(graph, m));
        }
    }
    std::vector<const ir::Shape*> shapes;
    for (const NodeId e : group.externals) {
        shapes.push_back(&graph.type(e).shape);
    }
    for (const ir::Shape& k : kept) {
        shapes.push_back(&k);
    }
    return ir::BroadcastRows(shape, shapes);
}

// Whether a value of shape `e` is constant over each channel plane of the pass (broadcast along H and W): then
// `sample` and `channel` are its strides along N and C (0 where it broadcasts).
bool plane_constant(const ir::Shape& e, std::int64_t& sample, std::int64_t& channel) {
    if (e.rank() > 4) {
        return false;
    }
    std::vector<std::int64_t> dims(static_cast<std::size_t>(4 - e.rank()), 1);
    dims.insert(dims.end(), e.dims().begin(), e.dims().end());
    sample = dims[0] == 1 ? 0 : dims[1];
    channel = dims[1] == 1 ? 0 : 1;
    return dims[2] == 1 && dims[3] == 1;
}

bool any_blocked(const FusionGroup& group, const std::vector<bool>& blocked) {
    if (blocked.empty()) {
        return false;
    }
    for (std::size_t k = 0; k < group.members.size(); ++k) {
        if (group.exported[k] && blocked[group.members[k].index]) {
            return true;
        }
    }
    return std::any_of(group.externals.begin(), group.externals.end(),
                       [&](ir::NodeId e) { return blocked[e.index]; });
}

}  // namespace

bool FusedElementwise::can_be_blocked(const ir::Graph& graph, const FusionGroup& group, NodeId value) {
    const ir::Shape& shape = pass_shape(graph, group);
    return graph.type(value).shape == shape && can_store_channel_blocked(shape);
}

bool FusedElementwise::can_run_blocked(const ir::Graph& graph, const FusionGroup& group) {
    const ir::Shape& shape = pass_shape(graph, group);
    if (!can_store_channel_blocked(shape)) {
        return false;
    }
    if (shape[2] * shape[3] == 1) {
        // 1x1 planes (a network's last feature maps at small inputs): a per-channel operand is then full along
        // every axis after N, and the rows the broadcast walk finds span channels, not planes. Such a pass is tiny;
        // it runs in the plain order.
        return false;
    }
    for (const NodeId e : group.externals) {
        std::int64_t sample = 0;
        std::int64_t channel = 0;
        if (graph.type(e).shape != shape && !plane_constant(graph.type(e).shape, sample, channel)) {
            return false;
        }
    }
    for (const NodeId m : group.members) {
        if (graph.node(m).op == ir::OpKind::ReduceSum) {
            const ir::Shape kept = ir::reduce_kept_shape(graph, m);
            if (kept.rank() != 4 || kept[1] != shape[1] || kept[2] != 1 || kept[3] != 1) {
                return false;
            }
        }
    }
    return true;
}

FusedElementwise::FusedElementwise(const ir::Graph& graph, FusionGroup group, const std::vector<bool>& blocked)
    : group_(std::move(group)),
      shape_(pass_shape(graph, group_)),
      layout_(rows_of(graph, group_, any_blocked(group_, blocked))),
      blocked_order_(any_blocked(group_, blocked)) {
    if (blocked_order_) {  // every buffer of the pass's shape blocked, the others constant over each plane
        DOJO_CHECK(can_run_blocked(graph, group_)) << "fused group at node " << group_.members.back().index
                                                   << " cannot run in the channel-blocked order";
        channels_ = shape_[1];
        plane_ = shape_[2] * shape_[3];
        DOJO_CHECK(layout_.row_length() == plane_) << "fused group's rows are not its channel planes";
        for (const NodeId e : group_.externals) {
            PlaneConstant& constant = plane_constant_.emplace_back();
            const bool full = graph.type(e).shape == shape_;
            DOJO_CHECK(full == blocked[e.index]) << "fused group external " << e.index << " of the group's shape "
                                                 << (full ? "is not" : "cannot be") << " channel-blocked";
            blocked_external_.push_back(full);
            if (!full) {
                plane_constant(graph.type(e).shape, constant.sample, constant.channel);
            }
        }
        for (std::size_t k = 0; k < group_.members.size(); ++k) {
            const NodeId m = group_.members[k];
            DOJO_CHECK(!group_.exported[k] || graph.node(m).op == ir::OpKind::ReduceSum || blocked[m.index])
                << "fused group member " << m.index << " is exported but not channel-blocked";
        }
    }
    auto operand = [&](NodeId input) {
        const auto member = std::find(group_.members.begin(), group_.members.end(), input);
        if (member != group_.members.end()) {
            return Operand{true, static_cast<std::uint32_t>(member - group_.members.begin())};
        }
        const auto external = std::find(group_.externals.begin(), group_.externals.end(), input);
        DOJO_CHECK(external != group_.externals.end()) << "fused group input " << input.index << " not listed";
        return Operand{false, static_cast<std::uint32_t>(external - group_.externals.begin())};
    };
    for (const NodeId m : group_.members) {
        const ir::Node& node = graph.node(m);
        if (node.op == ir::OpKind::ReduceSum) {
            const ir::Shape kept = ir::reduce_kept_shape(graph, m);
            ir::BroadcastRows rows(shape_, {&kept});
            DOJO_CHECK(rows.inner_stride(0) == 0 && rows.row_length() == layout_.row_length() &&
                       graph.type(node.inputs[0]).shape == shape_)
                << "fused ReduceSum " << m.index << " does not sum the group's rows";
            Reduction reduction;
            reduction.member = static_cast<std::uint32_t>(steps_.size());
            reduction.output_of.resize(static_cast<std::size_t>(rows.rows()));
            for (std::int64_t r = 0; r < rows.rows(); ++r, rows.next_row()) {
                reduction.output_of[static_cast<std::size_t>(r)] = rows.offset(0);
            }
            reduction.row_sums.resize(static_cast<std::size_t>(rows.rows()));
            steps_.push_back(Step{node.op, false, operand(node.inputs[0]), Operand{},
                                  static_cast<int>(reductions_.size())});
            reductions_.push_back(std::move(reduction));
            continue;
        }
        DOJO_CHECK(node.type.shape == shape_) << "fused group member " << m.index << " of another shape";
        if (node.op == ir::OpKind::RoundTo) {  // its step input is an external the rounding does not read
            const ir::RoundAttrs& attrs = std::get<ir::RoundAttrs>(node.attrs);
            DOJO_CHECK(!ir::rounding_sees_whole_tensor(attrs)) << "fused RoundTo " << m.index << " needs its tensor";
            Step step{node.op, false, operand(node.inputs[0]), Operand{}};
            step.rounds = true;
            step.format = numerics::make_format(attrs.format);  // no bias to choose: a fixed grid
            step.convert.rounding = attrs.rounding;               // nearest: no draws, so no stream or index
            step.convert.threads = 1;                             // the pass's threads are already running
            step.rounds_bf16_nearest = attrs.format == numerics::FormatKind::Bf16 &&
                                       attrs.rounding == numerics::Rounding::NearestEven;
            steps_.push_back(step);
            continue;
        }
        const bool binary = node.inputs.size() > 1;
        steps_.push_back(Step{node.op, binary, operand(node.inputs[0]), binary ? operand(node.inputs[1]) : Operand{}});
    }
    tracked_of_.assign(steps_.size(), -1);
}

void FusedElementwise::track_max_abs(NodeId member) {
    DOJO_CHECK(scratch_.empty()) << "track_max_abs() after the first run()";
    const auto k = static_cast<std::size_t>(std::find(group_.members.begin(), group_.members.end(), member) -
                                            group_.members.begin());
    DOJO_CHECK(k < steps_.size() && group_.exported[k] && steps_[k].reduction < 0)
        << "node " << member.index << " is no exported map of this fused group";
    if (tracked_of_[k] < 0) {
        tracked_of_[k] = static_cast<int>(max_abs_bits_.size());
        max_abs_bits_.push_back(0);
    }
}

float FusedElementwise::max_abs(NodeId member) const {
    const auto k = static_cast<std::size_t>(std::find(group_.members.begin(), group_.members.end(), member) -
                                            group_.members.begin());
    DOJO_CHECK(k < steps_.size() && tracked_of_[k] >= 0) << "node " << member.index << "'s max-abs is not tracked";
    return std::bit_cast<float>(max_abs_bits_[static_cast<std::size_t>(tracked_of_[k])]);
}

void FusedElementwise::combine_max_abs(std::int64_t chunks) const {
    for (std::size_t t = 0; t < max_abs_bits_.size(); ++t) {
        std::uint32_t bits = 0;
        for (std::int64_t c = 0; c < chunks; ++c) {
            bits = std::max(bits, scratch_[static_cast<std::size_t>(c)].max_bits[t]);
        }
        max_abs_bits_[t] = bits;
    }
}

void FusedElementwise::apply_step(const Step& step, const float* a, std::int64_t sa, const float* b, std::int64_t sb,
                                  float* y, std::int64_t count) {
    if (step.op == ir::OpKind::BroadcastTo || step.rounds) {  // a copy, rounded for a RoundTo...
        if (sa == 0) {
            std::fill(y, y + count, *a);
            a = y;
        }
        const auto n = static_cast<std::size_t>(count);
        if (step.rounds_bf16_nearest) {  // ...on the way (the common case: no dispatch)
            numerics::round_to_bf16_nearest_values(a, y, n);
        } else if (step.rounds) {  // ...each element on its own (as RoundTo's kernel does)
            numerics::round_to_format(std::span<const float>(a, n), std::span<float>(y, n), step.format,
                                      step.convert);
        } else if (a != y) {
            std::copy(a, a + count, y);
        }
    } else {
        ir::apply_elementwise(step.op, a, sa, b, sb, y, count);
    }
}

void FusedElementwise::size_scratch(std::int64_t chunks) const {
    if (scratch_.size() >= static_cast<std::size_t>(chunks)) {
        return;  // the first run sizes it; later runs reuse it
    }
    const std::size_t members = steps_.size();
    const std::size_t externals = group_.externals.size();
    scratch_.resize(static_cast<std::size_t>(chunks));
    for (Scratch& s : scratch_) {
        s.block.resize(members * static_cast<std::size_t>(kBlock) + kAlignFloats);
        s.at.resize(members);
        s.base.resize(externals);
        s.stride.resize(externals);
        s.max_bits.resize(max_abs_bits_.size());
        if (blocked_order_) {
            s.patterns.resize(externals * static_cast<std::size_t>(kBlock) + kAlignFloats);
            s.lane_sums.resize(reductions_.size());
        }
    }
}

void FusedElementwise::run(std::vector<ir::Buffer<float>>& values) const {
    if (blocked_order_) {
        run_blocked_order(values);
    } else {
        run_plain_order(values);
    }
}

void FusedElementwise::run_plain_order(std::vector<ir::Buffer<float>>& values) const {
    const ir::BroadcastRows& layout = layout_;
    const std::int64_t length = layout.row_length();
    const std::int64_t blocks_per_row = (length + kBlock - 1) / kBlock;
    const std::int64_t items = layout.rows() * blocks_per_row;  // (row, block) pairs, row-major
    const std::size_t members = steps_.size();
    const std::size_t externals = group_.externals.size();
    // With sums, chunks hold whole rows: a row's partial sum is built block by block by one thread.
    const std::int64_t units = reductions_.empty() ? items : layout.rows();
    const std::int64_t chunks = std::clamp<std::int64_t>(
        layout.rows() * length / kMinElementsPerThread, 1, std::min<std::int64_t>(omp_get_max_threads(), units));

    size_scratch(chunks);

    // Each chunk of items runs on its own thread with its own scratch; chunks cover disjoint output elements.
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1) if (chunks > 1)
    for (std::int64_t c = 0; c < chunks; ++c) {
        Scratch& own = scratch_[static_cast<std::size_t>(c)];
        std::vector<float>& scratch = own.block;
        std::vector<float*>& at = own.at;
        std::vector<const float*>& base = own.base;
        std::vector<std::int64_t>& stride = own.stride;
        const std::int64_t first = units * c / chunks * (reductions_.empty() ? 1 : blocks_per_row);
        const std::int64_t last = units * (c + 1) / chunks * (reductions_.empty() ? 1 : blocks_per_row);
        std::vector<ir::RowSum<float>>& sums = own.sums;
        std::fill(own.max_bits.begin(), own.max_bits.end(), 0u);
        ir::BroadcastRows rows = layout;
        std::int64_t row = -1;
        for (std::int64_t item = first; item < last; ++item) {
            const std::int64_t r = item / blocks_per_row;
            if (r != row) {
                if (row < 0) {
                    rows.seek_row(r);
                } else {
                    rows.next_row();  // items advance one row at a time
                }
                row = r;
                for (std::size_t k = 0; k < externals; ++k) {
                    base[k] = values[group_.externals[k].index].data.data() + rows.offset(k);
                    stride[k] = rows.inner_stride(k);
                }
                sums.assign(reductions_.size(), ir::RowSum<float>(length));
            }
            const std::int64_t j0 = (item % blocks_per_row) * kBlock;
            const std::int64_t count = std::min(kBlock, length - j0);
            auto pointer = [&](const Operand& o, std::int64_t& s) -> const float* {
                if (o.member) {
                    s = 1;
                    return at[o.index];
                }
                s = stride[o.index];
                return base[o.index] + j0 * s;
            };
            for (std::size_t q = 0; q < members; ++q) {
                const Step& step = steps_[q];
                if (step.reduction >= 0) {  // of an earlier member, or of an external (a group of one sum)
                    const auto k = static_cast<std::size_t>(step.reduction);
                    std::int64_t sa = 0;
                    sums[k].add(pointer(step.a, sa), j0, count);
                    if (j0 + count == length) {
                        reductions_[k].row_sums[static_cast<std::size_t>(r)] = sums[k].total();
                    }
                    continue;
                }
                at[q] = group_.exported[q] ? values[group_.members[q].index].data.data() + r * length + j0
                                           : aligned(scratch.data()) + q * static_cast<std::size_t>(kBlock);
                std::int64_t sa = 0;
                std::int64_t sb = 0;
                const float* a = pointer(step.a, sa);
                const float* b = step.binary ? pointer(step.b, sb) : nullptr;
                apply_step(step, a, sa, b, sb, at[q], count);
                measure(own, q, at[q], count);
            }
        }
    }
    combine_max_abs(chunks);
    add_row_sums(values);
}

namespace {

// Adds `pixels` pixels of 16 channels (pixel p's channels at piece[16 p, 16 p + 16)), from pixel `first` of the
// plane on (a multiple of RowSum's lanes), to the channels' sums: pixel i below `main_end` into lane i % kLanes,
// the rest into the tail, in order, which is RowSum's order for each channel's row.
void add_lanes(float (&lanes)[ir::RowSum<float>::kLanes][kChannelBlock], float (&tail)[kChannelBlock],
               const float* __restrict piece, std::int64_t first, std::int64_t pixels, std::int64_t main_end) {
    constexpr std::int64_t kLanes = ir::RowSum<float>::kLanes;
    float acc[kLanes][kChannelBlock];  // in locals, so that they stay in registers
    std::copy(&lanes[0][0], &lanes[0][0] + kLanes * kChannelBlock, &acc[0][0]);
    std::int64_t p = 0;
    const std::int64_t main = std::max<std::int64_t>(0, std::min(pixels, main_end - first));
    for (; p + kLanes <= main; p += kLanes) {
        for (std::int64_t k = 0; k < kLanes; ++k) {
            for (std::int64_t c = 0; c < kChannelBlock; ++c) {
                acc[k][c] += piece[(p + k) * kChannelBlock + c];
            }
        }
    }
    std::copy(&acc[0][0], &acc[0][0] + kLanes * kChannelBlock, &lanes[0][0]);
    for (; p < pixels; ++p) {
        for (std::int64_t c = 0; c < kChannelBlock; ++c) {
            tail[c] += piece[p * kChannelBlock + c];
        }
    }
}

}  // namespace

void FusedElementwise::run_blocked_order(std::vector<ir::Buffer<float>>& values) const {
    const std::int64_t length = plane_ * kChannelBlock;  // a row: one sample's block of 16 channels
    const std::int64_t channel_blocks = channels_ / kChannelBlock;
    const std::int64_t rows = shape_[0] * channel_blocks;
    const std::int64_t blocks_per_row = (length + kBlock - 1) / kBlock;
    const std::int64_t items = rows * blocks_per_row;
    const std::size_t members = steps_.size();
    const std::size_t externals = group_.externals.size();
    const std::int64_t units = reductions_.empty() ? items : rows;  // with sums, a thread takes whole rows
    const std::int64_t chunks = std::clamp<std::int64_t>(
        rows * length / kMinElementsPerThread, 1, std::min<std::int64_t>(omp_get_max_threads(), units));
    const std::int64_t main_end = plane_ - plane_ % ir::RowSum<float>::kLanes;
    constexpr std::int64_t kPattern = -1;  // stride marking a per-channel operand's pattern: read from the start

    size_scratch(chunks);

#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1) if (chunks > 1)
    for (std::int64_t c = 0; c < chunks; ++c) {
        Scratch& own = scratch_[static_cast<std::size_t>(c)];
        const std::int64_t first = units * c / chunks * (reductions_.empty() ? 1 : blocks_per_row);
        const std::int64_t last = units * (c + 1) / chunks * (reductions_.empty() ? 1 : blocks_per_row);
        std::fill(own.max_bits.begin(), own.max_bits.end(), 0u);
        std::int64_t row = -1;
        for (std::int64_t item = first; item < last; ++item) {
            const std::int64_t r = item / blocks_per_row;
            const std::int64_t sample = r / channel_blocks;
            const std::int64_t first_channel = r % channel_blocks * kChannelBlock;
            if (r != row) {
                row = r;
                for (std::size_t k = 0; k < externals; ++k) {
                    const float* data = values[group_.externals[k].index].data.data();
                    const PlaneConstant& constant = plane_constant_[k];
                    if (blocked_external_[k]) {
                        own.base[k] = data + r * length;
                        own.stride[k] = 1;
                    } else if (constant.sample == 0 && constant.channel == 0) {
                        own.base[k] = data;
                        own.stride[k] = 0;
                    } else {  // the row's 16 channel values, repeated over a block's pixels
                        float* pattern = aligned(own.patterns.data()) + k * static_cast<std::size_t>(kBlock);
                        const std::int64_t filled = std::min(kBlock, length);
                        for (std::int64_t lane = 0; lane < kChannelBlock; ++lane) {
                            const float v = data[sample * constant.sample + (first_channel + lane) * constant.channel];
                            for (std::int64_t j = lane; j < filled; j += kChannelBlock) {
                                pattern[j] = v;
                            }
                        }
                        own.base[k] = pattern;
                        own.stride[k] = kPattern;
                    }
                }
                for (LaneSums& sums : own.lane_sums) {
                    sums = LaneSums{};
                }
            }
            const std::int64_t j0 = (item % blocks_per_row) * kBlock;
            const std::int64_t count = std::min(kBlock, length - j0);
            auto pointer = [&](const Operand& o, std::int64_t& s) -> const float* {
                if (o.member) {
                    s = 1;
                    return own.at[o.index];
                }
                if (own.stride[o.index] == kPattern) {  // starts on a pixel: the pattern lines up with the block
                    s = 1;
                    return own.base[o.index];
                }
                s = own.stride[o.index];
                return own.base[o.index] + j0 * s;
            };
            for (std::size_t q = 0; q < members; ++q) {
                const Step& step = steps_[q];
                if (step.reduction >= 0) {
                    const auto k = static_cast<std::size_t>(step.reduction);
                    LaneSums& sums = own.lane_sums[k];
                    std::int64_t sa = 0;
                    add_lanes(sums.lanes, sums.tail, pointer(step.a, sa), j0 / kChannelBlock, count / kChannelBlock,
                              main_end);
                    if (j0 + count == length) {  // the row's 16 channels are summed: RowSum's total of each
                        for (std::int64_t lane = 0; lane < kChannelBlock; ++lane) {
                            reductions_[k].row_sums[static_cast<std::size_t>(sample * channels_ + first_channel +
                                                                             lane)] =
                                ir::RowSum<float>::combine(&sums.lanes[0][lane], kChannelBlock, sums.tail[lane]);
                        }
                    }
                    continue;
                }
                own.at[q] = group_.exported[q] ? values[group_.members[q].index].data.data() + r * length + j0
                                               : aligned(own.block.data()) + q * static_cast<std::size_t>(kBlock);
                std::int64_t sa = 0;
                std::int64_t sb = 0;
                const float* a = pointer(step.a, sa);
                const float* b = step.binary ? pointer(step.b, sb) : nullptr;
                apply_step(step, a, sa, b, sb, own.at[q], count);
                measure(own, q, own.at[q], count);
            }
        }
    }
    combine_max_abs(chunks);
    add_row_sums(values);
}

void FusedElementwise::add_row_sums(std::vector<ir::Buffer<float>>& values) const {
    // Each sum's rows in row order, as ReduceSum's kernel adds them.
    for (const Reduction& reduction : reductions_) {
        ir::Storage<float>& out = values[group_.members[reduction.member].index].data;
        std::fill(out.begin(), out.end(), 0.0f);
        for (std::size_t r = 0; r < reduction.row_sums.size(); ++r) {
            out[static_cast<std::size_t>(reduction.output_of[r])] += reduction.row_sums[r];
        }
    }
}

}  // namespace dojo::runtime
