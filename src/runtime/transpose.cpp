// The tiled transpose (transpose.h).
#include "dojo/runtime/transpose.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace dojo::runtime {
namespace {

constexpr std::int64_t kTile = 16;  // 16 x 16 floats: a cache line per row of the tile on either side
constexpr std::int64_t kMinThreadedElements = std::int64_t{1} << 16;  // fewer run on one thread

// The transpose with runs of input axes that stay adjacent (and in order) in the output merged into one axis, and
// axes of size 1 dropped: what it moves, in the fewest axes.
struct Merged {
    std::vector<std::int64_t> in_dims;   // the input's merged axes, outermost first
    std::vector<int> perm;               // the output's axes as merged input axes
};

Merged merge_axes(const ir::Shape& x_shape, std::span<const int> perm) {
    std::vector<int> kept;  // output order, size-1 axes dropped
    for (const int axis : perm) {
        if (x_shape[axis] != 1) {
            kept.push_back(axis);
        }
    }
    // Groups of consecutive input axes, in output order.
    std::vector<std::vector<int>> groups;
    for (const int axis : kept) {
        if (!groups.empty() && groups.back().back() + 1 == axis) {
            groups.back().push_back(axis);
        } else {
            groups.push_back({axis});
        }
    }
    // Number the groups by their place in the input.
    std::vector<std::size_t> by_input(groups.size());
    for (std::size_t g = 0; g < groups.size(); ++g) {
        by_input[g] = g;
    }
    std::sort(by_input.begin(), by_input.end(),
              [&](std::size_t a, std::size_t b) { return groups[a].front() < groups[b].front(); });
    Merged m;
    m.perm.assign(groups.size(), 0);
    for (std::size_t rank = 0; rank < by_input.size(); ++rank) {
        std::int64_t size = 1;
        for (const int axis : groups[by_input[rank]]) {
            size *= x_shape[axis];
        }
        m.in_dims.push_back(size);
        m.perm[by_input[rank]] = static_cast<int>(rank);
    }
    return m;
}

// The input and output offsets of outer position `index` over the output axes `axes` (their sizes `dims`, last
// fastest), given each output axis' input and output strides.
void offsets_of(std::int64_t index, const std::vector<int>& axes, const std::vector<std::int64_t>& dims,
                const std::vector<std::int64_t>& in_stride, const std::vector<std::int64_t>& out_stride,
                std::int64_t& in_at, std::int64_t& out_at) {
    in_at = out_at = 0;
    for (std::size_t k = axes.size(); k-- > 0;) {
        const std::int64_t coordinate = index % dims[k];
        index /= dims[k];
        in_at += coordinate * in_stride[static_cast<std::size_t>(axes[k])];
        out_at += coordinate * out_stride[static_cast<std::size_t>(axes[k])];
    }
}

// The innermost axis stays innermost: each run along it is one contiguous copy.
void copy_runs(const std::vector<std::int64_t>& out_dims, const std::vector<std::int64_t>& in_stride,
               const std::vector<std::int64_t>& out_stride, const float* x, float* y) {
    std::vector<int> outer_axes;
    std::vector<std::int64_t> outer_dims;
    std::int64_t outer = 1;
    for (std::size_t i = 0; i + 1 < out_dims.size(); ++i) {
        outer_axes.push_back(static_cast<int>(i));
        outer_dims.push_back(out_dims[i]);
        outer *= out_dims[i];
    }
    const std::int64_t run = out_dims.back();
#pragma omp parallel for schedule(static) if (transpose_runs_on_threads(outer * run))
    for (std::int64_t index = 0; index < outer; ++index) {
        std::int64_t in_at = 0, out_at = 0;
        offsets_of(index, outer_axes, outer_dims, in_stride, out_stride, in_at, out_at);
        std::memcpy(y + out_at, x + in_at, static_cast<std::size_t>(run) * sizeof(float));
    }
}

}  // namespace

bool transpose_runs_on_threads(std::int64_t elements) { return elements > kMinThreadedElements; }

TransposeWay transpose_way(const ir::Shape& x_shape, std::span<const int> perm) {
    const Merged m = merge_axes(x_shape, perm);
    return m.perm.size() <= 1 || m.perm.back() == static_cast<int>(m.perm.size() - 1) ? TransposeWay::Runs
                                                                                       : TransposeWay::Tiles;
}

void transpose_tiled(const ir::Shape& x_shape, std::span<const int> perm, const float* x, float* y) {
    const Merged m = merge_axes(x_shape, perm);
    const std::int64_t total = x_shape.numel();
    if (m.perm.size() <= 1) {  // nothing moves
        std::memcpy(y, x, static_cast<std::size_t>(total) * sizeof(float));
        return;
    }
    const std::size_t rank = m.perm.size();
    const std::vector<std::int64_t> in_strides = ir::strides_of(ir::Shape(m.in_dims));
    std::vector<std::int64_t> out_dims(rank), in_stride(rank);  // per output axis
    for (std::size_t i = 0; i < rank; ++i) {
        out_dims[i] = m.in_dims[static_cast<std::size_t>(m.perm[i])];
        in_stride[i] = in_strides[static_cast<std::size_t>(m.perm[i])];
    }
    const std::vector<std::int64_t> out_stride = ir::strides_of(ir::Shape(out_dims));
    // The output's innermost axis is `last`; the input's innermost is output axis `inner`.
    const std::size_t last = rank - 1;
    const auto inner = static_cast<std::size_t>(
        std::find(m.perm.begin(), m.perm.end(), static_cast<int>(rank - 1)) - m.perm.begin());
    if (inner == last) {
        copy_runs(out_dims, in_stride, out_stride, x, y);
        return;
    }
    std::vector<int> outer_axes;
    std::vector<std::int64_t> outer_dims;
    std::int64_t outer = 1;
    for (std::size_t i = 0; i < rank; ++i) {
        if (i != last && i != inner) {
            outer_axes.push_back(static_cast<int>(i));
            outer_dims.push_back(out_dims[i]);
            outer *= out_dims[i];
        }
    }
    const std::int64_t rows = out_dims[inner], columns = out_dims[last];  // tile over (inner, last)
    const std::int64_t row_tiles = (rows + kTile - 1) / kTile, column_tiles = (columns + kTile - 1) / kTile;
    const std::int64_t in_column = in_stride[last], out_row = out_stride[inner];
#pragma omp parallel for schedule(static) if (transpose_runs_on_threads(total))
    for (std::int64_t work = 0; work < outer * row_tiles; ++work) {
        std::int64_t in_at = 0, out_at = 0;
        offsets_of(work / row_tiles, outer_axes, outer_dims, in_stride, out_stride, in_at, out_at);
        const std::int64_t r0 = (work % row_tiles) * kTile, r1 = std::min(rows, r0 + kTile);
        for (std::int64_t c0 = 0; c0 < column_tiles * kTile; c0 += kTile) {
            const std::int64_t c1 = std::min(columns, c0 + kTile);
            for (std::int64_t r = r0; r < r1; ++r) {  // y[.., r, .., c] = x[.., c, .., r]: x's innermost is r
                float* out = y + out_at + r * out_row;
                const float* in = x + in_at + r;
                for (std::int64_t c = c0; c < c1; ++c) {
                    out[c] = in[c * in_column];
                }
            }
        }
    }
}

}  // namespace dojo::runtime
