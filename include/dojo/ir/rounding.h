/** \file
 * What RoundTo does to a tensor (ir::RoundAttrs), for callers that hold only a piece of it.
 *
 * A data-parallel rank holds its shard of a batch-derived tensor: elements [first_index, first_index + n) of the
 * tensor one process would hold for the global batch. Rounding the piece with the whole tensor's max-abs (so the
 * same per-tensor bias) and its global element indices (so the same stochastic-rounding draws) gives exactly the
 * values the whole tensor's rounding gives there. RoundTo's kernel is round_piece(x, y, numerics::max_abs(x), 0).
 */
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "dojo/ir/op.h"

namespace dojo::ir {

/// Writes `in` rounded as `attrs` say at training step `step` to `out` (the same size; it may be `in` itself), as the
/// piece starting at element `first_index` of a tensor whose max-abs is `whole_max_abs`. Only formats with a
/// configurable bias read `whole_max_abs`; a non-finite one copies the values unchanged (a tensor that has
/// overflowed is passed on for the loss check). `threads` as numerics::ConvertOptions::threads (0: all; 1: the
/// calling thread, for a caller that already runs on every thread); the values do not depend on it.
void round_piece(const RoundAttrs& attrs, double step, std::span<const float> in, std::span<float> out,
                 float whole_max_abs, std::uint64_t first_index, int threads = 0);

/// What round_piece rounds with at training step `step`: the format, its bias chosen from `whole_max_abs` where it
/// has one, and the conversion options (first_index 0, all threads). std::nullopt where the bias needs a finite
/// max-abs and `whole_max_abs` is not (round_piece copies the values then).
struct RoundingSetup {
    numerics::FormatSpec spec;
    numerics::ConvertOptions options;
};
std::optional<RoundingSetup> rounding_setup(const RoundAttrs& attrs, double step, float whole_max_abs);

/// True if rounding with `attrs` depends on more than each element's own value: a configurable bias (chosen from
/// the whole tensor) or stochastic draws (indexed by element position).
bool rounding_sees_whole_tensor(const RoundAttrs& attrs);

}  // namespace dojo::ir
