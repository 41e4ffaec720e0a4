#include "dojo/runtime/round_channel_blocked.h"

#include <algorithm>
#include <optional>
#include <span>

#include "dojo/ir/rounding.h"
#include "dojo/runtime/channel_blocked.h"

namespace dojo::runtime {

void for_each_interleaved_piece(const ir::Shape& shape, const std::function<void(const InterleavedPiece&)>& round) {
    constexpr std::int64_t kPiecePixels = 4096;
    const std::int64_t plane = shape[2] * shape[3];
    const std::int64_t row = kChannelBlock * plane;  // one sample's block of 16 channels
    const std::int64_t rows = shape.numel() / row;
    // Block b of sample s starts at plain element (s C + 16 b) H W = r * row (rows are in that order), and its
    // channel c's pixel p is plain element r * row + c * plane + p: 16 runs `plane` apart, interleaved.
#pragma omp parallel for schedule(static) collapse(2)
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t p0 = 0; p0 < plane; p0 += kPiecePixels) {
            round(InterleavedPiece{r * row + p0 * kChannelBlock,
                                   static_cast<std::size_t>(std::min(kPiecePixels, plane - p0)),
                                   static_cast<std::uint64_t>(r * row + p0), static_cast<std::uint64_t>(plane)});
        }
    }
}

void round_channel_blocked(const ir::RoundAttrs& attrs, double step, const ir::Shape& shape, const float* x, float* y,
                           float whole_max_abs) {
    const auto n = static_cast<std::size_t>(shape.numel());
    const std::span<const float> in(x, n);
    if (attrs.rounding != numerics::Rounding::Stochastic) {
        ir::round_piece(attrs, step, in, std::span<float>(y, n), whole_max_abs, 0);  // element by element: any order
        return;
    }
    const std::optional<ir::RoundingSetup> setup = ir::rounding_setup(attrs, step, whole_max_abs);
    if (!setup) {  // an overflowed tensor: passed on unchanged (round_piece)
        std::copy(x, x + n, y);
        return;
    }
    const numerics::PieceRounder rounder(setup->spec, setup->options);
    for_each_interleaved_piece(shape, [&](const InterleavedPiece& p) {
        rounder.round_interleaved(x + p.offset, y + p.offset, p.pixels, p.first_index, p.plane);
    });
}

}  // namespace dojo::runtime
