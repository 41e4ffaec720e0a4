#include "dojo/runtime/round_to_bf16_copy.h"

#include <algorithm>
#include <optional>

#include "dojo/ir/rounding.h"
#include "dojo/numerics/convert.h"
#include "dojo/runtime/round_channel_blocked.h"
#include "dojo/util/check.h"

namespace dojo::runtime {
namespace {

// Elements per call of the rounder in the plain order: a multiple of the Philox group (64), so pieces start on one, and
// few enough to spread a [32, 512, 7, 7] tensor (12 pieces) evenly over the threads.
constexpr std::int64_t kPieceElements = 65536;

}  // namespace

bool rounds_exactly_into_bf16(const ir::RoundAttrs& attrs) {
    return attrs.format == numerics::FormatKind::Cfp8_143 || attrs.format == numerics::FormatKind::Cfp8_152 ||
           (attrs.format == numerics::FormatKind::Bf16 && attrs.rounding == numerics::Rounding::NearestEven);
}

bool round_to_bf16_copy(const ir::RoundAttrs& attrs, double step, const ir::Shape& shape, bool blocked,
                        const float* x, std::uint16_t* copy, float whole_max_abs) {
    DOJO_CHECK(rounds_exactly_into_bf16(attrs)) << "round_to_bf16_copy: the format's values are not all BF16 values";
    const std::int64_t n = shape.numel();
    if (attrs.format == numerics::FormatKind::Bf16) {  // nearest-even: element by element, in any layout
#pragma omp parallel for schedule(static)
        for (std::int64_t at = 0; at < n; at += kPieceElements) {
            numerics::round_to_bf16_nearest_bits(x + at, copy + at,
                                                 static_cast<std::size_t>(std::min(kPieceElements, n - at)));
        }
        return true;
    }
    const std::optional<ir::RoundingSetup> setup = ir::rounding_setup(attrs, step, whole_max_abs);
    if (!setup) {
        return false;
    }
    const numerics::PieceRounder rounder(setup->spec, setup->options);
    if (blocked && attrs.rounding == numerics::Rounding::Stochastic) {  // draws by plain index
        for_each_interleaved_piece(shape, [&](const InterleavedPiece& p) {
            rounder.round_interleaved_to_bf16_bits(x + p.offset, copy + p.offset, p.pixels, p.first_index, p.plane);
        });
        return true;
    }
    // Plain order, or a nearest rounding, which does not look at the index: element i is element i.
#pragma omp parallel for schedule(static)
    for (std::int64_t at = 0; at < n; at += kPieceElements) {
        rounder.round_to_bf16_bits(x + at, copy + at, static_cast<std::size_t>(std::min(kPieceElements, n - at)),
                                   static_cast<std::uint64_t>(at));
    }
    return true;
}

}  // namespace dojo::runtime
