#include "dojo/runtime/fused_elementwise.h"

#include <omp.h>

#include <algorithm>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/elementwise.h"
#include "dojo/ir/reduce.h"
#include "dojo/ir/rounding.h"
#include "dojo/util/check.h"

namespace dojo::runtime {
namespace {

using ir::NodeId;

// Below this many elements per thread, a thread costs more than the work it takes.
constexpr std::int64_t kMinElementsPerThread = 4096;
// Elements per block: a member's block is 4 KiB, a group's blocks stay in the L2 cache; long enough that the
// per-member dispatch of each block costs little next to its vector work.
constexpr std::int64_t kBlock = 1024;

// The pass's rows: over the group's shape (its first member's; a ReduceSum member has its output's), with the
// externals and the reductions' kept shapes broadcasting along them.
ir::BroadcastRows rows_of(const ir::Graph& graph, const FusionGroup& group) {
    std::vector<ir::Shape> kept;
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
    return ir::BroadcastRows(graph.type(group.members.front()).shape, shapes);
}

}  // namespace

FusedElementwise::FusedElementwise(const ir::Graph& graph, FusionGroup group)
    : group_(std::move(group)), shape_(graph.type(group_.members.front()).shape), layout_(rows_of(graph, group_)) {
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
            DOJO_CHECK(rows.inner_stride(0) == 0 && rows.row_length() == layout_.row_length())
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
}

void FusedElementwise::run(std::vector<ir::Buffer<float>>& values) const {
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

    if (scratch_.size() < static_cast<std::size_t>(chunks)) {  // the first run sizes it; later runs reuse it
        scratch_.resize(static_cast<std::size_t>(chunks));
        for (Scratch& s : scratch_) {
            s.block.resize(members * static_cast<std::size_t>(kBlock));
            s.at.resize(members);
            s.base.resize(externals);
            s.stride.resize(externals);
        }
    }

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
                if (step.reduction >= 0) {  // its input is an earlier member (the pass computes no external's sum)
                    const auto k = static_cast<std::size_t>(step.reduction);
                    sums[k].add(at[step.a.index], j0, count);
                    if (j0 + count == length) {
                        reductions_[k].row_sums[static_cast<std::size_t>(r)] = sums[k].total();
                    }
                    continue;
                }
                at[q] = group_.exported[q] ? values[group_.members[q].index].data.data() + r * length + j0
                                           : scratch.data() + q * static_cast<std::size_t>(kBlock);
                std::int64_t sa = 0;
                std::int64_t sb = 0;
                const float* a = pointer(step.a, sa);
                const float* b = step.binary ? pointer(step.b, sb) : nullptr;
                if (step.op == ir::OpKind::BroadcastTo || step.rounds) {  // a copy, rounded for a RoundTo...
                    if (sa == 0) {
                        std::fill(at[q], at[q] + count, *a);
                        a = at[q];
                    }
                    const auto n = static_cast<std::size_t>(count);
                    if (step.rounds_bf16_nearest) {  // ...on the way (the common case: no dispatch)
                        numerics::round_to_bf16_nearest_values(a, at[q], n);
                    } else if (step.rounds) {  // ...each element on its own (as RoundTo's kernel does)
                        numerics::round_to_format(std::span<const float>(a, n), std::span<float>(at[q], n),
                                                  step.format, step.convert);
                    } else if (a != at[q]) {
                        std::copy(a, a + count, at[q]);
                    }
                } else {
                    ir::apply_elementwise(step.op, a, sa, b, sb, at[q], count);
                }
            }
        }
    }
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
