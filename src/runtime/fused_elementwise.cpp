#include "dojo/runtime/fused_elementwise.h"

#include <omp.h>

#include <algorithm>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/elementwise.h"
#include "dojo/util/check.h"

namespace dojo::runtime {
namespace {

using ir::NodeId;

// Below this many elements per thread, a thread costs more than the work it takes.
constexpr std::int64_t kMinElementsPerThread = 4096;
// Elements per block: a member's block is 1 KiB, a group's blocks stay in the L1/L2 cache.
constexpr std::int64_t kBlock = 256;

ir::BroadcastRows rows_of(const ir::Graph& graph, const FusionGroup& group) {
    std::vector<const ir::Shape*> shapes;
    for (const NodeId e : group.externals) {
        shapes.push_back(&graph.type(e).shape);
    }
    return ir::BroadcastRows(graph.type(group.members.back()).shape, shapes);
}

}  // namespace

FusedElementwise::FusedElementwise(const ir::Graph& graph, FusionGroup group)
    : group_(std::move(group)), shape_(graph.type(group_.members.back()).shape), layout_(rows_of(graph, group_)) {
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
        DOJO_CHECK(node.type.shape == shape_) << "fused group member " << m.index << " of another shape";
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
    const std::int64_t chunks = std::clamp<std::int64_t>(
        layout.rows() * length / kMinElementsPerThread, 1, std::min<std::int64_t>(omp_get_max_threads(), items));

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
        const std::int64_t first = items * c / chunks;
        const std::int64_t last = items * (c + 1) / chunks;
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
                at[q] = group_.exported[q] ? values[group_.members[q].index].data.data() + r * length + j0
                                           : scratch.data() + q * static_cast<std::size_t>(kBlock);
                const Step& step = steps_[q];
                std::int64_t sa = 0;
                std::int64_t sb = 0;
                const float* a = pointer(step.a, sa);
                const float* b = step.binary ? pointer(step.b, sb) : nullptr;
                if (step.op == ir::OpKind::BroadcastTo) {  // a copy of its (broadcasting) input
                    if (sa == 0) {
                        std::fill(at[q], at[q] + count, *a);
                    } else {
                        std::copy(a, a + count, at[q]);
                    }
                } else {
                    ir::apply_elementwise(step.op, a, sa, b, sb, at[q], count);
                }
            }
        }
    }
}

}  // namespace dojo::runtime
