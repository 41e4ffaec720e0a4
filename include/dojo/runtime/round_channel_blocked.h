/** \file
 * RoundTo (ir/rounding.h) on a tensor stored channel-blocked (runtime/channel_blocked.h), input and output alike, for
 * the executor's fast path: the same values at the blocked places as RoundTo's kernel gives on the plain tensor.
 *
 * Why it can: the per-tensor bias comes from the max-abs, which does not depend on the order of the elements, and a
 * nearest rounding is element by element, so both run on the blocked bytes as they lie. A stochastic rounding draws
 * by the element's position in the plain tensor; one sample's block of 16 channels holds 16 runs of the plain tensor
 * (its channels' planes, H W apart) interleaved pixel by pixel, which numerics::PieceRounder::round_interleaved
 * rounds where they lie, each element drawing its word by its plain index.
 *
 * Why it pays: CFloat8 rounds every convolution input; a plain-only rounding kept those activations, and the groups
 * around them, plain, with a reorder at each convolution.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "dojo/ir/op.h"
#include "dojo/ir/shape.h"

namespace dojo::runtime {

/// y = RoundTo(x) under `attrs` at training step `step`; x and y (which may be the same buffer) hold `shape`
/// ([N, C, H, W], C a multiple of kChannelBlock) channel-blocked; `whole_max_abs` is numerics::max_abs(x) (read only
/// by formats with a configurable bias), as ir::round_piece takes it.
void round_channel_blocked(const ir::RoundAttrs& attrs, double step, const ir::Shape& shape, const float* x, float* y,
                           float whole_max_abs);

/// What a blocked rounding hands numerics::PieceRounder::round_interleaved for one piece of a channel-blocked tensor:
/// `pixels` pixels of one sample's 16-channel block, starting `offset` floats into the buffer, whose channel 0 is
/// plain element `first_index` and whose channels lie `plane` (H W) apart in the plain tensor.
struct InterleavedPiece {
    std::int64_t offset = 0;
    std::size_t pixels = 0;
    std::uint64_t first_index = 0;
    std::uint64_t plane = 0;
};

/// Calls `round` on every piece of a channel-blocked `shape` ([N, C, H, W], C a multiple of kChannelBlock), the
/// pieces split over the threads; pieces of one block are at most 4096 pixels (256 KiB: the call's setup is
/// negligible, and a [32, 64, 112, 112] tensor's 128 blocks of 12544 pixels spread evenly).
void for_each_interleaved_piece(const ir::Shape& shape, const std::function<void(const InterleavedPiece&)>& round);

}  // namespace dojo::runtime
